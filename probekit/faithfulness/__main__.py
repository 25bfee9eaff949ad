"""``python -m probekit.faithfulness``: is the classifier's attention a faithful explanation?

Examples::

    python -m probekit.faithfulness --classifier runs/rt --data rt:dev --limit 500 --out runs/rt-faith
    python -m probekit.faithfulness --classifier runs/rt --data rt:dev --experiments tau permutation adversary \\
        --out runs/rt-jw
    python -m probekit.faithfulness --classifier runs/hx --data hatexplain:test --rationales --out runs/hx-faith

The pipeline is :func:`probekit.faithfulness.run.faithfulness` (``pk.faithfulness``); this module parses the
options, calls it and writes the run folder (summary.md, findings.csv, ranking.csv, one CSV per experiment
table, the papers' figures, config.json).
"""
from __future__ import annotations

import inspect
import sys
from typing import Sequence

from ..cli import (Parser, add_common_options, add_encoder_source_option, add_output_options, encoder_source_scope,
                   main_wrapper)
from ..cli.generate import argument_spec
from ..core.options import meta
from .experiments import names, option_fields
from .run import faithfulness

_D = {k: v.default for k, v in inspect.signature(faithfulness).parameters.items()}


def build_parser(argv=()) -> Parser:
    """The command's parser; ``argv``'s ``--plugin`` files are loaded first (their experiments and methods
    become choices, their options flags)."""
    from ..attribution.registry import method_names
    from ..core.plugins import load_plugins

    load_plugins(argv)

    p = Parser(prog="python -m probekit.faithfulness",
               description="The faithfulness experiments of Jain & Wallace, Serrano & Smith and Wiegreffe & Pinter, "
                           "and ERASER metrics, on a probekit classifier.")
    p.add_argument("--classifier", required=True, metavar="DIR",
                   help="a classifier folder (probekit.classify --out), a Hugging Face …ForSequenceClassification "
                        "folder, or a model id in the local Hugging Face cache")
    p.add_argument("--data", required=True, metavar="FILE",
                   help="examples with labels: JSON Lines, TSV/CSV, or a named set such as rt:dev")
    p.add_argument("--out", default=None, metavar="DIR", help="run folder (default runs/faithfulness-<model>-<time>)")
    p.add_argument("--experiments", nargs="+", default=None, choices=names(), metavar="NAME",
                   help=f"any of {', '.join(names())} (default: all)")
    p.add_argument("--plugin", action="append", metavar="FILE",
                   help="a Python file that registers experiments or attribution methods (repeatable)")
    p.add_argument("--attention", choices=["pooling", "cls"], default=_D["attention"],
                   help="the attention under test: the pooling head's weights, or the last layer's [CLS] "
                        "attention (default %(default)s)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="a seeded random sample of N examples of --data, kept in file order")
    p.add_argument("--train", default=None, help="training data of the retraining experiments (default: the "
                                                 "classifier's own, from its config.json)")
    p.add_argument("--dev", default=None, help="dev data they select on (default: the classifier's own)")
    p.add_argument("--rationales", action="store_true",
                   help="ERASER plausibility against each example's 'rationale' field (0/1 per word)")
    p.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                   help=f"attribution methods ERASER ranks, any of {', '.join(method_names())} (default: all "
                        f"that apply)")
    p.add_argument("--data-root", default=None, help="folder of the named sets (default $PROBEKIT_DATA, else "
                                                     "~/.local/share/probekit/data)")
    p.add_argument("--batch-size", type=int, default=_D["batch_size"], help="examples per batch (default %(default)s)")
    p.add_argument("--device", default=_D["device"], help="torch device (default %(default)s)")
    p.add_argument("--cache-dir", default=None, help="activation cache folder (default: the user's cache directory)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the activation cache")
    e = p.add_argument_group("experiment options (defaults: the papers'; pk.list_experiments() lists them)")
    for f in option_fields().values():             # every registered experiment's, a plug-in's too
        if meta(f).get("cli", True):
            flags, kw = argument_spec(f)
            default = kw.pop("default")
            shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
            if "(default" not in kw["help"]:
                kw["help"] = f"{kw['help']} (default {shown})"
            e.add_argument(*flags, **kw, default=None)
    add_output_options(p)
    add_common_options(p)
    add_encoder_source_option(p)
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options = vars(build_parser(argv).parse_args(argv))
    options.pop("plugin")
    out, overwrite, figures = options.pop("out"), options.pop("overwrite"), options.pop("figures")
    with encoder_source_scope(options):
        result = faithfulness(options.pop("classifier"), options.pop("data"), **options)
    path = result.write(out, overwrite=overwrite, figures=figures)
    ran = [o.name for o in result.outcomes if not o.skipped]
    skipped = [o.name for o in result.outcomes if o.skipped]
    note = f"; skipped {', '.join(skipped)} (see summary.md)" if skipped else ""
    print(f"wrote {path / 'summary.md'} ({result.record['counts']['examples']} examples; ran {', '.join(ran)}{note})")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
