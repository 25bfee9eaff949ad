"""``python -m probekit.extract --corpus FILE --out DIR``: word-level states (and attention) for use elsewhere.

The output folder is an activation store (see :mod:`probekit.core.cache` for the layout), readable with numpy
alone, built through the activation cache (an identical rerun makes no model call)::

    import json, numpy as np
    offsets = np.load("DIR/offsets.npy")                 # sentence i owns rows offsets[i]:offsets[i+1]
    layer6 = np.load("DIR/hidden_06.npy")                # [total_units, hidden] for layer 6
    words = [json.loads(l) for l in open("DIR/units.jsonl")]   # [CLS] w1 … wn [SEP] per sentence

plus ``sentences.jsonl`` with the input words of each sentence and ``sentences.csv`` (one row per sentence).
From Python: ``pk.extract(corpus=…)`` (:mod:`probekit.core.states`).
"""
from __future__ import annotations

import inspect
from typing import Sequence

from .cli import Parser, add_cache_options, add_common_options, add_model_options, main_wrapper
from .core.states import ATTENTION_FROM, POOLINGS, extract

DEFAULTS = {k: p.default for k, p in inspect.signature(extract).parameters.items() if p.default is not p.empty}


def build_parser() -> Parser:
    p = Parser(prog="python -m probekit.extract", description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", required=True, help=".txt (one sentence per line) or .conllu")
    p.add_argument("--out", required=True, help="output folder (must not exist or be empty, unless --overwrite)")
    p.add_argument("--attention", action="store_true", help="also write word-level attention of every layer")
    p.add_argument("--pooling", choices=POOLINGS, default=DEFAULTS["pooling"],
                   help="sub-token pooling for word vectors (default %(default)s)")
    p.add_argument("--attention-from", choices=ATTENTION_FROM, default=DEFAULTS["attention_from"],
                   help="attention FROM a split word: mean of its pieces (Clark et al.) or the first piece")
    add_model_options(p, batch_size=DEFAULTS["batch_size"])
    add_cache_options(p)
    add_common_options(p)
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    options = vars(build_parser().parse_args(argv))
    out, overwrite = options.pop("out"), options.pop("overwrite")
    result = extract(**options)
    path = result.write(out, overwrite=overwrite)
    print(f"wrote {len(result.examples)} sentences to {path}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
