"""``pk.attack``: evaluate a trained model under adversarial inputs, in one table.

A multiple-choice model (``python -m probekit.classify --task multiple-choice``) gets Si et al.'s (2019) table
(:mod:`.mc_run`): intact, AddSent2Pas-/AddSent2Opt-/AddAns2Opt-Shuffle (mean ± std over seeded draws), random
guess, longest option, and with ``train=`` the un-answerable retrainings. Any other classifier gets word
shuffle, an appended distractor and the key-word attacks (:mod:`.keywords`): delete or mask the top-k % words by
an attribution method against k random words, with a curve figure. ``augment=FILE`` writes the perturbed items
as a data file that ``probekit.classify`` reads (for multiple choice: the first draw of every attack; for a
classifier: top-word deletion and masking at the largest k, one example each) — run it on training data to
augment training data.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probekit.core import checks
from probekit.core.options import (DeviceOptions, SampleOptions, data_root_option, max_length, option,
                                   optional_above_zero, optional_positive, positive, ray_option, takes)
from probekit.core.examples import seeded_sample
from probekit.core.errors import UserError
from probekit.core.result import Result, tidy
from probekit.core.rundir import RunDir, markdown_table, run_record, write_tidy
from probekit.attacks import keywords
from probekit.attacks.multiple_choice import run as mc_run
from probekit.attacks.catalogue import attack_names

#: where the un-answerable retrainings' settings come from when not given
_OWN = "(default: the attacked model's own, from its run's config.json)"
KEYS = ["dataset", "setting", "group", "operation", "selection", "k", "draw", "aggregate"]


class AttackResult(Result):
    """``.frame``: the long tidy table (every draw, plus mean/std rows); ``.table``: rows = settings,
    columns = data sets; ``.kind``: ``multiple-choice`` or ``classifier``; ``.augmented``: the perturbed items."""

    command = "attack"
    main_table = "results.csv"

    def __init__(self, frame, record, table, kind, augmented, chance=None):
        super().__init__(frame, record)
        self.table, self.kind, self.augmented, self.chance = table, kind, augmented, chance or {}

    def figures(self) -> dict:
        """stem → figure: the accuracy/flip-rate curve against k for each data set (classifiers only)."""
        if self.kind != "classifier" or "delete" not in self.record["arguments"]["attacks"]:
            return {}
        sets = list(dict.fromkeys(self.frame["dataset"]))
        return {("keyword_curve" if len(sets) == 1 else f"keyword_curve_{i}"):
                keywords.curve_figure(self.frame, ds, self.chance.get(ds, float("nan"))) for i, ds in enumerate(sets)}

    def summary(self) -> str:
        what = ("Si et al. (2019) attacks on a multiple-choice model" if self.kind == "multiple-choice" else
                "perturbation and key-word attacks on a classifier")
        lines = [f"# attack — {what}", "", f"model: {self.model}", ""]
        if self.kind == "multiple-choice":
            lines += ["Accuracy; attacks: mean ± std over "
                      f"{self.record['arguments']['draws']} draws. Si et al.'s per-dataset numbers are not "
                      "shown beside ours.", ""]
        else:
            lines += [f"Accuracy (flip rate) against the gold labels; random settings: mean ± std over "
                      f"{self.record['arguments']['draws']} draws; top words by "
                      f"{self.record['arguments']['method']}; k % of n words = ceil(k·n/100) ≥ 1.", ""]
        lines.append(markdown_table(self.table))
        from probekit.attacks.drops import sentences

        said = sentences(self.frame)
        if said:
            lines += ["", "## Drops from intact", "",
                      "Paired over the same examples (correct on the intact input minus correct under the attack, "
                      "averaged over the draws per example), 95% bootstrap intervals (`accuracy_drop` and "
                      "`top_minus_random_drop` rows of results.csv, with `ci_low`, `ci_high`, `n`):", "",
                      *(f"- {x}" for x in said)]
        cautions = self.cautions()
        if cautions:
            lines += ["", *(f"**Caution:** {c}" for c in cautions)]
        return "\n".join(lines)

    def cautions(self) -> list[str]:
        """One sentence per data set where the model on intact data is no better than its trivial baseline
        (random guess or longest option; the majority class for a classifier): there a drop under attack
        cannot be told from noise, and the table would mislead without saying so."""
        out = []
        f = self.frame
        if "metric" in f.columns:
            f = f[f["metric"].isna() | (f["metric"] == "accuracy")]
        for ds, g in f.groupby("dataset", sort=False):
            intact = g.loc[g["setting"] == "intact", "value"]
            low = g.loc[g["setting"] == "intact", "ci_low"] if "ci_low" in g.columns else pd.Series(dtype=float)
            if self.kind == "multiple-choice":
                base = g[g["setting"].isin(mc_run.BASELINES)].set_index("setting")["value"]
            else:
                base = pd.Series({"majority class": self.chance.get(ds, np.nan)}).dropna()
            if intact.empty or base.empty:
                continue
            name, best = base.idxmax(), float(base.max())
            name = {"random guess": "random guessing", "longest baseline": "the longest-option baseline",
                    "majority class": "the majority class"}.get(name, name)
            value = float(intact.iloc[0])
            ci_low = float(low.iloc[0]) if len(low) and np.isfinite(low.iloc[0]) else None
            if value <= best:
                out.append(f"{ds}: the model on intact data ({value:.3f}) is not above {name} "
                           f"({best:.3f}); a drop under attack says little about this model.")
            elif ci_low is not None and ci_low <= best:      # above it, but not by more than its interval
                ci_high = float(g.loc[g["setting"] == "intact", "ci_high"].iloc[0])
                out.append(f"{ds}: the model on intact data ({value:.3f}, 95% CI {ci_low:.3f}…{ci_high:.3f}) is "
                           f"not detectably above {name} ({best:.3f}); a drop under attack says little about "
                           f"this model.")
        return out

    def write_files(self, run: RunDir) -> None:
        write_tidy(run, self.frame, "results.csv")
        write_tidy(run, self.table, "table.csv")
        run.write_text("summary.md", self.summary())
        for stem, fig in self.figures().items():
            run.save_figure(fig, stem)

    def files(self) -> list[str]:
        return ["results.csv", "table.csv", "summary.md"]


def _load(classifier, device):
    from probekit.classifiers.hf_model import as_classifier   # (model, tokenizer) of a Hugging Face classifier

    classifier = as_classifier(classifier)
    if isinstance(classifier, (str, os.PathLike)):
        from probekit.classifiers.saved import load_classifier

        return load_classifier(classifier, device=device), str(classifier)
    if not hasattr(classifier, "labels") and not _is_mc(classifier):
        raise UserError(f"--classifier must be a classifier folder or a loaded model (got "
                        f"{type(classifier).__name__})")
    return classifier.to(device), None


def _is_mc(model) -> bool:
    try:
        from probekit.classifiers.multiple_choice.model import MultipleChoiceModel
    except ImportError:              # pragma: no cover - the multiple-choice model ships with probekit
        return False
    return isinstance(model, MultipleChoiceModel)


def _encoder_of(model):
    for name in ("source", "encoder"):
        enc = getattr(model, name, None)
        if enc is not None and hasattr(enc, "fingerprint"):
            return enc
    return None


def _datasets(data, reader, limit, seed: int = 0) -> dict:
    """name → items; ``data`` is one spec, several specs (one column each) or a list of items. ``limit`` keeps a
    seeded random sample of that many items, in their order (the first N of a sorted file such as ``rt:test``
    would all be one class)."""
    if data is None:
        raise UserError("--data is required")
    if isinstance(data, (str, os.PathLike)):
        specs = {str(data): data}
    elif isinstance(data, (list, tuple)) and data and all(isinstance(d, (str, os.PathLike)) for d in data):
        specs = {str(d): d for d in data}
    else:
        specs = {"data": list(data)}
    out = {}
    for name, spec in specs.items():
        out[name] = seeded_sample(reader(spec), limit, seed)
    return out


def _percentages(name, value):
    ks = [checks.number(name, k, above=0, maximum=100) for k in ([value] if isinstance(value, (int, float)) else value)]
    if not ks:
        raise UserError(f"{checks.flag(name)} needs at least one percentage")
    return tuple(sorted(set(ks)))


def _resamples(name, value):
    return checks.integer(name, value, minimum=1000, maximum=1_000_000, optional=True)


@dataclass(frozen=True, kw_only=True)
class AttackOptions(DeviceOptions, SampleOptions):
    """The options of :func:`attack` (and ``python -m probekit.attack``)."""

    classifier: Any = option(help="a classifier folder (probekit.classify --out), multiple-choice or not; a Hugging "
                                  "Face …ForSequenceClassification folder, or a model id in the local Hugging Face "
                                  "cache", metavar="DIR")
    data: Any = option(help="test data: a file or a named set (rt:test, mc160:test); several give several columns",
                       nargs="+", metavar="FILE")
    attacks: tuple | None = option(None, lambda: f"a subset; multiple choice: "
                                         f"{' '.join(attack_names('multiple-choice', 'test'))}; classifier: "
                                         f"{' '.join(attack_names('single-text', 'test'))} (default: all)", nargs="+",
                                   choices=lambda: list(dict.fromkeys([*attack_names("multiple-choice", "test"),
                                                                       *attack_names("single-text", "test")])),
                                   metavar="ATTACK")
    limit: int | None = option(None, "a seeded random sample of N items of each --data (kept in file order; --seed)",
                               type=int, metavar="N", check=optional_positive)
    draws: int = option(5, "seeded draws of every random setting", type=int, check=positive)
    ks: tuple = option((1, 2, 5, 10), "key-word attacks: percentages of the words", nargs="+", type=float,
                       metavar="K", check=_percentages)
    method: str = option("integrated-gradients", "attribution method that ranks the words for the key-word "
                                                 "attacks")
    augment: Any = option(None, "also write the perturbed items as a JSON Lines data file for probekit.classify",
                          metavar="FILE")
    train: Any = option(None, "multiple choice: training items; retrain on P-/Q-/PQ-Shuffle and -Remove versions")
    dev: Any = option(None, "multiple choice: dev items for the retrainings' model selection (corrupted alike)")
    unanswerable: tuple | None = option(None, lambda: f"retrain only on these: "
                                               f"{' '.join(attack_names('multiple-choice', 'training'))} "
                                               f"(default: all six)", nargs="+",
                                        choices=lambda: attack_names("multiple-choice", "training"),
                                        metavar="SETTING")
    checkpoints: Any = option(None, "retraining checkpoints, one folder per setting (default: OUT-checkpoints "
                                    "beside --out); a killed run resumes from its last finished epoch",
                              metavar="DIR")
    epochs: int | None = option(None, f"retraining epochs {_OWN}", type=int, check=optional_positive)
    lr: float | None = option(None, f"retraining learning rate {_OWN}", type=float, check=optional_above_zero)
    max_length: int | None = option(None, f"retraining max length {_OWN}", type=int, check=max_length)
    resamples: int | None = option(None, "bootstrap resamples of the drops' 95%% intervals, 1000 to 1000000 "
                                         "(default 9999)", type=int, check=_resamples)
    batch_size: int = option(16, "items per forward pass (default %(default)s)", type=int, check=positive)
    data_root: Any = data_root_option()
    ray: str | None = ray_option("the un-answerable retrainings")
    overwrite: bool = option(False, "replace an existing --augment file", cli=False)

    def check(self) -> None:
        if isinstance(self.data, tuple) and len(self.data) == 1 and isinstance(self.data[0], (str, os.PathLike)):
            self._set(data=self.data[0])      # one file on the command line: one column, as in Python


@takes(AttackOptions, args=("classifier", "data"))
def attack(o: AttackOptions) -> AttackResult:
    """Attack ``classifier`` (a folder or a loaded model) on ``data`` (a file, a named set such as ``rt:test`` or
    ``mc160:test``, several of them — one table column each — or a list of Examples/MCItems).

    ``attacks`` picks a subset (multiple choice: AddSent2Pas-Shuffle AddSent2Opt-Shuffle AddAns2Opt-Shuffle;
    classifier: word-shuffle distractor delete mask); ``draws`` seeded draws (seeds ``seed … seed+draws-1``) of
    every random setting; ``ks`` the percentages of words of the key-word attacks; ``method`` the attribution
    method ranking the words. Multiple choice only: ``train``/``dev`` (with ``epochs``, ``lr``, ``max_length``)
    retrain on the un-answerable versions (``unanswerable``: a subset of P-Shuffle Q-Shuffle PQ-Shuffle P-Remove
    Q-Remove PQ-Remove, default all six), checkpoints under ``checkpoints/<setting>`` (resumable); with ``ray``
    (``"auto"`` or a cluster address) the retrainings run as Ray tasks, the same table. ``augment``
    must not exist (unless ``overwrite``) and must not be one of the run's inputs; it is written whole or not
    at all. ``resamples``: bootstrap resamples of the drops' 95 % intervals (default 9999). Options:
    :class:`AttackOptions`.
    """
    classifier, data, attacks, train, dev, device = o.classifier, o.data, o.attacks, o.train, o.dev, o.device
    if o.augment is not None:
        checks.output_file("augment", o.augment, overwrite=o.overwrite, inputs=_paths(data, train, dev, classifier))
    unanswerable = attack_names("multiple-choice", "training") if o.unanswerable is None else list(o.unanswerable)
    mc_attacks, text_attacks = attack_names("multiple-choice", "test"), attack_names("single-text", "test")
    common = dict(limit=o.limit, draws=o.draws, seed=o.seed, batch_size=o.batch_size, data_root=o.data_root,
                  quiet=o.quiet, resamples=o.resamples)
    model, path = _load(classifier, device)
    start = time.perf_counter()
    if _is_mc(model):
        attacks = checks.choices("attacks", mc_attacks if attacks is None else attacks, mc_attacks)
        result = _attack_mc(model, data, attacks=attacks, train=train, dev=dev, epochs=o.epochs, lr=o.lr,
                            max_length=o.max_length, checkpoints=o.checkpoints, device=device,
                            unanswerable=unanswerable, path=path, **common)
    else:
        if train is not None or dev is not None:
            raise UserError("--train/--dev (un-answerable retraining) need a multiple-choice model "
                            "(python -m probekit.classify --task multiple-choice)")
        attacks = checks.choices("attacks", text_attacks if attacks is None else attacks, text_attacks)
        from probekit.attribution.registry import resolve

        method = resolve([o.method], model)[0]
        result = _attack_classifier(model, data, attacks=attacks, ks=list(o.ks), method=method, **common)
    frame, table, kind, augmented, counts, extra, chance = result
    frame = tidy(pd.DataFrame(frame), task="attack", model=_model_name(model), keys=KEYS)
    empty = [c for c in frame.columns if c not in ("layer", "head") and frame[c].isna().all()]
    frame = frame.drop(columns=empty)
    for col in ("draw", "n"):
        if col in frame.columns:
            frame[col] = pd.array(frame[col], dtype="Int64")
    arguments = {**o.record(), "classifier": path or type(model).__name__, "data": _name(data),
                 "attacks": list(attacks), "train": _name(train), "dev": _name(dev),
                 "unanswerable": unanswerable if train is not None else None,
                 "method": method if kind == "classifier" else None}
    record = run_record("attack", arguments, encoder=_encoder_of(model),
                        inputs={"data": _name(data), "classifier": path}, counts=counts, kind=kind,
                        timing={"total_s": round(time.perf_counter() - start, 1), **extra.pop("timing", {})},
                        **extra)
    out = AttackResult(frame, record, table, kind, augmented, chance)
    if o.augment is not None:
        write_augmented(out, o.augment)
    return out


def _paths(*specs) -> list:
    """Every file a run reads, from specs that are paths, lists of paths or anything else."""
    out = []
    for spec in specs:
        if isinstance(spec, (str, os.PathLike)):
            out.append(spec)
        elif isinstance(spec, (list, tuple)):
            out += [s for s in spec if isinstance(s, (str, os.PathLike))]
    return out


def _name(spec):
    if spec is None:
        return None
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(s, (str, os.PathLike)) for s in spec):
        return [str(s) for s in spec]
    return f"{len(spec)} items" if isinstance(spec, (list, tuple)) else str(spec)


def _model_name(model) -> str:
    enc = _encoder_of(model)
    return enc.name if enc is not None else type(model).__name__


def write_augmented(result: AttackResult, path) -> Path:
    """The perturbed items as a data file: MC JSON Lines (``write_mc_jsonl``) or classifier JSON Lines, written
    beside ``path`` and renamed into place."""
    from probekit.core.outputs import write_atomic

    if result.kind == "multiple-choice":
        from probekit.corpora.multiple_choice import write_mc_jsonl as write
    else:
        from probekit.attacks.perturb import write_jsonl as write
    return write_atomic(path, lambda tmp: write(result.augmented, tmp), name="augment")


#: the settings of ``classify --task multiple-choice`` that un-answerable retrainings copy from the attacked model
TRAINING_KEYS = ("epochs", "lr", "head_lr", "batch_size", "max_length", "micro_batch", "weight_decay", "warmup")


def training_options(folder, **given) -> dict:
    """How to retrain: the attacked model's own training settings (its run's ``config.json`` beside the
    classifier, when there is one), with the options given here (not None) taking precedence — so "trained on
    P-Shuffle" differs from "intact" in its data only, not in its batch size or epochs."""
    import json

    recorded = {}
    cfg = None if folder is None else Path(folder) / "config.json"
    if cfg is not None and cfg.is_file():
        try:
            arguments = json.loads(cfg.read_text(encoding="utf-8")).get("arguments") or {}
        except (json.JSONDecodeError, AttributeError):
            arguments = {}
        recorded = {k: arguments[k] for k in TRAINING_KEYS if arguments.get(k) is not None}
    return {**recorded, **{k: v for k, v in given.items() if v is not None}}


def _attack_mc(model, data, *, attacks, train, dev, limit, draws, seed, batch_size, epochs, lr, max_length,
               checkpoints, data_root, device, quiet, unanswerable, path=None, resamples=None):
    from probekit.corpora.multiple_choice import read_mc

    if (train is None) != (dev is None):
        raise UserError("un-answerable retraining needs both --train and --dev")
    sets = _datasets(data, lambda s: read_mc(s, what="--data", data_root=data_root), limit, seed)
    train_items = dev_items = None
    if train is not None:
        train_items = read_mc(train, what="--train", data_root=data_root)
        dev_items = read_mc(dev, what="--dev", data_root=data_root)
    rows, augmented, truncated = [], [], {}
    for name, items in sets.items():
        r, a, t = mc_run.evaluate_attacks(model, items, name, attacks=attacks, draws=draws, seed=seed,
                                          batch_size=batch_size, resamples=resamples)
        rows += r
        augmented += a
        truncated[name] = t
    extra = {"truncated": truncated}
    if train_items is not None:
        options = training_options(path, epochs=epochs, lr=lr, max_length=max_length)
        # retrain from the pre-trained encoder the attacked model was fine-tuned from, not from its weights
        r, timing = mc_run.retrain(train_items, dev_items, sets, settings=unanswerable, checkpoints=checkpoints,
                                   seed=seed, base_model=getattr(model, "source_name", None), options=options,
                                   batch_size=batch_size, device=device, quiet=quiet)
        rows += r
        extra["timing"] = {f"retrain {k}_s": v for k, v in timing.items()}
        extra["retraining"] = options
    frame = pd.DataFrame(rows)
    counts = {"items": {n: len(v) for n, v in sets.items()}, "augmented": len(augmented)}
    if train_items is not None:
        counts.update(train_items=len(train_items), dev_items=len(dev_items))
    return frame, mc_run.table(frame), "multiple-choice", augmented, counts, extra, None


def _attack_classifier(model, data, *, attacks, limit, draws, ks, method, seed, batch_size, data_root, quiet,
                       resamples=None):
    from probekit.corpora.labelled import load_split

    sets = _datasets(data, lambda s: load_split(s, what="--data", data_root=data_root), limit, seed)
    rows, augmented, chance = [], [], {}
    for name, examples in sets.items():
        r, a = keywords.evaluate(model, examples, name, ks=ks, draws=draws, method=method, seed=seed,
                                 batch_size=batch_size, attacks=attacks, resamples=resamples)
        rows += r
        augmented += a
        gold = keywords.gold_ids(model, examples, name)
        chance[name] = float(pd.Series(gold).value_counts(normalize=True).max())
    frame = pd.DataFrame(rows)
    counts = {"examples": {n: len(v) for n, v in sets.items()}, "augmented": len(augmented)}
    return frame, keywords.summary(frame), "classifier", augmented, counts, {"chance": chance}, chance
