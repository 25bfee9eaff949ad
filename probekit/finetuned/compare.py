"""``pk.compare(finetuned, base=…)``: a fine-tuned model against the model it came from, on one corpus.

One joint pass (each model runs once, :func:`~probekit.finetuned.pair.joint_pass`) gives, per layer 0…L, the
linear CKA between the two models' word vectors (:mod:`.cka`: the full-batch unbiased estimator, accumulated
over the corpus, with a 95 % interval from a bootstrap over minibatches; special tokens left out), per head the
mean Jensen–Shannon divergence between their word-level attention rows (:mod:`.attention_change`), and Clark's
attention statistics of both (:class:`~probekit.heads.statistics.AttentionStats`). Each probe task is then
probed on both models through :func:`probekit.probe` (its own data, through the activation cache: the cache key
holds each model's weight fingerprint, so one model's vectors are never served for the other)::

    import probekit as pk
    result = pk.compare("runs/ft-rt", corpus="rt:dev", tasks=["nth_token"], quiet=True)
    result.cka            # layer, value, ci_low, ci_high, n_words
    result.write("runs/compare-rt")

``frame`` (results.csv, tidy): task ``cka`` (model ``base-vs-finetuned``, per layer), ``attention_js``
(base-vs-finetuned, per layer × head), ``attention`` (model ``base`` / ``finetuned``, Clark's statistics per
head) and every probe task's rows (model ``base`` / ``finetuned``).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from probekit.core import checks
from probekit.core.errors import UserError
from probekit.core.intervals import paired_difference
from probekit.core.options import (CacheOptions, DeviceOptions, SampleOptions, data_root_option, max_length, option,
                            optional_positive, positive, takes)
from probekit.core.result import Result, tidy

PAIR = "base-vs-finetuned"
ROLES = ("base", "finetuned")


class CompareResult(Result):
    """``frame`` (results.csv); ``cka`` (layer, value), ``js`` (layer, head, value), ``stats`` (layer, head,
    metric, base, finetuned, change), ``probing`` (the probe rows of ``frame``); ``record``."""

    command = "compare"

    def __init__(self, frame: pd.DataFrame, record: dict, *, cka: pd.DataFrame, js: pd.DataFrame,
                 stats: pd.DataFrame, probing: pd.DataFrame | None):
        super().__init__(frame, record)
        self.cka, self.js, self.stats, self.probing = cka, js, stats, probing

    def files(self) -> list[str]:
        return ["results.csv", "summary.md"]

    def summary(self) -> str:
        from probekit.report.compare_report import summary_markdown

        return summary_markdown(self)

    def write_files(self, run) -> None:
        from probekit.report import compare_report as rep
        from probekit.core.rundir import write_tidy

        write_tidy(run, self.frame)
        run.write_text("summary.md", self.summary())
        run.save_figure(rep.plot_cka(self.cka, self.record), "cka_by_layer")
        run.save_figure(rep.plot_js(self.js, self.record), "attention_js")
        run.save_figure(rep.plot_stats(self.stats, self.record), "attention_stats")
        if self.probing is not None:
            for task, rows in self.probing.groupby("task", sort=False):
                run.save_figure(rep.plot_probe(rows, task, self.record), f"probe_{task}")


class _Paired:
    """The paired accumulators of the joint pass: CKA over non-special units and JS over attention rows."""

    def __init__(self, L: int, H: int, cka_batch_size: int):
        from probekit.finetuned.attention_change import AttentionChange
        from probekit.finetuned.cka import StreamingCKA

        self.cka = StreamingCKA(L + 1, cka_batch_size)
        self.js = AttentionChange(L, H)
        self.n_words = 0

    def update(self, a, b) -> None:
        words = ~np.asarray(a.special, dtype=bool)
        self.cka.add(a.hidden[:, words], b.hidden[:, words])
        self.js.add(a.attention.array, b.attention.array)
        self.n_words += int(words.sum())


def _probe_kinds():
    from probekit.probing.probe import PROBES

    return PROBES


def _cka_batch_size(name, value):
    return checks.integer(name, value, minimum=4)


@dataclass(frozen=True, kw_only=True)
class CompareOptions(DeviceOptions, CacheOptions, SampleOptions):
    """The options of :func:`compare` (and ``python -m probekit.compare``)."""

    finetuned: Any = option(help="a classifier folder from python -m probekit.classify --finetune, a Hugging Face "
                                 "model folder (a sequence classifier's too), or a classifier's model id in the "
                                 "local Hugging Face cache", metavar="DIR")
    base: Any = option(None, "model id or folder (default: the encoder the classifier was trained from, else the "
                             "bundled all-MiniLM-L6-v2)", metavar="MODEL")
    corpus: Any = option(None, "a .txt (one sentence per line), .conllu, a classifier's data (.jsonl, .tsv) or a "
                               "named set such as rt:dev (default: 500 sentences generated from the english "
                               "grammar)")
    data_root: Any = data_root_option()
    limit: int | None = option(None, "a seeded random sample of N inputs of --corpus (kept in file order; --seed), "
                                     "or N generated sentences", type=int, metavar="N", check=optional_positive)
    tasks: tuple = option(("nth_token",), "probe tasks run on both models, each on its own data (none: no "
                                          "probing)", nargs="*", metavar="TASK")
    probes: tuple = option(("linear",), "probes per layer", nargs="+", choices=_probe_kinds)
    probe_epochs: int = option(6, "epochs of each probe", type=int, check=positive)
    task_options: Any = option(None, "task → its own options, e.g. {'nth_token': {'n': 2}}", cli=False)
    cka_batch_size: int = option(1024, "words per CKA minibatch, the units of CKA's bootstrap interval (the CKA "
                                       "value is the full-batch one whatever the size)", type=int,
                                 check=_cka_batch_size)
    attention_from: str = option("mean", "a word's attention row: the mean of its pieces' rows, or the first "
                                         "piece's", choices=("mean", "first"))
    max_length: int | None = option(None, "truncate inputs to this many tokens (default: a classifier's own "
                                          "max_length, else the models' maximum)", type=int, check=max_length)

    def check(self) -> None:
        if isinstance(self.tasks, str):
            self._set(tasks=(self.tasks,))
        if not self.tasks:      # no probing: the probes are not read
            self._set(tasks=())


@takes(CompareOptions, args=("finetuned",))
def compare(o: CompareOptions) -> CompareResult:
    """Compare ``finetuned`` (a ``classify --finetune`` folder, a model folder or an Encoder) with ``base``
    (default: the encoder the classifier records, else the bundled model) on ``corpus`` (None: generated
    sentences; a named set like ``rt:dev``, found under ``data_root`` (default ``$PROBEKIT_DATA``, else
    ``~/.local/share/probekit/data``); ``.jsonl``/``.tsv`` classifier data; ``.conllu``; ``.txt``).

    ``tasks``: probe tasks run on both models (empty: none), each on its own data with ``task_options[task]``;
    ``probes``/``probe_epochs`` as in :func:`probekit.probe`. ``cka_batch_size``: words per CKA minibatch (the
    units of CKA's bootstrap interval; the CKA value itself is the full-batch one whatever the size).
    Inputs go through the models in a seeded random order, so minibatches hold random sentences.
    ``max_length`` None: a classifier's own ``max_length``, else the models' maximum; ``limit`` a seeded random
    sample of the corpus. Options: :class:`CompareOptions`.
    """
    from probekit.probing.registry import get_task

    finetuned, base, corpus, limit, seed = o.finetuned, o.base, o.corpus, o.limit, o.seed
    tasks, probes, task_options, max_length = list(o.tasks), list(o.probes), dict(o.task_options or {}), o.max_length
    batch_size, device, cache_dir, no_cache, dtype = o.batch_size, o.device, o.cache_dir, o.no_cache, o.dtype
    task_objects = [get_task(t) for t in tasks]
    unknown = [t for t in task_options if t not in [t.name for t in task_objects]]
    if unknown:
        raise UserError(f"task options given for {', '.join(unknown)}, which --tasks does not name")
    from probekit.heads.statistics import AttentionStats
    from probekit.core.rundir import model_record, run_record
    from probekit.finetuned.pair import check_same_vocabulary, joint_pass, load_base, load_finetuned, read_corpus

    examples, how = read_corpus(corpus, limit=limit, seed=seed, data_root=o.data_root)
    ft, ft_info = load_finetuned(finetuned, device=device)
    if max_length is None and ft_info.get("max_length"):
        max_length = int(ft_info["max_length"])   # compare on the inputs the classifier was trained to see
    bs = load_base(base, ft_info["base"], device=device, refused=getattr(ft, "refused_base", None))
    check_same_vocabulary(bs, ft)
    same = _same_weights(bs, ft)
    L, H = bs.num_layers, bs.num_heads
    if (ft.num_layers, ft.num_heads, ft.hidden_size) != (L, H, bs.hidden_size):
        raise UserError(f"--base {bs.name} ({L} layers × {H} heads) and --finetuned {ft.name} "
                        f"({ft.num_layers} × {ft.num_heads}) differ in shape")

    started = time.perf_counter()
    paired = _Paired(L, H, o.cka_batch_size)
    order = np.random.default_rng(seed).permutation(len(examples))   # random minibatch membership for CKA's CI
    examples = [examples[i] for i in order]
    stats = {role: AttentionStats(enc, similarity=False, word_level=True, model=role)
             for role, enc in zip(ROLES, (bs, ft))}
    truncated = joint_pass(bs, ft, examples, paired=[paired], base_analyses=[stats["base"]],
                           finetuned_analyses=[stats["finetuned"]], batch_size=batch_size, max_length=max_length,
                           attention_from=o.attention_from)
    joint_s = time.perf_counter() - started
    cka_ci = paired.cka.intervals(seed=seed)
    js_values = paired.js.result()
    cka = pd.DataFrame({"layer": np.arange(L + 1), "value": [c.estimate for c in cka_ci],
                        "ci_low": [c.ci_low for c in cka_ci], "ci_high": [c.ci_high for c in cka_ci],
                        "n_words": [c.n for c in cka_ci]})
    js = pd.DataFrame({"layer": np.repeat(np.arange(1, L + 1), H), "head": np.tile(np.arange(1, H + 1), L),
                       "value": js_values.ravel()})
    stat_frames = {role: acc.result() for role, acc in stats.items()}
    wide = stat_frames["base"][["layer", "head", "metric", "value"]].rename(columns={"value": "base"})
    wide["finetuned"] = stat_frames["finetuned"]["value"].to_numpy()
    wide["change"] = wide["finetuned"] - wide["base"]

    probing, probe_s = None, 0.0
    if task_objects:
        started = time.perf_counter()
        parts = []
        for task in task_objects:
            results = {}
            for role, enc in zip(ROLES, (bs, ft)):
                results[role] = _probe(task, enc, probes, o.probe_epochs, task_options.get(task.name, {}),
                                       batch_size, max_length, cache_dir, no_cache, dtype, seed, o.quiet)
                parts.append(results[role].frame.assign(model=role))
            parts.append(probe_changes(task.name, results["base"], results["finetuned"], seed))
        probing = pd.concat(parts, ignore_index=True)
        probe_s = time.perf_counter() - started

    frame = pd.concat([
        tidy(cka.assign(metric="linear_cka_unbiased"), task="cka", model=PAIR),
        tidy(js.assign(metric="jensen_shannon"), task="attention_js", model=PAIR),
        *[tidy(f.drop(columns=["task", "model"]), task="attention", model=role) for role, f in stat_frames.items()],
        *([probing] if probing is not None else []),
    ], ignore_index=True)
    keys = list(dict.fromkeys(k for t in task_objects for k in t.key_names))
    for k in keys:      # task keys such as n stay whole numbers beside the rows that have none
        if k in frame.columns and pd.api.types.is_numeric_dtype(frame[k]) and \
                (frame[k].dropna() % 1 == 0).all():
            frame[k] = pd.array(frame[k], dtype="Int64")
    frame = tidy(frame, task="", model="", keys=keys)

    given = corpus if corpus is None or isinstance(corpus, (str, os.PathLike)) else f"{len(examples)} Examples"
    arguments = {**o.record(), "finetuned": str(getattr(finetuned, "name", finetuned)),
                 "base": None if base is None else str(getattr(base, "name", base)),
                 "corpus": None if given is None else str(given),
                 "tasks": tasks, "probes": probes, "task_options": task_options, "max_length": max_length}
    record = run_record(
        "compare", arguments, encoder=bs, inputs={"corpus": how, "finetuned": ft_info},
        counts={"n_inputs": len(examples), "n_truncated": truncated, "n_words": paired.n_words,
                "cka_minibatches": paired.cka.n_batches, "cka_words_used": paired.cka.n_rows},
        finetuned=model_record(ft), same_weights=same,
        estimators={"cka": f"full-batch linear CKA with the unbiased HSIC1 (Song et al. 2012), accumulated over "
                           f"the corpus, special tokens left out; 95% interval: paired bootstrap over "
                           f"{paired.cka.n_batches} minibatches of {o.cka_batch_size} words (inputs in a seeded "
                           f"random order), placed around the full-batch value",
                    "attention_js": "Jensen-Shannon divergence (nats, at most ln 2) between word-level attention "
                                    "rows (every unit's row, [CLS]/[SEP] included), mean over rows then inputs",
                    "attention": "Clark et al. statistics at word level, each model on its own"},
        timing={"joint_pass_s": round(joint_s, 1), "probing_s": round(probe_s, 1)})
    return CompareResult(frame, record, cka=cka, js=js, stats=wide,
                         probing=None if probing is None else probing.reset_index(drop=True))


def probe_changes(task: str, base, finetuned, seed: int) -> pd.DataFrame:
    """``accuracy_change`` rows (model ``base-vs-finetuned``): per layer, probe, split and probe seed, the
    fine-tuned model's accuracy (mean over the task keys) minus the base's, with a 95% interval from a paired
    bootstrap over the same sentences (both sweeps probe the same task data with the same seeds)."""
    rows = []
    for key, right_base in base.correctness.items():
        right_ft = finetuned.correctness.get(key)
        if right_ft is None:
            continue
        layer, probe, split, probe_seed = key
        with np.errstate(all="ignore"):      # a sentence with no target in any key is NaN, dropped as a pair
            a, b = np.nanmean(right_ft, axis=1), np.nanmean(right_base, axis=1)
        d = paired_difference(a, b, seed=seed, vectorized=True)
        rows.append({"task": task, "layer": layer, "probe": probe, "split": split, "seed": probe_seed,
                     "metric": "accuracy_change", "value": d.estimate, "ci_low": d.ci_low, "ci_high": d.ci_high,
                     "n_sentences": d.n, "model": PAIR})
    return pd.DataFrame(rows)


def _same_weights(a, b) -> bool:
    """Whether two encoders hold identical weights (names and configs aside)."""
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape and bool((sa[k] == sb[k]).all())
                                          for k in sa)


def _probe(task, encoder, probes, epochs, options, batch_size, max_length, cache_dir, no_cache, dtype, seed, quiet):
    """One model's layer sweep on ``task`` via :func:`probekit.probe` (its data and the activation cache)."""
    from probekit.probing.probe import probe

    return probe(task, model=encoder, probes=probes, epochs=epochs, batch_size=batch_size, max_length=max_length,
                 device=encoder.device, cache_dir=cache_dir, no_cache=no_cache, dtype=dtype, seed=seed,
                 quiet=quiet, **options)
