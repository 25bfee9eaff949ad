"""``python -m probekit.edges --train F --dev F``: edge probing with a scalar mix over layers (Tenney et al. 2019).

Tasks: UPOS (one word) and dependency relations (dependent–head pairs) from CoNLL-U, coreference of
(pronoun, name) pairs from GAP. Writes ``results.csv`` (scores per layer and split with 95 % intervals,
cumulative scores, mixing weights, center of gravity, expected layer), ``comparisons.csv``, ``results.md``, ``edges_by_layer.png`` and ``config.json``.
``pk.edges(train=…, dev=…)`` does the same from Python.
"""
from __future__ import annotations

from probekit.cli import results_command
from probekit.probing.edges import EdgesOptions, edges

build_parser, main = results_command(
    "python -m probekit.edges", __doc__.split("\n\n")[0], EdgesOptions, edges,
    "run folder (default runs/edges-<model>-<time>)")

if __name__ == "__main__":
    raise SystemExit(main())
