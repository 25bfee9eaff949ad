"""``python -m probekit.clusters --conllu F``: how the word vectors of each layer cluster against word labels.

Writes ``results.csv`` (k-means NMI and label silhouette per layer), ``projection.csv``, ``projection.png`` (one
PCA or t-SNE panel per layer, coloured by label; ``projection_words.png`` with ``--words``), ``results.md`` and
``config.json``. ``pk.clusters(conllu=…)`` does the same from Python.
"""
from __future__ import annotations

import inspect

from .cli import (Parser, add_cache_options, add_common_options, add_model_options, add_output_options,
                  main_wrapper, run_and_write)
from .probing.clusters import clusters

_DEFAULTS = {k: p.default for k, p in inspect.signature(clusters).parameters.items()}


def build_parser() -> Parser:
    p = Parser(prog="python -m probekit.clusters", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--conllu", help="a CoNLL-U file: words labelled by UPOS or dependency relation")
    src.add_argument("--task", help="a probing task (nth_token, auxiliary, subject): words labelled by target")
    p.add_argument("--label", choices=["upos", "deprel", "target"], default=None,
                   help="word labels (default: upos with --conllu, target with --task)")
    p.add_argument("--words", nargs="+", default=None, metavar="WORD",
                   help="also cluster the occurrences of these word types only (case-insensitive)")
    p.add_argument("--layers", type=int, nargs="+", default=None, help="layers (default: 0…L)")
    p.add_argument("--k", type=int, default=None, help="k-means clusters (default: the number of labels)")
    p.add_argument("--projection", choices=["pca", "tsne"], default=_DEFAULTS["projection"])
    p.add_argument("--max-points", type=int, default=_DEFAULTS["max_points"],
                   help="words per layer (a seeded sample of the corpus)")
    p.add_argument("--silhouette-sample", type=int, default=_DEFAULTS["silhouette_sample"],
                   help="points the silhouette is computed on")
    p.add_argument("--limit", type=int, default=None, help="use only the first N sentences")
    p.add_argument("--skip-bad", action="store_true", help="skip malformed sentences (counted) instead of stopping")
    p.add_argument("--out", default=None, help="run folder (default runs/clusters-<model>-<time>)")
    add_model_options(p)
    add_cache_options(p)
    add_output_options(p)
    add_common_options(p)
    return p


def _main(argv=None) -> int:
    return run_and_write(build_parser(), clusters, argv)


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
