"""``python -m probekit.parse``: attention-only parsing probes on a UD treebank (Clark et al. 2019 Table 3).

The pipeline is :func:`probekit.syntax.parse.parse` (``pk.parse``); this module parses the options, calls it
and writes the run folder.
"""
from __future__ import annotations

from .cli import (Parser, add_cache_options, add_common_options, add_model_options, add_output_options,
                  main_wrapper, set_quiet)
from .syntax.common import defaults
from .syntax.parse import parse
from .syntax.parsing_probes import PROBES


def _comma_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def build_parser() -> Parser:
    d = defaults(parse)
    p = Parser(prog="python -m probekit.parse",
               description="Attention-only parsing probes and baselines, UAS on a dev treebank (Clark §5).")
    p.add_argument("--train", required=True, help="training treebank (CoNLL-U)")
    p.add_argument("--dev", required=True, help="evaluation treebank (CoNLL-U)")
    p.add_argument("--out", default=None, help="run folder (default runs/parse-<model>-<time>)")
    p.add_argument("--probes", type=_comma_list, default=list(d["probes"]),
                   help=f"comma list of {', '.join(PROBES)} (default: all)")
    p.add_argument("--epochs", type=int, default=d["epochs"],
                   help="passes over the training set (default %(default)s, as in Clark's notebook)")
    p.add_argument("--lr", type=float, default=d["lr"], help="Adam learning rate (default %(default)s)")
    p.add_argument("--word-vectors", default=d["word_vectors"],
                   help="'model' (the encoder's input embeddings, mean over pieces) or a GloVe text file")
    p.add_argument("--root-misaligned", action="store_true",
                   help="reproduce the original Attn+GloVe code's ROOT misalignment (Clark issue #17)")
    p.add_argument("--skip-bad", action="store_true", help="skip malformed sentences (counted) instead of stopping")
    p.add_argument("--limit", type=int, default=d["limit"], help="use only the first N sentences of each file")
    add_model_options(p, batch_size=d["batch_size"])
    add_cache_options(p)
    add_output_options(p)
    add_common_options(p)
    return p


def _main(argv=None) -> int:
    options = vars(build_parser().parse_args(argv))
    out, overwrite, figures = options.pop("out"), options.pop("overwrite"), options.pop("figures")
    set_quiet(options["quiet"])
    result = parse(**options)
    path = result.write(out, overwrite=overwrite, figures=figures)
    if not options["quiet"]:
        from .report.rundir import markdown_table

        print(markdown_table(result.table, floatfmt=".1f"))
    print(f"wrote {path}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
