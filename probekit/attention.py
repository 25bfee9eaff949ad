"""``python -m probekit.attention``: where the heads of an encoder look, over a whole corpus (Clark et al. 2019 §3).

Streams the corpus through the model once and writes, into a run directory: ``stats.csv`` (tidy: task, model,
layer, head, metric, value, aggregate — per-layer gradient rows have an empty head and aggregate "all heads"),
``head_distances.csv`` (Jensen–Shannon divergence of every pair of heads), ``attention_to.png`` (Figure 2),
``entropy.png`` (Figure 4), ``head_grid.png`` (layer × head grids of the main statistics), ``head_map.png``
(Figure 6), ``gradients.png`` (Figure 3, with ``--gradients``),
``summary.md`` and ``config.json``. From Python: ``pk.attention(corpus, **options)`` (same options).
"""
from __future__ import annotations

from typing import Sequence

from .cli import Parser, add_common_options, add_model_options, add_output_options, main_wrapper
from .core.extraction import SEGMENT_IDS
from .heads.attention import GENERATED_DEFAULT, OBJECTIVES, attention, defaults

_OUTPUT = ("out", "overwrite", "figures")


def build_parser() -> Parser:
    d = defaults()
    p = Parser(prog="python -m probekit.attention", description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default=None,
                   help=".txt (one sentence per line, a blank line between documents) or .conllu (documents start "
                        f"at '# newdoc'); default: {GENERATED_DEFAULT} sentences generated from the english grammar")
    p.add_argument("--out", default=None, help="run directory (default runs/attention-<model>-<time>)")
    p.add_argument("--pairs", action="store_true",
                   help="pack consecutive sentences of a document as [CLS] A [SEP] B [SEP] (Clark's inputs)")
    p.add_argument("--budget", type=int, default=d["budget"], help="tokens per packed pair, special tokens included")
    p.add_argument("--segment-ids", choices=SEGMENT_IDS, default=d["segment_ids"],
                   help="token type ids of B: standard = 1; zero = 0 as in Clark's released code")
    p.add_argument("--word-level", action="store_true",
                   help="statistics over words (attention to a word = sum over its pieces) instead of tokens")
    p.add_argument("--attention-from", choices=["mean", "first"], default=d["attention_from"],
                   help="with --word-level: a word's row is the mean of its pieces' rows (the paper) or the "
                        "first piece's row (Clark's released code)")
    p.add_argument("--weight", choices=["input", "document"], default=d["weight"],
                   help="input: every model input counts once (Clark's 'document'); document: every corpus "
                        "document counts once in total")
    p.add_argument("--no-similarity", action="store_true",
                   help="skip the Jensen-Shannon head distances and the MDS map (the costliest part)")
    p.add_argument("--similarity-limit", type=int, default=d["similarity_limit"], metavar="N",
                   help="compute head distances on the first N inputs of the corpus only (default: all)")
    p.add_argument("--gradients", action="store_true", help="also average |dL/d attention| per layer (Figure 3)")
    p.add_argument("--objective", choices=OBJECTIVES, default=d["objective"],
                   help="loss for --gradients: masked LM (needs a trained head), a last-layer probe, or auto")
    p.add_argument("--task", default=d["task"],
                   help="probing task whose probe loss --gradients uses without a head (built from --corpus "
                        "when the task reads one)")
    p.add_argument("--grad-limit", type=int, default=d["grad_limit"], help="inputs (or task sentences) for --gradients")
    p.add_argument("--limit", type=int, default=d["limit"],
                   help=f"use the first N sentences of the corpus (without one: generate N, default {GENERATED_DEFAULT})")
    add_model_options(p, batch_size=d["batch_size"])
    add_output_options(p)
    add_common_options(p)
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    out = {k: args.pop(k) for k in _OUTPUT}
    result = attention(**args)
    path = result.write(out["out"], overwrite=out["overwrite"], figures=out["figures"])
    if result.record.get("gradients"):
        print(f"gradients from: {result.record['gradients']['data']}")
    print(f"results: {path}/stats.csv, {path}/summary.md")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
