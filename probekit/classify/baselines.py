"""Baselines every classifier run reports beside itself, trained on the same train split.

- ``tfidf-logreg``: scikit-learn TF-IDF (word 1–2-grams, sublinear tf) + logistic regression;
- ``majority``: always the most frequent training label;
- ``frozen-mean-logreg`` (the benchmark's yardstick): logistic regression on the frozen mean-pooled word
  vectors, the same vectors the frozen heads read.

The regularisation C of each logistic regression is chosen on the dev split from a small grid (never on test).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.examples import Example

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
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X_train)
    clf, C = _fit_logreg(scaler.transform(X_train), np.asarray(y_train), scaler.transform(X_dev),
                         np.asarray(y_dev), seed)
    model = make_pipeline(scaler, clf)
    return model.predict_proba, C


def majority(y_train, n_classes: int) -> int:
    """The most frequent training class (the lowest index on ties)."""
    return int(np.bincount(np.asarray(y_train), minlength=n_classes).argmax())


def baseline_rows(splits, y, labels, seed):
    """classify's result rows of TF-IDF + logistic regression and the majority class on every split, and
    the facts the run record keeps (chosen C, majority label)."""
    from .metrics import metric_rows

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
