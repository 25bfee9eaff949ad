"""``pk.clusters(conllu=…)``: how the word vectors of each layer cluster, against word labels.

Per layer: k-means (k = number of labels unless given) and the normalised mutual information between its
clusters and the labels; the silhouette of the label partition itself (cosine distance would favour no layer,
so Euclidean, on a seeded sample of at most ``silhouette_sample`` points); and a 2-D projection (PCA, or t-SNE)
coloured by label. Labels are UPOS or dependency relations from CoNLL-U, or a probing task's targets. With
``words=[...]`` the same is computed on the occurrences of those word types only (e.g. polysemous words).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from probekit.core import checks
from probekit.core.errors import UserError
from probekit.core.options import (CacheOptions, ModelOptions, RunOptions, option, optional_input_file,
                                   optional_positive, takes)
from probekit.core.progress import progress
from probekit.core.result import Result, tidy

LABELS = ("upos", "deprel", "target")


class ClustersResult(Result):
    """``.frame``: NMI, silhouette and point counts per layer (and subset); ``.points``: the 2-D projections
    with each point's word, label and layer."""

    command = "clusters"

    def __init__(self, frame, record, points):
        super().__init__(frame, record)
        self.points = points

    def write_files(self, run) -> None:
        from probekit.report.clusters_report import markdown_report, plot_projections
        from probekit.core.rundir import write_tidy

        write_tidy(run, self.frame)
        write_tidy(run, self.points, "projection.csv")
        run.write_text("results.md", markdown_report(self.frame, self.record))
        for subset in self.points["subset"].unique():
            stem = "projection" if subset == "all" else "projection_words"
            run.save_figure(plot_projections(self.points[self.points["subset"] == subset], self.model, subset,
                                             self.record["inputs"]["projection"]), stem)

    def files(self) -> list[str]:
        return ["results.csv", "results.md", "projection.png"]


def word_labels(examples, label: str, task_keys=None) -> list[list[str]]:
    """One label per word of every example."""
    out = []
    for ex in examples:
        if label == "upos":
            out.append(list(ex.tags or []))
        elif label == "deprel":
            out.append([r.split(":")[0] for r in ex.meta["deprels"]])
        else:
            tags = ["other"] * len(ex.words)
            for key, t in zip(task_keys, ex.meta["targets"]):
                if t >= 0:
                    tags[t] = ",".join(f"{k}={v}" for k, v in key.items()) or "target"
            out.append(tags)
    return out


def _layer_scores(X, y, k, seed, silhouette_sample):
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score, silhouette_score

    clusters = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(X)
    nmi = normalized_mutual_info_score(y, clusters)
    sil = float("nan")
    if 1 < len(set(y)) < len(y):                   # the silhouette is defined for 2 … n − 1 labels
        sil = silhouette_score(X, y, sample_size=min(silhouette_sample, len(y)), random_state=seed)
    return float(nmi), float(sil)


def _project(X, method, seed) -> tuple[np.ndarray, str | None]:
    """(2-D projection, None) — or a documented fallback and why: points that all coincide (no direction to
    project on; scikit-learn's Barnes-Hut t-SNE would crash on them) are placed at the origin, and t-SNE on
    fewer than 4 points (no perplexity fits) is replaced by PCA. The points are centred and scaled to unit
    spread first, which changes neither projection's shape."""
    X = np.asarray(X, dtype=np.float64)
    spread = float(np.ptp(X, axis=0).max()) if len(X) else 0.0
    if len(X) < 2 or not np.isfinite(spread) or spread == 0.0 or len(np.unique(X, axis=0)) < 2:
        return np.zeros((len(X), 2)), "all points coincide; they are drawn at the origin"
    X = (X - X.mean(0)) / spread
    if method == "tsne" and len(X) < 4:
        method, note = "pca", f"t-SNE needs at least 4 points ({len(X)} here); PCA is shown instead"
    else:
        note = None
    if method == "pca":
        from sklearn.decomposition import PCA

        xy = PCA(n_components=min(2, *X.shape), random_state=seed).fit_transform(X)
        return np.pad(xy, ((0, 0), (0, 2 - xy.shape[1]))), note
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, random_state=seed, init="pca", perplexity=min(30, max(2, len(X) // 4))
                ).fit_transform(X), note


def _at_least_10(name, value):
    return checks.integer(name, value, minimum=10)


def _optional_at_least_1(name, value):
    return checks.integer(name, value, minimum=1, optional=True)


@dataclass(frozen=True, kw_only=True)
class ClustersOptions(ModelOptions, CacheOptions, RunOptions):
    """The options of :func:`clusters` (and ``python -m probekit.clusters``)."""

    required_groups = ("source",)

    conllu: Any = option(None, "a CoNLL-U file: words labelled by UPOS or dependency relation", exclusive="source",
                         check=optional_input_file)
    task: str | None = option(None, "a probing task (nth_token, auxiliary, subject): words labelled by target",
                              exclusive="source")
    label: str | None = option(None, "word labels (default: upos with --conllu, target with --task)",
                               choices=LABELS)
    words: Any = option(None, "also cluster the occurrences of these word types only (case-insensitive)",
                        nargs="+", metavar="WORD")
    layers: Any = option(None, "layers (default: 0…L)", type=int, nargs="+")
    k: int | None = option(None, "k-means clusters (default: the number of labels)", type=int,
                           check=_optional_at_least_1)
    projection: str = option("pca", choices=("pca", "tsne"))
    max_points: int = option(3000, "words per layer (a seeded sample of the corpus)", type=int, check=_at_least_10)
    silhouette_sample: int = option(2000, "points the silhouette is computed on", type=int, check=_at_least_10)
    limit: int | None = option(None, "use only the first N sentences", type=int, check=optional_positive)
    skip_bad: bool = option(False, "skip malformed sentences (counted) instead of stopping")

    def __post_init__(self):
        if (self.conllu is None) == (self.task is None):       # before the group check: this says what each gives
            raise UserError("give --conllu FILE (labels: UPOS or dependency relations) or --task NAME (its targets)")
        super().__post_init__()

    def check(self) -> None:
        label = self.label or ("upos" if self.conllu is not None else "target")
        checks.choice("label", label, LABELS[:2] if self.conllu is not None else ("target",))
        checks.integer("k", self.k, minimum=1, maximum=self.max_points, optional=True)   # one cluster per point
        self._set(label=label)


@takes(ClustersOptions, args=("conllu",))
def clusters(o: ClustersOptions) -> ClustersResult:
    """Cluster the word vectors of every layer against word labels (UPOS by default for ``conllu``; the
    targets for ``task``). Options: :class:`ClustersOptions`. Returns a :class:`ClustersResult`."""
    from probekit.core.cache import get_activations
    from probekit.core.encoder import load_encoder
    from probekit.core.rundir import run_record

    arguments = o.record()
    conllu, task, label, words, layers, k = o.conllu, o.task, o.label, o.words, o.layers, o.k
    projection, max_points, silhouette_sample, limit, seed = (o.projection, o.max_points, o.silhouette_sample,
                                                              o.limit, o.seed)
    keys = None
    if conllu is not None:
        from probekit.corpora.conllu import read_conllu

        examples = read_conllu(conllu, skip_bad=o.skip_bad, limit=limit)
        source = str(conllu)
    else:
        from probekit.probing.registry import build_data

        data = build_data(task, seed=seed)
        examples, keys, source = data.examples[:limit] if limit else data.examples, data.keys, f"task {task}"
    if not examples:
        raise UserError(f"{source}: no sentences")
    n_words = sum(len(ex.words or []) for ex in examples)
    if k is not None and k > n_words:
        raise UserError(f"--k {k} is more than the {n_words} words of {source}: k-means needs at most one "
                        f"cluster per point")
    encoder = load_encoder(o.model, device=o.device)
    L = encoder.num_layers
    layers = list(range(L + 1)) if layers is None else [checks.integer("layers", v, minimum=0, maximum=L)
                                                        for v in ([layers] if isinstance(layers, int) else layers)]
    store = get_activations(encoder, examples, cache_dir=o.cache_dir, use_cache=not o.no_cache, hidden=True,
                            max_length=o.max_length, batch_size=o.batch_size, dtype=o.dtype)
    cut = set(store.meta["truncated"])
    labels = word_labels(examples, label, keys)
    rows_, y, forms = [], [], []
    for i, ex in enumerate(examples):
        if i in cut:
            continue
        r = np.arange(store.offsets[i], store.offsets[i + 1])
        r = r[~store.special[r]]
        rows_.append(r)
        y += labels[i]
        forms += list(ex.words)
    if not forms:
        raise UserError(f"{source}: no words left to cluster (every sentence was longer than the model's maximum "
                        f"length and was left out)")
    rows_ = np.concatenate(rows_)
    y, forms = np.array(y), np.array(forms)
    rng = np.random.default_rng(seed)
    subsets = {"all": np.arange(len(y))}
    if words:
        wanted = {w.lower() for w in ([words] if isinstance(words, str) else words)}
        chosen = np.flatnonzero(np.isin(np.char.lower(forms.astype(str)), list(wanted)))
        if len(chosen) < 2:
            raise UserError(f"--words: fewer than 2 occurrences of {', '.join(sorted(wanted))} in {source}")
        subsets[f"words: {', '.join(sorted(wanted))}"] = chosen
    out, points, notes = [], [], []
    bar = progress(total=len(layers) * len(subsets), desc="clustering layers", unit="layer")
    for subset, idx in subsets.items():
        sample = np.sort(rng.choice(idx, size=min(max_points, len(idx)), replace=False))
        n_labels = len(set(y[idx]))
        kk = k or max(n_labels, 2)
        if k is not None and k > len(sample):
            raise UserError(f"--k {k} is more than the {len(sample)} points of {subset}: k-means needs at most one "
                            f"cluster per point")
        for layer in layers:
            H = store.hidden(layer)
            X = np.asarray(H[rows_[sample]], dtype=np.float32)
            nmi, sil = _layer_scores(X, y[sample], min(kk, len(sample)), seed, silhouette_sample)
            for metric, value in (("nmi", nmi), ("silhouette", sil), ("n_points", float(len(sample))),
                                  ("n_labels", float(n_labels)), ("k", float(kk))):
                out.append({"layer": layer, "subset": subset, "label": label, "metric": metric, "value": value})
            xy, note = _project(X, projection, seed)
            if note:
                notes.append(f"{subset}, layer {layer}: {note}")
            points.append(pd.DataFrame({"subset": subset, "layer": layer, "word": forms[sample], "label": y[sample],
                                        "x": xy[:, 0], "y": xy[:, 1]}))
            bar.update(1)
    bar.close()
    if notes:
        import sys

        print(f"probekit: warning: projection fallback on {len(notes)} layer(s) ({notes[0]}); see results.md",
              file=sys.stderr)
    frame = tidy(pd.DataFrame(out), task="clusters", model=encoder.name)
    record = run_record("clusters", arguments, encoder=encoder,
                        inputs={"source": source, "label": label, "layers": layers, "projection": projection,
                                "kmeans": "k-means, k = number of labels unless --k, 3 seeded restarts",
                                "silhouette": f"Euclidean, of the label partition, on up to {silhouette_sample} points"},
                        counts={"sentences": len(examples), "truncated_left_out": len(cut), "words": int(len(y)),
                                **{f"points ({s})": int(min(max_points, len(i))) for s, i in subsets.items()}},
                        projection_notes=notes)
    return ClustersResult(frame, record, pd.concat(points, ignore_index=True))
