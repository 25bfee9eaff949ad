"""``pk.structural(train=…, dev=…, test=…)``: Hewitt & Manning's distance and depth probes on every layer.

Word vectors come through the activation cache (all layers in one pass, reused by later runs); each layer gets
its own distance and depth probe, trained on the training treebank with Hewitt & Manning's regimen, the
parameters chosen on the dev treebank (lowest dev loss), and scored on dev and, when given, on the test
treebank. Beside them: the linear-position baseline and a non-contextual one (a probe on layer 0 without
position embeddings, probe ``distance-nopos`` / ``depth-nopos``). ``seeds`` probes per layer give a mean and a
Student-t interval; with one seed the interval is a bootstrap over sentences. Sentences that the model's length
limit cuts are left out and counted.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from probekit.core import checks
from probekit.core import intervals as iv
from probekit.core.errors import UserError
from probekit.core.options import (CacheOptions, ModelOptions, RunOptions, above_zero, input_file, option,
                            optional_input_file, optional_positive, positive, takes)
from probekit.core.progress import progress
from probekit.core.result import Result, tidy
from probekit.probing import structural_probes as sp
from probekit.probing.structural_compare import comparisons, row_interval

METRICS = sp.METRICS
NOPOS = "-nopos"


class StructuralResult(Result):
    """``.frame``: one row per (layer or baseline, probe, split, metric) with its 95 % interval (``ci_low``,
    ``ci_high``, ``n``, ``ci_over``); ``.comparisons``: the paired differences the summary states; ``.history``:
    loss per epoch; ``.example``: gold and predicted distances of one dev sentence (for the tree figure)."""

    command = "structural"

    def __init__(self, frame, record, history, example, comparisons=None):
        super().__init__(frame, record)
        self.history = history
        self.example = example
        self.comparisons = comparisons if comparisons is not None else pd.DataFrame()

    def write_files(self, run) -> None:
        from probekit.core.rundir import write_tidy
        from probekit.report.structural_report import markdown_report, plot_by_layer, plot_tree
        from probekit.probing.structural_probes import gold_edges, mst_edges

        write_tidy(run, self.frame)
        write_tidy(run, self.history, "history.csv")
        if len(self.comparisons):
            write_tidy(run, self.comparisons, "comparisons.csv")
        run.write_text("results.md", markdown_report(self.frame, self.record, self.comparisons))
        run.save_figure(plot_by_layer(self.frame, self.model), "structural_by_layer")
        if self.example is not None:
            ex = self.example
            gold, pred = gold_edges(ex["heads"], ex["keep"]), mst_edges(ex["predicted"], ex["keep"])
            run.save_figure(plot_tree(ex["words"], gold, pred, ex["keep"], ex["layer"], self.model), "tree")

    def files(self) -> list[str]:
        return ["results.csv", "results.md", "structural_by_layer.png"]


def _sentences(store, examples, keep, features) -> list[sp.Sentence]:
    out = []
    for i in keep:
        rows = np.arange(store.offsets[i], store.offsets[i + 1])
        words = rows[~store.special[rows]]
        ex = examples[i]
        if len(words) != len(ex.words):
            raise UserError(f"{ex.meta.get('source', i)}: {len(ex.words)} words but {len(words)} word vectors")
        out.append(sp.Sentence.of(np.asarray(features[words], dtype=np.float32), ex.meta["heads"], ex.tags))
    return out


def _mean_scores(runs: list[dict]) -> dict:
    """Per-sentence parts averaged over seeds (the paired comparisons resample these)."""
    return {k: np.mean([r[k] for r in runs], axis=0) for k in runs[0]}


def _resamples(name, value):
    return checks.integer(name, value, minimum=100)


@dataclass(frozen=True, kw_only=True)
class StructuralOptions(ModelOptions, CacheOptions, RunOptions):
    """The options of :func:`structural` (and ``python -m probekit.structural``)."""

    train: Any = option(help="training treebank (CoNLL-U)", check=input_file)
    dev: Any = option(help="development treebank (CoNLL-U): picks each probe's parameters (lowest dev loss) and is "
                           "scored", check=input_file)
    test: Any = option(None, "test treebank (CoNLL-U), scored with the probes chosen on --dev",
                       check=optional_input_file)
    probes: tuple = option(("distance", "depth"), nargs="+", choices=sp.PROBES)
    rank: int | None = option(None, "rank of the projection (default: the hidden size)", type=int,
                              check=optional_positive)
    layers: Any = option(None, "layers to probe (default: 0…L)", type=int, nargs="+")
    epochs: int = option(sp.EPOCHS, "most epochs per probe (Hewitt & Manning: learning rate x0.1 when the dev loss "
                                    "stalls, stop after 5 epochs without improvement, the lowest dev loss kept)",
                         type=int, check=positive)
    seeds: int = option(1, "probes per layer with seeds seed…seed+N-1: mean and Student-t interval over them "
                           "(1: a bootstrap interval over sentences)", type=int, check=positive)
    resamples: int = option(iv.RESAMPLES, "bootstrap resamples", type=int, check=_resamples)
    lr: float = option(1e-3, "Adam learning rate", type=float, check=above_zero)
    probe_batch_size: int = option(20, "sentences per probe training step", type=int, check=positive)
    limit: int | None = option(None, "use only the first N sentences of each file", type=int,
                               check=optional_positive)
    skip_bad: bool = option(False, "skip malformed sentences (counted) instead of stopping")


@takes(StructuralOptions, args=("train", "dev"))
def structural(o: StructuralOptions) -> StructuralResult:
    """Distance and depth probes on every layer of ``model`` (or ``layers``), trained on ``train``, chosen on
    ``dev`` and scored on ``dev`` and ``test`` (CoNLL-U; ``test`` optional). ``rank`` defaults to the hidden
    size; ``epochs`` is the most the regimen runs. Options: :class:`StructuralOptions`. Returns a
    :class:`StructuralResult`."""
    from probekit.core.cache import get_activations
    from probekit.core.encoder import load_encoder
    from probekit.corpora.conllu import read_conllu
    from probekit.core.rundir import run_record

    arguments = o.record()
    paths = {"train": o.train, "dev": o.dev, **({"test": o.test} if o.test is not None else {})}
    probes, rank, layers, epochs, lr, seeds, resamples, seed, device = (
        list(o.probes), o.rank, o.layers, o.epochs, o.lr, o.seeds, o.resamples, o.seed, o.device)
    limit, skip_bad, model, batch_size, max_length = o.limit, o.skip_bad, o.model, o.batch_size, o.max_length
    cache_dir, no_cache, dtype, probe_batch_size = o.cache_dir, o.no_cache, o.dtype, o.probe_batch_size

    examples = {s: read_conllu(p, skip_bad=skip_bad, limit=limit) for s, p in paths.items()}
    for split, ex in examples.items():
        if not ex:
            raise UserError(f"--{split} {paths[split]}: no usable sentences")
    checks.scorable_words("dev", paths["dev"], examples["dev"])
    encoder = load_encoder(model, device=device)
    L = encoder.num_layers
    layers = list(range(L + 1)) if layers is None else [checks.integer("layers", l, minimum=0, maximum=L)
                                                        for l in ([layers] if isinstance(layers, int) else layers)]
    rank = rank or encoder.hidden_size
    nopos = encoder.position_embeddings is not None
    stores, keep = {}, {}
    for split, ex in examples.items():
        stores[split] = get_activations(encoder, ex, cache_dir=cache_dir, use_cache=not no_cache, hidden=True,
                                        no_position=nopos, max_length=max_length, batch_size=batch_size,
                                        dtype=dtype)
        cut = set(stores[split].meta["truncated"])
        keep[split] = [i for i in range(len(ex)) if i not in cut]
    if not all(keep.values()):
        raise UserError("every sentence of a treebank is longer than the model's limit")
    evals = [s for s in ("dev", "test") if s in paths]

    def sents(split, source):
        layer, suffix = source
        feats = stores[split].no_position() if suffix else stores[split].hidden(layer)
        return _sentences(stores[split], examples[split], keep[split], feats)

    rows, history, timing, example, scores = [], [], {}, None, {}
    for split in evals:
        gold = sents(split, (0, ""))
        for kind in probes:
            part = sp.sentence_scores(kind, gold, sp.position_predictions(kind, gold))
            scores[("linear position", kind, split)] = part
            for metric in METRICS[kind]:
                rows.append({"layer": pd.NA, "probe": kind, "baseline": "linear position", "split": split,
                             "metric": metric, **row_interval(metric, [part], seed, resamples)})
    sources = [(l, "") for l in layers] + ([(0, NOPOS)] if nopos else [])
    bar = progress(total=len(sources) * len(probes) * seeds * epochs, desc="structural probes", unit="epoch")
    for source in sources:
        layer, suffix = source
        tr, data = sents("train", source), {s: sents(s, source) for s in evals}
        for kind in probes:
            runs: dict[str, list] = {s: [] for s in evals}
            t0 = time.perf_counter()
            for k in range(seeds):
                probe, hist = sp.train(kind, tr, data["dev"], rank=rank, epochs=epochs, lr=lr,
                                       batch_size=probe_batch_size, seed=seed + k, device=device,
                                       progress=lambda *_: bar.update(1))
                bar.update(epochs - len(hist))
                history += [{"layer": layer, "probe": kind + suffix, "seed": seed + k, **h} for h in hist]
                for split in evals:
                    pred = sp.predict(probe, data[split], device=device)
                    runs[split].append(sp.sentence_scores(kind, data[split], pred))
                    if split == "dev" and k == 0 and kind == "distance" and not suffix and \
                            (example is None or layer == max(layers)):
                        i = int(np.argmin([abs(len(s.heads) - 12) for s in data[split]]))
                        ex = examples[split][keep[split][i]]
                        example = {"words": ex.words, "heads": ex.meta["heads"], "predicted": pred[i],
                                   "keep": data[split][i].keep, "layer": layer}
            timing[f"{kind}{suffix}/{layer}"] = round(time.perf_counter() - t0, 2)
            for split in evals:
                scores[(f"layer {layer}" if not suffix else "layer 0 without positions", kind, split)] = \
                    _mean_scores(runs[split])
                for metric in METRICS[kind]:
                    rows.append({"layer": layer, "probe": kind + suffix, "baseline": "", "split": split,
                                 "metric": metric, **row_interval(metric, runs[split], seed, resamples)})
    bar.close()
    frame = tidy(pd.DataFrame(rows), task="structural", model=encoder.name)
    compared = comparisons(frame, scores, seed=seed, resamples=resamples)
    record = run_record(
        "structural", arguments, encoder=encoder,
        inputs={**{s: str(p) for s, p in paths.items()}, "rank": rank, "layers": layers,
                "punctuation": "UPOS PUNCT, left out of MST, gold edges and the predicted root",
                "root_accuracy": "every sentence, as Hewitt's code counts (gold root = the word of depth 0)",
                "spearman_lengths": list(sp.SPEARMAN_LENGTHS),
                "schedule": f"Adam lr {lr}, x{sp.DECAY} when the dev loss does not improve, at most {epochs} epochs, "
                            f"stop after {sp.PATIENCE} without improvement, lowest dev loss kept",
                "intervals": "Student t over seeds" if seeds > 1 else
                             f"BCa bootstrap over sentences ({resamples} resamples, seed {seed})",
                "non_contextual": "layer 0 without position embeddings" if nopos else None},
        counts={s: {"sentences": len(examples[s]), "used": len(keep[s]),
                    "truncated_left_out": len(examples[s]) - len(keep[s])} for s in examples},
        seconds_per_probe=timing)
    return StructuralResult(frame, record, pd.DataFrame(history), example, compared)
