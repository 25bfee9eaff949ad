"""``pk.edges(train=…, dev=…)``: edge probing of UPOS, dependency relations and GAP coreference on every layer.

For each task: a probe per layer, cumulative probes over the mixes of layers 0…l, and the mix of all layers,
whose softmax weights give the center of gravity E_s[l]; the cumulative scores give the expected layer E_Δ[l]
(Tenney et al. 2019). The score behind E_Δ is accuracy for the multi-class tasks and the F1 of "corefers" for
coreference. Word vectors come through the activation cache (all layers in one pass).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core.progress import quiet_option
from ..core import checks
from ..core.errors import UserError
from ..core.progress import progress
from ..report.result import Result, tidy
from . import edges as ep

TASKS = ("upos", "deprel", "coref")
PAIR = {"upos": False, "deprel": True, "coref": True}


class EdgesResult(Result):
    """``.frame``: scores per task, probe kind (layer, cumulative, mix) and layer, the mixing weights, the
    center of gravity and the expected layer."""

    command = "edges"

    def write_files(self, run) -> None:
        from ..report.edges import markdown_report, plot_layers
        from ..report.rundir import write_tidy

        write_tidy(run, self.frame)
        run.write_text("results.md", markdown_report(self.frame, self.record))
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
    from ..corpora.conllu import strip_subtype

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


@quiet_option
def edges(train: str | Path | None = None, dev: str | Path | None = None, *, tasks=("upos", "deprel"),
          gap_train: str | Path | None = None, gap_dev: str | Path | None = None, epochs: int = 3,
          lr: float = 1e-3, probe_batch_size: int = 128, limit: int | None = None, skip_bad: bool = False,
          model: str | None = None, batch_size: int = 32, max_length: int | None = None, device: str = "cpu",
          cache_dir=None, no_cache: bool = False, dtype: str = "float16", seed: int = 0,
          quiet: bool = False) -> EdgesResult:
    """Edge probes on every layer: ``tasks`` from upos, deprel (CoNLL-U ``train``/``dev``) and coref (GAP
    ``gap_train``/``gap_dev``). Returns an :class:`EdgesResult`."""
    from ..core.cache import get_activations
    from ..core.encoder import load_encoder
    from ..report.rundir import run_record

    arguments = {k: (str(v) if isinstance(v, Path) else v) for k, v in locals().items()}
    tasks = checks.choices("tasks", tasks, TASKS)
    if any(t in ("upos", "deprel") for t in tasks):
        train, dev = checks.input_file("train", train), checks.input_file("dev", dev)
    if "coref" in tasks:
        gap_train, gap_dev = checks.input_file("gap_train", gap_train), checks.input_file("gap_dev", gap_dev)
    checks.positive("epochs", epochs)
    checks.number("lr", lr, above=0)
    checks.positive("probe_batch_size", probe_batch_size)
    checks.positive("limit", limit, optional=True)
    checks.model_options(batch_size=batch_size, max_length=max_length, device=device, dtype=dtype)

    encoder = load_encoder(model, device=device)
    L = encoder.num_layers
    sources = {}
    if any(t in ("upos", "deprel") for t in tasks):
        from ..corpora.conllu import read_conllu

        sources["treebank"] = {s: read_conllu(p, skip_bad=skip_bad, limit=limit) for s, p in (("train", train),
                                                                                               ("dev", dev))}
    if "coref" in tasks:
        from ..corpora.gap import read_gap

        sources["gap"] = {s: read_gap(p, skip_bad=skip_bad, exactly_one_true=False, limit=limit)
                          for s, p in (("train", gap_train), ("dev", gap_dev))}
    tables, rows = {}, {}
    for name, splits in sources.items():
        for split, ex in splits.items():
            if not ex:
                raise UserError(f"{name} {split}: no usable examples")
            store = get_activations(encoder, ex, cache_dir=cache_dir, use_cache=not no_cache, hidden=True,
                                    max_length=max_length, batch_size=batch_size, dtype=dtype)
            tables[name, split] = _table(store, range(L + 1))
            rows[name, split] = _word_rows(store, len(ex))

    out, counts, timing = [], {}, {}
    bar = progress(total=len(tasks) * (2 * L + 1), desc="edge probes", unit="probe")
    for task in tasks:
        name = "gap" if task == "coref" else "treebank"
        items = {s: (_gap_items if task == "coref" else lambda e, r: _treebank_items(e, r, task))(
            sources[name][s], rows[name, s]) for s in ("train", "dev")}
        classes = ["no", "corefers"] if task == "coref" else None
        tr = ep.build_targets(items["train"], classes)
        dv = ep.build_targets(items["dev"], tr.classes, width=tr.spans.shape[-1])
        if len(tr) == 0 or len(dv) == 0:
            raise UserError(f"{task}: no training or dev targets")
        counts[task] = {"train": len(tr), "dev": len(dv), "classes": len(tr.classes),
                        "dev_dropped_unseen_label": len(items["dev"]) - len(dv)}
        main_metric = "f1" if len(tr.classes) == 2 else "accuracy"
        t0 = time.perf_counter()
        runs = [("layer", [l], l) for l in range(L + 1)] + [("cumulative", list(range(l + 1)), l)
                                                             for l in range(1, L + 1)]
        cumulative, mix_weights = [], None
        for kind, layers, top in runs:
            probe, pred = ep.train_probe(tables[name, "train"], tables[name, "dev"], layers, tr, dv, pair=PAIR[task], epochs=epochs,
                                         lr=lr, batch_size=probe_batch_size, seed=seed, device=device)
            sc = ep.scores(pred, dv.labels, len(tr.classes))
            for metric, value in sc.items():
                out.append({"task": task, "probe": kind, "layer": top, "metric": metric, "value": value})
            if kind == "layer" and top == 0 or kind == "cumulative":
                cumulative.append(sc[main_metric])
            if kind == "cumulative" and top == L:
                mix_weights = probe.mix.weights().detach().cpu().numpy()
            bar.update(1)
        timing[task] = round(time.perf_counter() - t0, 1)
        for l, w in enumerate(mix_weights):
            out.append({"task": task, "probe": "mix", "layer": l, "metric": "mix_weight", "value": float(w)})
        out.append({"task": task, "probe": "mix", "layer": pd.NA, "aggregate": "all layers",
                    "metric": "center_of_gravity", "value": ep.center_of_gravity(mix_weights)})
        out.append({"task": task, "probe": "cumulative", "layer": pd.NA, "aggregate": "all layers",
                    "metric": "expected_layer", "value": ep.expected_layer(cumulative)})
    bar.close()
    frame = pd.DataFrame(out)
    if "aggregate" in frame.columns:
        frame["aggregate"] = frame["aggregate"].fillna("")
    frame = tidy(frame, task="edges", model=encoder.name)
    record = run_record("edges", arguments, encoder=encoder,
                        inputs={"tasks": tasks, "treebank": {"train": str(train), "dev": str(dev)},
                                "gap": {"train": str(gap_train), "dev": str(gap_dev)},
                                "probe": "scalar mix → 256-d projection → self-attentive span pooling → 2-layer MLP",
                                "expected_layer_score": "accuracy (multi-class), F1 of corefers (coref)"},
                        counts=counts, seconds_per_task=timing)
    return EdgesResult(frame, record)
