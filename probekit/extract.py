"""``python -m probekit.extract --corpus FILE --out DIR``: word-level states (and attention) for use elsewhere.

The output folder is an activation store (see :mod:`probekit.core.cache` for the layout), readable with numpy
alone, built through the activation cache (an identical rerun makes no model call)::

    import json, numpy as np
    offsets = np.load("DIR/offsets.npy")                 # sentence i owns rows offsets[i]:offsets[i+1]
    layer6 = np.load("DIR/hidden_06.npy")                # [total_units, hidden] for layer 6
    words = [json.loads(l) for l in open("DIR/units.jsonl")]   # [CLS] w1 … wn [SEP] per sentence

plus ``sentences.jsonl`` with the input words of each sentence and ``sentences.csv`` (one row per sentence).
From Python: ``pk.extract(corpus=…)`` (:mod:`probekit.probing.extract`).
"""
from __future__ import annotations

from probekit.cli import command
from probekit.core.options import output_options
from probekit.probing.extract import ExtractOptions, extract


def _report(result, path, values: dict, out: dict) -> None:
    print(f"wrote {len(result.examples)} sentences to {path}")


build_parser, main = command(
    "python -m probekit.extract", __doc__.split("\n\n")[0], ExtractOptions, extract,
    output_options("output folder (must not exist or be empty, unless --overwrite)", required=True, figures=False),
    _report)

if __name__ == "__main__":
    raise SystemExit(main())
