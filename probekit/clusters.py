"""``python -m probekit.clusters --conllu F``: how the word vectors of each layer cluster against word labels.

Writes ``results.csv`` (k-means NMI and label silhouette per layer), ``projection.csv``, ``projection.png`` (one
PCA or t-SNE panel per layer, coloured by label; ``projection_words.png`` with ``--words``), ``results.md`` and
``config.json``. ``pk.clusters(conllu=…)`` does the same from Python.
"""
from __future__ import annotations

from probekit.cli import results_command
from probekit.probing.clusters import ClustersOptions, clusters

build_parser, main = results_command(
    "python -m probekit.clusters", __doc__.split("\n\n")[0], ClustersOptions, clusters,
    "run folder (default runs/clusters-<model>-<time>)")

if __name__ == "__main__":
    raise SystemExit(main())
