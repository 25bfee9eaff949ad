"""``pk.structural(train=…, dev=…)``: Hewitt & Manning's distance and depth probes on every layer.

Word vectors come through the activation cache (all layers in one pass, reused by later runs); each layer gets
its own distance and depth probe, trained on the training treebank and scored on the dev treebank, beside the
linear-position baseline. Sentences that the model's length limit cuts are left out and counted.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.progress import quiet_option
from ..core import checks
from ..core.errors import UserError
from ..core.progress import progress
from ..report.result import Result, tidy
from . import structural as sp

METRICS = {"distance": ("uuas", "dspr"), "depth": ("root_acc", "nspr")}


class StructuralResult(Result):
    """``.frame``: one row per (layer or baseline, probe, metric) on the dev set; ``.history``: loss per
    epoch; ``.example``: gold and predicted distances of one dev sentence (for the tree figure)."""

    command = "structural"

    def __init__(self, frame, record, history, example):
        super().__init__(frame, record)
        self.history = history
        self.example = example

    def write_files(self, run) -> None:
        from ..report.rundir import write_tidy
        from ..report.structural import markdown_report, plot_by_layer, plot_tree

        write_tidy(run, self.frame)
        write_tidy(run, self.history, "history.csv")
        run.write_text("results.md", markdown_report(self.frame, self.record))
        run.save_figure(plot_by_layer(self.frame, self.model), "structural_by_layer")
        if self.example is not None:
            run.save_figure(plot_tree(**self.example, model=self.model), "tree")

    def files(self) -> list[str]:
        return ["results.csv", "results.md", "structural_by_layer.png"]


def _sentences(store, examples, keep, layer) -> list[sp.Sentence]:
    hidden = store.hidden(layer)
    out = []
    for i in keep:
        rows = np.arange(store.offsets[i], store.offsets[i + 1])
        words = rows[~store.special[rows]]
        ex = examples[i]
        if len(words) != len(ex.words):
            raise UserError(f"{ex.meta.get('source', i)}: {len(ex.words)} words but {len(words)} word vectors")
        out.append(sp.Sentence.of(np.asarray(hidden[words], dtype=np.float32), ex.meta["heads"], ex.tags))
    return out


@quiet_option
def structural(train: str | Path | None = None, dev: str | Path | None = None, *, probes=("distance", "depth"), rank: int | None = None, layers=None, epochs: int = 10,
               lr: float = 1e-3, probe_batch_size: int = 20, limit: int | None = None, skip_bad: bool = False,
               model: str | None = None, batch_size: int = 32, max_length: int | None = None, device: str = "cpu",
               cache_dir=None, no_cache: bool = False, dtype: str = "float16", seed: int = 0,
               quiet: bool = False) -> StructuralResult:
    """Distance and depth probes on every layer of ``model`` (or ``layers``), trained on ``train`` and scored on
    ``dev`` (CoNLL-U). ``rank`` defaults to the hidden size. Returns a :class:`StructuralResult`."""
    from ..core.cache import get_activations
    from ..core.encoder import load_encoder
    from ..corpora.conllu import read_conllu
    from ..report.rundir import run_record

    arguments = {k: (str(v) if isinstance(v, Path) else v) for k, v in locals().items()}
    train_path, dev_path = checks.input_file("train", train), checks.input_file("dev", dev)
    probes = checks.choices("probes", probes, sp.PROBES)
    checks.positive("rank", rank, optional=True)
    checks.positive("epochs", epochs)
    checks.number("lr", lr, above=0)
    checks.positive("probe_batch_size", probe_batch_size)
    checks.positive("limit", limit, optional=True)
    checks.model_options(batch_size=batch_size, max_length=max_length, device=device, dtype=dtype)

    examples = {s: read_conllu(p, skip_bad=skip_bad, limit=limit) for s, p in (("train", train_path),
                                                                                ("dev", dev_path))}
    for split, ex in examples.items():
        if not ex:
            raise UserError(f"--{split} {train_path if split == 'train' else dev_path}: no usable sentences")
    checks.scorable_words("dev", dev_path, examples["dev"])
    encoder = load_encoder(model, device=device)
    L = encoder.num_layers
    layers = list(range(L + 1)) if layers is None else [checks.integer("layers", l, minimum=0, maximum=L)
                                                        for l in ([layers] if isinstance(layers, int) else layers)]
    rank = rank or encoder.hidden_size
    stores, keep = {}, {}
    for split, ex in examples.items():
        stores[split] = get_activations(encoder, ex, cache_dir=cache_dir, use_cache=not no_cache, hidden=True,
                                        max_length=max_length, batch_size=batch_size, dtype=dtype)
        cut = set(stores[split].meta["truncated"])
        keep[split] = [i for i in range(len(ex)) if i not in cut]
    if not keep["train"] or not keep["dev"]:
        raise UserError("every sentence of a treebank is longer than the model's limit")

    rows, history, timing, example = [], [], {}, None
    dev_sents0 = _sentences(stores["dev"], examples["dev"], keep["dev"], 0)
    for kind in probes:
        for metric, value in sp.position_baseline(kind, dev_sents0).items():
            rows.append({"layer": pd.NA, "probe": kind, "baseline": "linear position", "split": "dev",
                         "metric": metric, "value": value})
    bar = progress(total=len(layers) * len(probes) * epochs, desc="structural probes", unit="epoch")
    for layer in layers:
        tr = _sentences(stores["train"], examples["train"], keep["train"], layer)
        dv = _sentences(stores["dev"], examples["dev"], keep["dev"], layer)
        for kind in probes:
            t0 = time.perf_counter()
            probe, hist = sp.train(kind, tr, dv, rank=rank, epochs=epochs, lr=lr, batch_size=probe_batch_size,
                                seed=seed, device=device, progress=lambda *_: bar.update(1))
            timing[f"{kind}/{layer}"] = round(time.perf_counter() - t0, 2)
            pred = sp.predict(probe, dv, device=device)
            for metric, value in sp.evaluate(kind, dv, pred).items():
                rows.append({"layer": layer, "probe": kind, "baseline": "", "split": "dev", "metric": metric,
                             "value": value})
            history += [{"layer": layer, "probe": kind, **h} for h in hist]
            if kind == "distance" and (example is None or layer == max(layers)):
                i = int(np.argmin([abs(len(s.heads) - 12) for s in dv]))
                ex = examples["dev"][keep["dev"][i]]
                example = {"words": ex.words, "heads": ex.meta["heads"], "predicted": pred[i],
                           "keep": dv[i].keep, "layer": layer}
    bar.close()
    frame = tidy(pd.DataFrame(rows), task="structural", model=encoder.name)
    record = run_record("structural", arguments, encoder=encoder,
                        inputs={"train": str(train_path), "dev": str(dev_path), "rank": rank, "layers": layers,
                                "punctuation": "UPOS PUNCT, left out of MST, gold edges and root",
                                "spearman_lengths": [5, 50]},
                        counts={s: {"sentences": len(examples[s]), "used": len(keep[s]),
                                    "truncated_left_out": len(examples[s]) - len(keep[s])} for s in examples},
                        seconds_per_probe=timing)
    return StructuralResult(frame, record, pd.DataFrame(history), example)
