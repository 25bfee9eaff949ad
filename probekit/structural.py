"""``python -m probekit.structural --train F --dev F``: Hewitt & Manning's structural probes on every layer.

Writes ``results.csv`` (UUAS, distance Spearman, root accuracy and depth Spearman per layer and split, with
95 % intervals, the linear-position and non-contextual baselines), ``comparisons.csv``, ``history.csv``, ``results.md``, ``structural_by_layer.png``, ``tree.png`` (one dev
sentence, gold vs predicted) and ``config.json``. ``pk.structural(train=…, dev=…)`` does the same from Python.
"""
from __future__ import annotations

from .cli import main_wrapper, options_parser, parse_options
from .core.options import output_options
from .probing.structural_run import StructuralOptions, structural

OUTPUT = output_options("run folder (default runs/structural-<model>-<time>)")


def build_parser():
    return options_parser("python -m probekit.structural", __doc__.split("\n\n")[0], StructuralOptions, OUTPUT)


def _main(argv=None) -> int:
    options, out = parse_options(build_parser(), argv, OUTPUT)
    result = structural(**options)
    path = result.write(out["out"], overwrite=out["overwrite"], figures=out["figures"])
    print(f"results: {', '.join(str(path / f) for f in result.files())}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
