"""``pk.attention(...)``: where the heads of an encoder look, over a whole corpus (Clark et al. 2019 §3).

The corpus (or generated sentences) is read into documents (:mod:`probekit.corpora.documents`), fed as single
sentences or packed pairs, and streamed once through the model into :class:`~probekit.heads.statistics.
AttentionStats` via :func:`~probekit.core.analysis.analyze`. The result holds:

- ``frame`` — ``stats.csv``: ``task`` (``attention``), ``model``, ``layer``, ``head``, ``metric``, ``value``,
  ``aggregate``. Per-head rows are the statistics of ``STATS`` and the MDS coordinates ``mds_x``/``mds_y``
  (kept in this table, as before, so a re-plot needs only ``stats.csv``); per-layer gradient rows
  (``grad_*``) have an empty ``head`` and ``aggregate`` = ``"all heads"``;
- ``distances`` — ``head_distances.csv`` (layer_a, head_a, layer_b, head_b, value: Jensen–Shannon, nats);
- ``mds`` — the coordinates as their own table (layer, head, x, y): the ``mds_*`` rows of ``frame``, not a file;
- ``gradients`` — the gradient rows of ``frame`` (or None).

``write(out)`` writes those CSVs, ``summary.md``, ``config.json`` and the figures (``attention_to``,
``entropy``, ``head_grid``, ``head_map``, ``gradients``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from probekit.core import checks
from probekit.core.options import (ModelOptions, RunOptions, batch_size_option, option, optional_positive, positive,
                            takes)
from probekit.core.errors import UserError
from probekit.core.extraction import SEGMENT_IDS
from probekit.core.result import Result, tidy

GENERATED_DEFAULT = 1000
OBJECTIVES = ("auto", "mlm", "probe")


class AttentionResult(Result):
    """Statistics of one corpus: ``frame`` (stats.csv), ``distances``, ``mds``, ``gradients``, ``record``."""

    command = "attention"
    main_table = "stats.csv"

    def __init__(self, frame: pd.DataFrame, record: dict, *, distance_matrix: np.ndarray | None):
        super().__init__(frame, record)
        self.distance_matrix = distance_matrix
        H = record["model"]["heads"]
        if distance_matrix is None:
            self.distances = self.mds = None
        else:
            from probekit.heads.statistics import distance_frame

            self.distances = distance_frame(distance_matrix, H)
            heads = frame[frame["head"].notna()]
            xy = {m: heads[heads["metric"] == m].sort_values(["layer", "head"]) for m in ("mds_x", "mds_y")}
            self.mds = pd.DataFrame({"layer": xy["mds_x"]["layer"].to_numpy(), "head": xy["mds_x"]["head"].to_numpy(),
                                     "x": xy["mds_x"]["value"].to_numpy(), "y": xy["mds_y"]["value"].to_numpy()})
        grads = frame[frame["metric"].str.startswith("grad_")]
        self.gradients = grads.reset_index(drop=True) if len(grads) else None

    def files(self) -> list[str]:
        return ["stats.csv", "summary.md"]

    def summary(self) -> str:
        from probekit.report.attention_report import summary_markdown

        per_head = self.frame[self.frame["head"].notna()]
        return summary_markdown(per_head, self.distance_matrix, self.record["model"]["heads"], _header(self.record),
                                self.gradients, self.record.get("gradients"))

    def write_files(self, run) -> None:
        from probekit.report.attention_report import (plot_attention_to, plot_entropy, plot_gradients, plot_head_grid,
                                        plot_head_map)
        from probekit.core.rundir import write_tidy
        from probekit.heads.attention_gradients import CLASSES

        model, H = self.model, self.record["model"]["heads"]
        per_head = self.frame[self.frame["head"].notna()]
        write_tidy(run, self.frame, "stats.csv")
        run.save_figure(plot_attention_to(per_head, model), "attention_to")
        run.save_figure(plot_entropy(per_head, model), "entropy")
        run.save_figure(plot_head_grid(per_head, model), "head_grid")
        if self.distances is not None:
            write_tidy(run, self.distances, "head_distances.csv")
            run.save_figure(plot_head_map(self.mds[["x", "y"]].to_numpy(), H, model), "head_map")
        if self.gradients is not None:
            run.save_figure(plot_gradients(self.gradients, self.record["gradients"]["objective"], CLASSES, model),
                            "gradients")
        run.write_text("summary.md", self.summary())


def _header(record: dict) -> dict:
    """The lines at the top of summary.md: model, inputs, corpus, level, weighting, and the gradients' data."""
    m, i, c = record["model"], record["inputs"], record["counts"]
    header = {"model": f"{m['name']} ({m['layers']} layers × {m['heads']} heads)",
              "inputs": f"{c['n_inputs']} ({i['mode']}; segment ids: {i['segment_ids']}) from "
                        f"{c['n_sentences']} sentences in {c['n_documents']} documents "
                        f"({i['documents']}); {c['n_truncated']} truncated",
              "corpus": i["corpus"] or "generated sentences",
              "level": i["level"] + (f" (a word's row = {i['attention_from']} of its pieces)"
                                     if i["attention_from"] else ""),
              "weighting": "every input counts once (Clark's per-document average)" if i["weighting"] == "input"
              else "every corpus document counts once in total",
              "special tokens": f"{i['special_tokens']['cls']} / {i['special_tokens']['sep']}"}
    if record.get("gradients"):
        header["gradients from"] = record["gradients"]["data"]
    return header


def _corpus(name, value):
    if value is not None:
        checks.input_file(name, value, what="corpus")
    return value


@dataclass(frozen=True, kw_only=True)
class AttentionOptions(ModelOptions, RunOptions):
    """The options of :func:`attention` (and ``python -m probekit.attention``)."""

    corpus: Any = option(None, ".txt (one sentence per line, a blank line between documents) or .conllu "
                               f"(documents start at '# newdoc'); default: {GENERATED_DEFAULT} sentences generated "
                               "from the english grammar", check=_corpus)
    pairs: bool = option(False, "pack consecutive sentences of a document as [CLS] A [SEP] B [SEP] (Clark's inputs)")
    budget: int = option(128, "tokens per packed pair, special tokens included", check=positive)
    segment_ids: str = option("standard", "token type ids of B: standard = 1; zero = 0 as in Clark's released code",
                              choices=SEGMENT_IDS)
    word_level: bool = option(False, "statistics over words (attention to a word = sum over its pieces) instead "
                                     "of tokens")
    attention_from: str = option("mean", "with --word-level: a word's row is the mean of its pieces' rows (the "
                                         "paper) or the first piece's row (Clark's released code)",
                                 choices=("mean", "first"))
    weight: str = option("input", "input: every model input counts once (Clark's 'document'); document: every "
                                  "corpus document counts once in total", choices=("input", "document"))
    no_similarity: bool = option(False, "skip the Jensen-Shannon head distances and the MDS map (the costliest "
                                        "part)")
    similarity_limit: int | None = option(None, "compute head distances on the first N inputs of the corpus only "
                                                "(default: all)", type=int, metavar="N", check=optional_positive)
    gradients: bool = option(False, "also average |dL/d attention| per layer (Figure 3)")
    objective: str = option("auto", "loss for --gradients: masked LM (needs a trained head), a last-layer probe, "
                                    "or auto", choices=OBJECTIVES)
    task: str = option("nth_token", "probing task whose probe loss --gradients uses without a head (built from "
                                    "--corpus when the task reads one)")
    grad_limit: int = option(500, "inputs (or task sentences) for --gradients", check=positive)
    limit: int | None = option(None, "use the first N sentences of the corpus (without one: generate N, default "
                                     f"{GENERATED_DEFAULT})", type=int, check=optional_positive)
    batch_size: int = batch_size_option(16)

    def check(self) -> None:
        if self.gradients and self.objective != "mlm":
            from probekit.probing.registry import get_task

            get_task(self.task)


@takes(AttentionOptions, args=("corpus",))
def attention(o: AttentionOptions) -> AttentionResult:
    """Clark et al.'s attention statistics of ``corpus`` (.txt: a sentence a line, blank line between
    documents; .conllu: documents at ``# newdoc``; None: ``limit`` or 1000 generated sentences).

    ``pairs`` packs consecutive sentences of a document as ``[CLS] A [SEP] B [SEP]`` within ``budget`` tokens;
    ``gradients`` adds Figure 3 (|∂L/∂α| per layer; ``objective`` mlm, probe or auto, the probe trained on
    ``task`` built from ``corpus`` when one is given). Options: :class:`AttentionOptions`. Returns an
    :class:`AttentionResult` (``.frame`` = stats.csv; ``.distances``, ``.mds``, ``.gradients``; ``.write(out)``).
    """
    corpus, pairs, budget, segment_ids, seed = o.corpus, o.pairs, o.budget, o.segment_ids, o.seed
    word_level, attention_from, weight, no_similarity = o.word_level, o.attention_from, o.weight, o.no_similarity
    gradients, objective, max_length, batch_size = o.gradients, o.objective, o.max_length, o.batch_size
    from probekit.core.analysis import analyze
    from probekit.core.encoder import load_encoder
    from probekit.corpora.documents import pair_inputs, read_documents, single_inputs
    from probekit.core.rundir import run_record
    from probekit.heads.statistics import STATS, AttentionStats, mds_map

    docs, how = read_documents(corpus, limit=o.limit, seed=seed, generated=GENERATED_DEFAULT)
    encoder = load_encoder(None if o.model is None else str(o.model), attention=True, device=o.device)
    if gradients and objective == "mlm" and encoder.mlm_model is None:
        raise UserError(f"--objective mlm: {encoder.name} has no trained masked-LM head; use --objective probe")
    if pairs:
        inputs = pair_inputs(docs, encoder.tokenizer, budget)
        max_length = min(budget, max_length or budget)
    else:
        inputs = single_inputs(docs)
    for ex, w in zip(inputs.examples, inputs.weights(weight)):
        ex.meta["weight"] = w
    acc = AttentionStats(encoder, similarity=not no_similarity, similarity_limit=o.similarity_limit,
                         word_level=word_level)
    stats, = analyze(encoder, inputs.examples, [acc], batch_size=batch_size, max_length=max_length,
                     attention_from=attention_from, segment_ids=segment_ids, desc="attention statistics")
    H = encoder.num_heads
    distances = None
    parts = [stats]
    if not no_similarity:
        distances = acc.head_distances()
        coords = mds_map(distances, seed=seed)
        K = len(coords)
        for axis, name in ((0, "mds_x"), (1, "mds_y")):
            parts.append(pd.DataFrame({"layer": np.arange(K) // H + 1, "head": np.arange(K) % H + 1,
                                       "metric": name, "value": coords[:, axis]}))
    grad_record = None
    if gradients:
        from probekit.heads.attention_gradients import attention_gradients

        grads, grad_record = attention_gradients(
            encoder, inputs.examples, objective=objective, task=o.task, corpus=corpus, limit=o.grad_limit,
            seed=seed, batch_size=batch_size, max_length=max_length, segment_ids=segment_ids)
        parts.append(grads.assign(head=pd.NA, aggregate="all heads"))
    frame = pd.concat([p.drop(columns=["task", "model"], errors="ignore") for p in parts], ignore_index=True)
    if "aggregate" not in frame.columns:
        frame["aggregate"] = pd.NA
    frame = tidy(frame, task="attention", model=encoder.name)
    specials = acc.specials
    record = run_record(
        "attention", o.record(), encoder=encoder,
        inputs={"corpus": None if corpus is None else str(corpus), "mode": inputs.source,
                "segment_ids": segment_ids if pairs else "single segment", "budget": budget if pairs else None,
                "level": acc.level, "attention_from": attention_from if word_level else None,
                "weighting": weight, "documents": how, "special_tokens": {"cls": specials.cls, "sep": specials.sep}},
        counts={"n_documents": inputs.n_documents, "n_sentences": inputs.n_sentences,
                "n_inputs": len(inputs.examples), "n_truncated": acc.n_truncated,
                "n_inputs_head_distances": acc.n_similarity_inputs if not no_similarity else 0},
        statistics=STATS, smoothing={"entropy": 1e-4, "jensen_shannon": 1e-3}, gradients=grad_record)
    return AttentionResult(frame, record, distance_matrix=distances)


def attention_statistics(corpus=None, **options) -> pd.DataFrame:
    """Kept for old notebooks: ``attention(corpus, **options).frame``."""
    return attention(corpus, **options).frame


__all__: Sequence[str] = ["attention", "AttentionOptions", "AttentionResult", "attention_statistics",
                          "GENERATED_DEFAULT"]
