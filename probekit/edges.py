"""``python -m probekit.edges --train F --dev F``: edge probing with a scalar mix over layers (Tenney et al. 2019).

Tasks: UPOS (one word) and dependency relations (dependent–head pairs) from CoNLL-U, coreference of
(pronoun, name) pairs from GAP. Writes ``results.csv`` (scores per layer and split with 95 % intervals,
cumulative scores, mixing weights, center of gravity, expected layer), ``comparisons.csv``, ``results.md``, ``edges_by_layer.png`` and ``config.json``.
``pk.edges(train=…, dev=…)`` does the same from Python.
"""
from __future__ import annotations

from .cli import main_wrapper, options_parser, parse_options
from .core.options import output_options
from .probing.edges_run import EdgesOptions, edges

OUTPUT = output_options("run folder (default runs/edges-<model>-<time>)")


def build_parser():
    return options_parser("python -m probekit.edges", __doc__.split("\n\n")[0], EdgesOptions, OUTPUT)


def _main(argv=None) -> int:
    options, out = parse_options(build_parser(), argv, OUTPUT)
    result = edges(**options)
    path = result.write(out["out"], overwrite=out["overwrite"], figures=out["figures"])
    print(f"results: {', '.join(str(path / f) for f in result.files())}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
