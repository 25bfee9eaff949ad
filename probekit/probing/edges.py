"""``pk.edges(train=…, dev=…, test=…)``: edge probing of UPOS, dependency relations and GAP coreference.

For each task: a probe per layer, cumulative probes over the mixes of layers 0…l, and the mix of all layers,
whose softmax weights give the center of gravity E_s[l]; the cumulative scores give the expected layer E_Δ[l]
(Tenney et al. 2019), from micro-F1 as theirs. Beside them a non-contextual probe on layer 0 without position
embeddings (``layer-nopos``). Each probe is chosen on dev and scored on dev and test; ``seeds`` probes give a
mean with a Student-t interval, one seed a bootstrap interval over sentences. Word vectors come through the
activation cache (all layers in one pass).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from probekit.core import checks
from probekit.core.errors import UserError
from probekit.core.options import (CacheOptions, ModelOptions, RunOptions, above_zero, option, optional_input_file,
                            optional_positive, positive, takes)
from probekit.core.progress import progress
from probekit.core.result import Result, tidy
from probekit.core import intervals as iv
from probekit.probing import edge_probe as ep
from probekit.probing import edges_compare as ec

TASKS = ("upos", "deprel", "coref")
PAIR = {"upos": False, "deprel": True, "coref": True}


class EdgesResult(Result):
    """``.frame``: scores per task, probe kind (layer, cumulative, mix, layer-nopos), layer and split with 95 %
    intervals, the mixing weights, the center of gravity and the expected layer; ``.comparisons``: the paired
    differences the summary states."""

    command = "edges"

    def __init__(self, frame, record, comparisons=None):
        super().__init__(frame, record)
        self.comparisons = comparisons if comparisons is not None else pd.DataFrame()

    def write_files(self, run) -> None:
        from probekit.report.edges_report import markdown_report, plot_layers
        from probekit.core.rundir import write_tidy

        write_tidy(run, self.frame)
        if len(self.comparisons):
            write_tidy(run, self.comparisons, "comparisons.csv")
        run.write_text("results.md", markdown_report(self.frame, self.record, self.comparisons))
        run.save_figure(plot_layers(self.frame, self.model), "edges_by_layer")

    def files(self) -> list[str]:
        return ["results.csv", "results.md", "edges_by_layer.png"]


def _word_rows(store, n_examples):
    """Per example, the store rows of its words in order (special tokens left out)."""
    out = []
    for i in range(n_examples):
        r = np.arange(store.offsets[i], store.offsets[i + 1])
        out.append(r[~store.special[r]])
    return out


def _treebank_items(examples, rows, task):
    from probekit.corpora.conllu import strip_subtype

    items = []
    for ex, r in zip(examples, rows):
        if len(r) != len(ex.words):           # cut by the length limit: counted by the caller
            continue
        for j, word_row in enumerate(r):
            if task == "upos":
                items.append(([int(word_row)], [], ex.tags[j]))
            elif ex.meta["heads"][j] > 0:
                items.append(([int(word_row)], [int(r[ex.meta["heads"][j] - 1])], strip_subtype(ex.meta["deprels"][j])))
    return items


def _gap_items(examples, rows):
    items = []
    for ex, r in zip(examples, rows):
        m = ex.meta
        needed = [m["pronoun"], *m["a"], *m["b"]]
        if max(needed) >= len(r):
            continue
        for cand, true in ((m["a"], m["a_coref"]), (m["b"], m["b_coref"])):
            items.append(([int(r[m["pronoun"]])], [int(r[w]) for w in cand], "corefers" if true else "no"))
    return items


def _table(store, layers_all):
    return torch.stack([torch.from_numpy(np.array(store.hidden(l))) for l in layers_all])   # a copy in memory


def _nopos_table(store):
    return torch.from_numpy(np.array(store.no_position()))[None]


def _resamples(name, value):
    return checks.integer(name, value, minimum=100)


@dataclass(frozen=True, kw_only=True)
class EdgesOptions(ModelOptions, CacheOptions, RunOptions):
    """The options of :func:`edges` (and ``python -m probekit.edges``)."""

    train: Any = option(None, "training treebank (CoNLL-U), for upos and deprel", check=optional_input_file)
    dev: Any = option(None, "development treebank (CoNLL-U), for upos and deprel: picks each probe's parameters and "
                            "is scored", check=optional_input_file)
    test: Any = option(None, "test treebank (CoNLL-U), scored with the probes chosen on --dev",
                       check=optional_input_file)
    tasks: tuple = option(("upos", "deprel"), nargs="+", choices=TASKS)
    gap_train: Any = option(None, "GAP TSV to train the coref probe on", check=optional_input_file)
    gap_dev: Any = option(None, "GAP TSV that picks the coref probe's parameters (scored)",
                          check=optional_input_file)
    gap_test: Any = option(None, "GAP TSV scored with the coref probe chosen on --gap-dev", check=optional_input_file)
    epochs: int = option(10, "most epochs per probe (Tenney et al.'s schedule stops earlier when dev micro-F1 "
                             "stalls)", type=int, check=positive)
    val_interval: int = option(ep.VAL_INTERVAL, "training steps between dev checks (or one epoch, when shorter)",
                               type=int, check=positive)
    seeds: int = option(1, "probes per layer with seeds seed…seed+N-1: mean and Student-t interval over them",
                        type=int, check=positive)
    resamples: int = option(iv.RESAMPLES, "bootstrap resamples", type=int, check=_resamples)
    lr: float = option(ep.LR, "Adam learning rate", type=float, check=above_zero)
    probe_batch_size: int = option(ep.BATCH, "targets per probe training step", type=int, check=positive)
    limit: int | None = option(None, "use only the first N sentences (or GAP rows) of each file", type=int,
                               check=optional_positive)
    skip_bad: bool = option(False, "skip malformed sentences or rows (counted)")

    def check(self) -> None:
        """The files the chosen tasks read are required (``None`` → "--train is required")."""
        if any(t in ("upos", "deprel") for t in self.tasks):
            checks.input_file("train", self.train)
            checks.input_file("dev", self.dev)
        if "coref" in self.tasks:
            checks.input_file("gap_train", self.gap_train)
            checks.input_file("gap_dev", self.gap_dev)


@takes(EdgesOptions, args=("train", "dev"))
def edges(o: EdgesOptions) -> EdgesResult:
    """Edge probes on every layer: ``tasks`` from upos, deprel (CoNLL-U ``train``/``dev``/``test``) and coref
    (GAP ``gap_train``/``gap_dev``/``gap_test``); the test files are optional. ``epochs``: the most epochs.
    Options: :class:`EdgesOptions`. Returns an :class:`EdgesResult`."""
    from probekit.core.cache import get_activations
    from probekit.core.encoder import load_encoder
    from probekit.core.rundir import run_record

    arguments = o.record()
    tasks = list(o.tasks)
    files = {}
    if any(t in ("upos", "deprel") for t in tasks):
        files["treebank"] = {"train": o.train, "dev": o.dev, **({"test": o.test} if o.test is not None else {})}
    if "coref" in tasks:
        files["gap"] = {"train": o.gap_train, "dev": o.gap_dev,
                        **({"test": o.gap_test} if o.gap_test is not None else {})}
    epochs, lr, probe_batch_size, val_interval, seeds, resamples = (o.epochs, o.lr, o.probe_batch_size,
                                                                    o.val_interval, o.seeds, o.resamples)
    limit, skip_bad, model, batch_size, max_length, device = (o.limit, o.skip_bad, o.model, o.batch_size,
                                                              o.max_length, o.device)
    cache_dir, no_cache, dtype, seed = o.cache_dir, o.no_cache, o.dtype, o.seed

    encoder = load_encoder(model, device=device)
    L = encoder.num_layers
    nopos = encoder.position_embeddings is not None
    sources = {}
    if "treebank" in files:
        from probekit.corpora.conllu import read_conllu

        sources["treebank"] = {s: read_conllu(p, skip_bad=skip_bad, limit=limit) for s, p in files["treebank"].items()}
    if "gap" in files:
        from probekit.corpora.gap import read_gap

        sources["gap"] = {s: read_gap(p, skip_bad=skip_bad, exactly_one_true=False, limit=limit)
                          for s, p in files["gap"].items()}
    tables, rows, offsets = {}, {}, {}
    for name, splits in sources.items():
        for split, ex in splits.items():
            if not ex:
                raise UserError(f"{name} {split}: no usable examples")
            store = get_activations(encoder, ex, cache_dir=cache_dir, use_cache=not no_cache, hidden=True,
                                    no_position=nopos, max_length=max_length, batch_size=batch_size, dtype=dtype)
            tables[name, split] = _table(store, range(L + 1))
            if nopos:
                tables[name, split, "nopos"] = _nopos_table(store)
            rows[name, split] = _word_rows(store, len(ex))
            offsets[name, split] = np.asarray(store.offsets)

    out, counts, timing, scored = [], {}, {}, {}
    runs = ([("layer", [l], l) for l in range(L + 1)] + [("cumulative", list(range(l + 1)), l) for l in range(1, L + 1)]
            + ([(ec.NOPOS, [0], 0)] if nopos else []))
    bar = progress(total=len(tasks) * len(runs) * seeds, desc="edge probes", unit="probe")
    for task in tasks:
        name = "gap" if task == "coref" else "treebank"
        evals = [s for s in ("dev", "test") if s in sources[name]]
        items = {s: (_gap_items if task == "coref" else lambda e, r: _treebank_items(e, r, task))(
            sources[name][s], rows[name, s]) for s in ["train", *evals]}
        classes = ["no", "corefers"] if task == "coref" else None
        tr = ep.build_targets(items["train"], classes)
        targets = {s: ep.build_targets(items[s], tr.classes, width=tr.spans.shape[-1]) for s in evals}
        if len(tr) == 0 or any(len(t) == 0 for t in targets.values()):
            raise UserError(f"{task}: no training, dev or test targets")
        # each target's sentence: the store row of its first word, located among the sentences' row offsets
        sentences = {s: np.searchsorted(offsets[name, s], t.spans[:, 0, 0], side="right") - 1
                     for s, t in targets.items()}
        counts[task] = {"train": len(tr), "classes": len(tr.classes),
                        **{s: len(t) for s, t in targets.items()},
                        **{f"{s}_dropped_unseen_label": len(items[s]) - len(t) for s, t in targets.items()}}
        t0 = time.perf_counter()
        cumulative = {(s, k): [] for s in evals for k in range(seeds)}
        mix_weights = []
        for kind, layers, top in runs:
            suffix = ("nopos",) if kind == ec.NOPOS else ()
            values: dict = {}
            per: dict = {s: [] for s in evals}
            for k in range(seeds):
                probe = ep.EdgeProbeClassifier(pair=PAIR[task], epochs=epochs, lr=lr, batch_size=probe_batch_size,
                                               val_interval=val_interval, seed=seed + k, device=device,
                                               layers=tuple(layers))
                probe.fit(ep.Spans(tables[(name, "train", *suffix)], tr),
                          dev=ep.Spans(tables[(name, "dev", *suffix)], targets["dev"]))
                for s in evals:
                    prob = probe.predict_proba(ep.Spans(tables[(name, s, *suffix)], targets[s]))
                    for metric, value in ep.scores(prob, targets[s].labels, len(tr.classes)).items():
                        values.setdefault((s, metric), []).append(value)
                    per[s].append(ec.parts(prob, targets[s].labels, sentences[s], len(tr.classes)))
                    if kind == "layer" and top == 0 or kind == "cumulative":
                        cumulative[s, k].append(values[s, "micro_f1"][-1])
                if kind == "cumulative" and top == L:
                    mix_weights.append(probe.mix_weights())
                bar.update(1)
            for (s, metric), vals in values.items():
                out.append({"task": task, "probe": kind, "layer": top, "split": s, "metric": metric,
                            **ec.row_interval(metric, vals, per[s], seed, resamples)})
            for s in evals:
                scored[(task, kind, top, s)] = ec.mean_parts(per[s])
        timing[task] = round(time.perf_counter() - t0, 1)
        weights = np.mean(mix_weights, axis=0)
        for l, w in enumerate(weights):
            out.append({"task": task, "probe": "mix", "layer": l, "split": "", "metric": "mix_weight",
                        "value": float(w), "n": seeds})
        out.append({"task": task, "probe": "mix", "layer": pd.NA, "split": "", "aggregate": "all layers",
                    "metric": "center_of_gravity",
                    **_seeded([ep.center_of_gravity(w) for w in mix_weights])})
        for s in evals:
            out.append({"task": task, "probe": "cumulative", "layer": pd.NA, "split": s, "aggregate": "all layers",
                        "metric": "expected_layer",
                        **_seeded([ep.expected_layer(cumulative[s, k]) for k in range(seeds)])})
    bar.close()
    frame = pd.DataFrame(out)
    frame["aggregate"] = frame["aggregate"].fillna("") if "aggregate" in frame.columns else ""
    frame = tidy(frame, task="edges", model=encoder.name)
    compared = ec.comparisons(frame, scored, seed=seed, resamples=resamples)
    record = run_record(
        "edges", arguments, encoder=encoder,
        inputs={"tasks": tasks, **{k: {s: str(p) for s, p in v.items()} for k, v in files.items()},
                "probe": "scalar mix → per span a 256-d projection and self-attentive pooling → MLP (Tanh, "
                         "LayerNorm, dropout 0.3) → a sigmoid per label",
                "schedule": f"Adam lr {lr}, batch {probe_batch_size}, dev micro-F1 every {val_interval} steps (or "
                            f"epoch), rate x0.5 after {ep.LR_PATIENCE} checks without improvement, stop after "
                            f"{ep.PATIENCE} or {epochs} epochs, best check kept",
                "expected_layer_score": "micro-F1 (Tenney et al.)",
                "intervals": "Student t over seeds" if seeds > 1 else
                             f"bootstrap over sentences ({resamples} resamples; BCa and percentile envelope) for micro-F1, "
                             f"accuracy and macro-F1",
                "non_contextual": "layer 0 without position embeddings" if nopos else None},
        counts=counts, seconds_per_task=timing)
    return EdgesResult(frame, record, compared)


def _seeded(values: list[float]) -> dict:
    """Mean over seeds with its Student-t interval (no interval from one seed)."""
    ci = iv.over_seeds(values)
    return {"value": ci.estimate, "ci_low": ci.ci_low, "ci_high": ci.ci_high, "n": ci.n,
            "ci_over": "seeds" if ci.n > 1 else ""}
