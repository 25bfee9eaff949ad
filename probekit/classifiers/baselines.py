"""Baselines every classifier run reports beside itself, trained on the same train split.

- ``tfidf-logreg``: scikit-learn TF-IDF (word 1–2-grams, sublinear tf) + logistic regression;
- ``majority``: always the most frequent training label;
- ``frozen-mean-logreg`` (a frozen head's yardstick): logistic regression on the frozen mean-pooled word
  vectors, the same vectors the frozen heads read; ``classify`` reports it beside a frozen head, with the
  head − baseline accuracy difference paired over the same examples, and starts the attention and mean heads
  from it (:func:`raw_logits`).

The regularisation C of each logistic regression is chosen on the dev split from a small grid (never on test).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from probekit.core.examples import Example

C_GRID = (0.25, 1.0, 4.0, 16.0)


def example_text(ex: Example) -> str:
    """The text a bag-of-n-grams model sees; a pair is ``A [SEP] B``."""
    a = ex.text if ex.words is None else " ".join(ex.words)
    return a if ex.words_b is None else f"{a} [SEP] {' '.join(ex.words_b)}"


def _fit_logreg(X_train, y_train, X_dev, y_dev, seed: int):
    from sklearn.linear_model import LogisticRegression

    best = None
    for C in C_GRID:
        clf = LogisticRegression(C=C, max_iter=2000, random_state=seed)
        clf.fit(X_train, y_train)
        acc = float((clf.predict(X_dev) == y_dev).mean()) if X_dev is not None else 0.0
        if best is None or acc > best[0]:
            best = (acc, C, clf)
    return best[2], best[1]


def tfidf_logreg(train: Sequence[Example], y_train, dev: Sequence[Example], y_dev, seed: int = 0):
    """(a ``predict_proba(examples)`` function, the chosen C)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True, token_pattern=r"(?u)\b\w+\b|[^\w\s]")
    X = vec.fit_transform([example_text(e) for e in train])
    Xd = vec.transform([example_text(e) for e in dev]) if dev else None
    clf, C = _fit_logreg(X, np.asarray(y_train), Xd, None if dev is None else np.asarray(y_dev), seed)
    return (lambda examples: clf.predict_proba(vec.transform([example_text(e) for e in examples]))), C


def vector_logreg(X_train, y_train, X_dev, y_dev, seed: int = 0):
    """Logistic regression on fixed vectors (standardised): (``predict_proba(X)``, the chosen C)."""
    model, C = fit_vector_logreg(X_train, y_train, X_dev, y_dev, seed)
    return model.predict_proba, C


def fit_vector_logreg(X_train, y_train, X_dev, y_dev, seed: int = 0):
    """(the fitted standardise + logistic-regression pipeline, the C chosen on dev)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X_train)
    clf, C = _fit_logreg(scaler.transform(X_train), np.asarray(y_train), scaler.transform(X_dev),
                         np.asarray(y_dev), seed)
    return make_pipeline(scaler, clf), C


def raw_logits(model, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The pipeline as one affine map on the unscaled vectors, logits = x Wᵀ + b ([C, D], [C]): the softmax of
    these logits is its ``predict_proba`` (two classes: logits 0 and the decision function)."""
    scaler, clf = model[0], model[-1]
    coef = clf.coef_ / scaler.scale_
    bias = clf.intercept_ - coef @ scaler.mean_
    if n_classes == 2 and coef.shape[0] == 1:
        coef, bias = np.vstack([np.zeros_like(coef[0]), coef[0]]), np.array([0.0, bias[0]])
    return coef, bias


def majority(y_train, n_classes: int) -> int:
    """The most frequent training class (the lowest index on ties)."""
    return int(np.bincount(np.asarray(y_train), minlength=n_classes).argmax())


def baseline_rows(splits, y, labels, seed):
    """classify's result rows of TF-IDF + logistic regression and the majority class on every split, and
    the facts the run record keeps (chosen C, majority label)."""
    from probekit.classifiers.metrics import metric_rows

    rows = []
    predict, C = tfidf_logreg(splits["train"], y["train"], splits["dev"], y["dev"], seed=seed)
    for name, exs in splits.items():
        p = predict(exs)
        rows += metric_rows(np.log(np.clip(p, 1e-12, None)), y[name], labels, split=name, probe="tfidf-logreg",
                            model="tfidf", layer=None, encoder=None, level=None)
    maj = majority(y["train"], len(labels))
    for name in splits:
        rows.append({"split": name, "probe": "majority", "model": "majority", "layer": None, "encoder": None,
                     "level": None, "metric": "accuracy", "value": float((y[name] == maj).mean()), "class": None})
    return rows, {"tfidf_logreg_C": C, "majority_label": labels[maj]}


def mean_vectors(feats) -> np.ndarray:
    """[N, D] mean of each example's unit vectors (the sentence vector a linear model gets)."""
    import torch

    from probekit.classifiers.pooling import masked_mean

    out = []
    for i in range(0, len(feats), 512):
        units, mask, _ = feats.batch(torch.arange(i, min(i + 512, len(feats))))
        out.append(masked_mean(units, mask).numpy().astype(np.float64))
    return np.concatenate(out) if out else np.zeros((0, feats.flat.shape[1]))


class LinearBaseline:
    """Logistic regression on the mean-pooled fixed vectors of every split (C chosen on dev): a frozen head's
    yardstick, and its start (:meth:`start`) — a head trained on these vectors should fit at least as well."""

    def __init__(self, feats: dict, y: dict, labels, seed: int, name: str = "frozen-mean-logreg"):
        self.name, self.y, self.labels, self.seed = name, y, list(labels), seed
        self.X = {s: mean_vectors(f) for s, f in feats.items()}
        self.model, self.C = fit_vector_logreg(self.X["train"], y["train"], self.X["dev"], y["dev"], seed)
        self.weight, self.bias = raw_logits(self.model, len(self.labels))

    def start(self, head) -> bool:
        """Set an attention or mean head to this baseline: uniform attention (v = 0, so pooling is the mean;
        every attention-multi head the same) and the output layer the baseline's weights. False: other heads."""
        import torch

        from probekit.classifiers.pooling import AttentionHead, MeanHead

        if not isinstance(head, (AttentionHead, MeanHead)):
            return False
        k = head.heads if isinstance(head, AttentionHead) else 1
        with torch.no_grad():
            if isinstance(head, AttentionHead):
                head.v.weight.zero_()
            weight = torch.as_tensor(self.weight, dtype=head.out.weight.dtype)
            head.out.weight.copy_(weight.repeat(1, k) / k)
            head.out.bias.copy_(torch.as_tensor(self.bias, dtype=head.out.bias.dtype))
        return True

    def log_probs(self, split: str) -> np.ndarray:
        return np.log(np.clip(self.model.predict_proba(self.X[split]), 1e-12, None))

    def difference(self, logits: np.ndarray, split: str):
        """Head accuracy − baseline accuracy on ``split``, paired over the same examples (an Interval)."""
        from probekit.core.intervals import paired_difference

        y = self.y[split]
        head = (np.asarray(logits).argmax(1) == y).astype(np.float64)
        base = (self.log_probs(split).argmax(1) == y).astype(np.float64)
        return paired_difference(head, base, seed=self.seed, vectorized=True)

    def rows(self, logits: dict, head: str, **keys) -> list[dict]:
        """The baseline's metric rows on every split, and ``accuracy_difference`` rows (probe ``HEAD vs NAME``)
        with ``ci_low``, ``ci_high`` and ``n``."""
        from probekit.classifiers.metrics import metric_rows

        rows = []
        for split in self.X:
            rows += metric_rows(self.log_probs(split), self.y[split], self.labels, split=split, probe=self.name,
                                **keys)
            d = self.difference(logits[split], split)
            rows.append({"split": split, "probe": f"{head} vs {self.name}", **keys, "metric": "accuracy_difference",
                         "value": d.estimate, "ci_low": d.ci_low, "ci_high": d.ci_high, "n": d.n, "class": None})
        return rows

    def info(self, logits: dict, head: str, split: str) -> dict:
        """What the run record keeps: the chosen C and the sentence comparing the head with the baseline."""
        from probekit.core.intervals import compare_sentence

        d = self.difference(logits[split], split)
        return {f"{self.name}_C": self.C,
                "head_vs_linear": compare_sentence(f"the {head} head", self.name, d, quantity=f"{split} accuracy")}
