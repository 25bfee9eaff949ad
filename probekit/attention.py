"""``python -m probekit.attention``: where the heads of an encoder look, over a whole corpus (Clark et al. 2019 §3).

Streams the corpus through the model once and writes, into a run directory: ``stats.csv`` (tidy: model, layer,
head, stat, value — per-layer gradient rows have no head), ``head_distances.csv`` (Jensen–Shannon divergence of
every pair of heads), ``attention_to.png`` (Figure 2), ``entropy.png`` (Figure 4), ``head_map.png``
(Figure 6), ``gradients.png`` (Figure 3, with ``--gradients``), ``summary.md`` and ``config.json``.
:func:`attention_statistics` does the same from Python and returns the ``stats.csv`` table.
"""
from __future__ import annotations

import argparse
from typing import Sequence

import numpy as np
import pandas as pd

from .corpora.documents import pair_inputs, read_documents, single_inputs
from .heads.statistics import STATS, AttentionStatistics, SpecialTokens, distance_frame, mds_map
from .cli import Parser, add_common_options, add_model_options, main_wrapper, set_quiet
from .core.errors import UserError
from .core.extraction import SEGMENT_IDS
from .report.rundir import RunDir, config_record, default_run_dir, write_tidy

GENERATED_DEFAULT = 1000


def build_parser() -> Parser:
    p = Parser(prog="python -m probekit.attention", description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default=None,
                   help=".txt (one sentence per line, a blank line between documents) or .conllu (documents start "
                        f"at '# newdoc'); default: {GENERATED_DEFAULT} sentences generated from the english grammar")
    p.add_argument("--out", default=None, help="run directory (default runs/attention-<model>-<time>)")
    p.add_argument("--pairs", action="store_true",
                   help="pack consecutive sentences of a document as [CLS] A [SEP] B [SEP] (Clark's inputs)")
    p.add_argument("--budget", type=int, default=128, help="tokens per packed pair, special tokens included")
    p.add_argument("--segment-ids", choices=SEGMENT_IDS, default="standard",
                   help="token type ids of B: standard = 1; zero = 0 as in Clark's released code")
    p.add_argument("--word-level", action="store_true",
                   help="statistics over words (attention to a word = sum over its pieces) instead of tokens")
    p.add_argument("--attention-from", choices=["mean", "first"], default="mean",
                   help="with --word-level: a word's row is the mean of its pieces' rows (the paper) or the "
                        "first piece's row (Clark's released code)")
    p.add_argument("--weight", choices=["input", "document"], default="input",
                   help="input: every model input counts once (Clark's 'document'); document: every corpus "
                        "document counts once in total")
    p.add_argument("--no-similarity", action="store_true",
                   help="skip the Jensen-Shannon head distances and the MDS map (the costliest part)")
    p.add_argument("--similarity-limit", type=int, default=None, metavar="N",
                   help="compute head distances on the first N inputs of the corpus only (default: all)")
    p.add_argument("--gradients", action="store_true", help="also average |dL/d attention| per layer (Figure 3)")
    p.add_argument("--objective", choices=["auto", "mlm", "probe"], default="auto",
                   help="loss for --gradients: masked LM (needs a trained head), a last-layer probe, or auto")
    p.add_argument("--task", default="nth_token", help="probing task whose probe loss --gradients uses without a head")
    p.add_argument("--grad-limit", type=int, default=500, help="inputs (or task sentences) for --gradients")
    p.add_argument("--limit", type=int, default=None,
                   help=f"use the first N sentences of the corpus (without one: generate N, default {GENERATED_DEFAULT})")
    add_model_options(p, batch_size=16)
    add_common_options(p)
    return p


def _check(args: argparse.Namespace) -> None:
    for name in ("budget", "batch_size", "grad_limit", "limit", "max_length", "similarity_limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
    if args.gradients and args.objective != "mlm":
        from .probing.registry import get_task

        get_task(args.task)


def run_attention(args: argparse.Namespace) -> tuple[pd.DataFrame, np.ndarray | None, pd.DataFrame | None, dict]:
    """Statistics rows, head distances [K, K] (or None), gradient rows (or None) and the run record."""
    from .core.encoder import load_encoder
    from .core.extraction import extract

    _check(args)
    docs, how = read_documents(args.corpus, limit=args.limit, seed=args.seed, generated=GENERATED_DEFAULT)
    encoder = load_encoder(args.model, attention=True, device=args.device)
    if args.gradients and args.objective == "mlm" and encoder.mlm_model is None:
        raise UserError(f"--objective mlm: {encoder.name} has no trained masked-LM head; use --objective probe")
    tok = encoder.tokenizer
    max_length = args.max_length
    if args.pairs:
        inputs = pair_inputs(docs, tok, args.budget)
        max_length = min(args.budget, max_length or args.budget)
    else:
        inputs = single_inputs(docs)
    specials = SpecialTokens.of(tok)
    acc = AttentionStatistics(encoder.num_layers, encoder.num_heads, specials, similarity=not args.no_similarity)
    weights = inputs.weights(args.weight)
    level = "word" if args.word_level else "token"
    truncated = 0
    for act in extract(encoder, inputs.examples, hidden=False, attention=True, level=level,
                       attention_from=args.attention_from, batch_size=args.batch_size, max_length=max_length,
                       segment_ids=args.segment_ids, desc="attention statistics"):
        acc.add_activations(act, weights[act.index],
                            similarity=args.similarity_limit is None or act.index < args.similarity_limit)
        truncated += bool(act.truncated)
    stats = acc.frame()
    distances = None
    if not args.no_similarity:
        distances = acc.head_distances()
        coords = mds_map(distances, seed=args.seed)
        K = len(coords)
        for axis, name in ((0, "mds_x"), (1, "mds_y")):
            stats = pd.concat([stats, pd.DataFrame({
                "layer": np.arange(K) // encoder.num_heads + 1, "head": np.arange(K) % encoder.num_heads + 1,
                "stat": name, "value": coords[:, axis]})], ignore_index=True)
    grads, grad_record = None, None
    if args.gradients:
        from .heads.gradients import attention_gradients

        grads, grad_record = attention_gradients(
            encoder, inputs.examples, objective=args.objective, task=args.task, corpus=args.corpus,
            limit=args.grad_limit, seed=args.seed, batch_size=args.batch_size, max_length=max_length,
            segment_ids=args.segment_ids)
        stats = pd.concat([stats, grads.assign(head=pd.NA)], ignore_index=True)
    stats["head"] = stats["head"].astype("Int64")
    stats.insert(0, "model", encoder.name)
    record = {
        "model": {"name": encoder.name, "source": encoder.source, "fingerprint": encoder.fingerprint(),
                  "layers": encoder.num_layers, "heads": encoder.num_heads},
        "inputs": {"mode": inputs.source, "segment_ids": args.segment_ids if args.pairs else "single segment",
                   "budget": args.budget if args.pairs else None, "level": level,
                   "attention_from": args.attention_from if args.word_level else None,
                   "weighting": args.weight, "documents": how, "n_documents": inputs.n_documents,
                   "n_sentences": inputs.n_sentences, "n_inputs": len(inputs.examples), "n_truncated": truncated,
                   "n_inputs_head_distances": acc.n_similarity_inputs if not args.no_similarity else 0,
                   "special_tokens": {"cls": specials.cls, "sep": specials.sep}},
        "statistics": STATS,
        "smoothing": {"entropy": 1e-4, "jensen_shannon": 1e-3},
        "gradients": grad_record,
    }
    return stats, distances, grads, record


def write_run(args: argparse.Namespace, stats: pd.DataFrame, distances, grads, record: dict):
    from .report.attention import (plot_attention_to, plot_entropy, plot_gradients, plot_head_map,
                                   summary_markdown)

    model = record["model"]["name"]
    H = record["model"]["heads"]
    out = args.out or default_run_dir("attention", model)
    inputs = record["inputs"]
    header = {"model": f"{model} ({record['model']['layers']} layers × {H} heads)",
              "inputs": f"{inputs['n_inputs']} ({inputs['mode']}; segment ids: {inputs['segment_ids']}) from "
                        f"{inputs['n_sentences']} sentences in {inputs['n_documents']} documents "
                        f"({inputs['documents']}); {inputs['n_truncated']} truncated",
              "corpus": args.corpus or "generated sentences",
              "level": inputs["level"] + (f" (a word's row = {inputs['attention_from']} of its pieces)"
                                          if inputs["attention_from"] else ""),
              "weighting": "every input counts once (Clark's per-document average)" if inputs["weighting"] == "input"
              else "every corpus document counts once in total",
              "special tokens": f"{inputs['special_tokens']['cls']} / {inputs['special_tokens']['sep']}"}
    per_head = stats[stats["head"].notna()].drop(columns="model")
    with RunDir(out, overwrite=getattr(args, "overwrite", False)) as run:
        write_tidy(run, stats, "stats.csv")
        plot_attention_to(per_head, run.file("attention_to.png"), model)
        plot_entropy(per_head, run.file("entropy.png"), model)
        if distances is not None:
            write_tidy(run, distance_frame(distances, H), "head_distances.csv")
            coords = np.stack([per_head[per_head["stat"] == s].sort_values(["layer", "head"])["value"].to_numpy()
                               for s in ("mds_x", "mds_y")], 1)
            plot_head_map(coords, H, run.file("head_map.png"), model)
        if grads is not None:
            plot_gradients(grads, run.file("gradients.png"), record["gradients"]["objective"], model)
        run.write_text("summary.md", summary_markdown(per_head, distances, H, header, grads, record["gradients"]))
        run.write_json("config.json", config_record({**vars(args), "out": str(out)}, seed=args.seed, **record))
        return run.commit()


def attention_statistics(corpus: str | None = None, out: str | None = None, **options) -> pd.DataFrame:
    """The command's job from Python: ``attention_statistics("dev.conllu", pairs=True, quiet=True)`` → the tidy
    ``stats.csv`` table. Options are the command-line options with underscores; ``out`` also writes the run."""
    args = build_parser().parse_args([])
    for key, value in {"corpus": corpus, **options}.items():
        if not hasattr(args, key):
            raise UserError(f"unknown option {key!r}")
        setattr(args, key, None if value is None else str(value) if key in ("corpus", "model") else value)
    args.out = out
    set_quiet(args.quiet)
    stats, distances, grads, record = run_attention(args)
    if out is not None:
        write_run(args, stats, distances, grads, record)
    return stats


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_quiet(args.quiet)
    stats, distances, grads, record = run_attention(args)
    path = write_run(args, stats, distances, grads, record)
    print(f"results: {path}/stats.csv, {path}/summary.md")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
