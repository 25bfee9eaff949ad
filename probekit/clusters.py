"""``python -m probekit.clusters --conllu F``: how the word vectors of each layer cluster against word labels.

Writes ``results.csv`` (k-means NMI and label silhouette per layer), ``projection.csv``, ``projection.png`` (one
PCA or t-SNE panel per layer, coloured by label; ``projection_words.png`` with ``--words``), ``results.md`` and
``config.json``. ``pk.clusters(conllu=…)`` does the same from Python.
"""
from __future__ import annotations

from .cli import main_wrapper, options_parser, parse_options
from .core.options import output_options
from .probing.clusters import ClustersOptions, clusters

OUTPUT = output_options("run folder (default runs/clusters-<model>-<time>)")


def build_parser():
    return options_parser("python -m probekit.clusters", __doc__.split("\n\n")[0], ClustersOptions, OUTPUT)


def _main(argv=None) -> int:
    options, out = parse_options(build_parser(), argv, OUTPUT)
    result = clusters(**options)
    path = result.write(out["out"], overwrite=out["overwrite"], figures=out["figures"])
    print(f"results: {', '.join(str(path / f) for f in result.files())}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
