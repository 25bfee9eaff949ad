"""``python -m probekit.extract --corpus FILE --out DIR``: word-level states (and attention) for use elsewhere.

The output folder is an activation store (see :mod:`probekit.cache` for the layout), readable with numpy
alone::

    import json, numpy as np
    offsets = np.load("DIR/offsets.npy")                 # sentence i owns rows offsets[i]:offsets[i+1]
    layer6 = np.load("DIR/hidden_06.npy")                # [total_units, hidden] for layer 6
    words = [json.loads(l) for l in open("DIR/units.jsonl")]   # [CLS] w1 … wn [SEP] per sentence

plus ``sentences.jsonl`` with the input words of each sentence.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from .cli import Parser, add_common_options, add_model_options, main_wrapper, set_quiet
from .core.errors import UserError


def build_parser() -> Parser:
    p = Parser(prog="python -m probekit.extract", description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", required=True, help=".txt (one sentence per line) or .conllu")
    p.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    p.add_argument("--attention", action="store_true", help="also write word-level attention of every layer")
    p.add_argument("--pooling", choices=["first", "mean", "last"], default="mean",
                   help="sub-token pooling for word vectors (default %(default)s)")
    p.add_argument("--attention-from", choices=["mean", "first"], default="mean",
                   help="attention FROM a split word: mean of its pieces (Clark et al.) or the first piece")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    add_model_options(p)
    add_common_options(p)
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_quiet(args.quiet)
    from .core.cache import write_store
    from .corpora.text import read_sentences
    from .core.encoder import load_encoder

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out} already exists and is not an empty folder")
    examples = read_sentences(args.corpus)
    encoder = load_encoder(args.model, attention=args.attention, device=args.device)
    if out.is_dir():
        out.rmdir()
    write_store(encoder, examples, out, hidden=True, attention=args.attention, pooling=args.pooling,
                attention_from=args.attention_from, max_length=args.max_length, batch_size=args.batch_size,
                dtype=args.dtype, extra_meta={"corpus": str(args.corpus)})
    with open(out / "sentences.jsonl", "w", encoding="utf-8") as f:
        for ex in examples:
            f.write(json.dumps(ex.words if ex.words is not None else ex.text, ensure_ascii=False) + "\n")
    print(f"wrote {len(examples)} sentences to {out}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
