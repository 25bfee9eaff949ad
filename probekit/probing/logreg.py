"""scikit-learn's logistic regression used directly as a selection probe (``--probes logreg``).

For each task key, one binary classifier "is this the target word?" over every candidate word of the training
sentences (L2-regularised, lbfgs, with a bias); a sentence's prediction is the argmax of its decision function
over the sentence's real words (specials and padding excluded), the same decision rule as
:class:`~probekit.probing.selection.SelectionProbe`. A reference for how well the gradient-trained probes fit.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from probekit.probing.base import SelectionProbeBase, as_targets, register
from probekit.probing.selection import Sentences


def _words(data: Sentences) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sentence row, unit position, row of ``flat``) of every candidate word."""
    sent, unit = np.nonzero((data.candidate & (data.index >= 0)).numpy())
    return sent, unit, data.index.numpy()[sent, unit]


@register
class LogRegProbe(SelectionProbeBase):
    """scikit-learn conventions (:class:`~.base.SelectionProbeBase`); fitted: ``coef_`` [K, D], ``intercept_``
    [K]."""

    name = "logreg"
    kind = "logreg"
    summary = "scikit-learn LogisticRegression per key on every candidate word (lbfgs, L2), argmax per sentence"
    paper = "Lin et al. (2019)'s per-word two-class objective"

    def __init__(self, C: float = 1.0, max_iter: int = 1000, seed: int = 0):
        self.C, self.max_iter, self.seed = C, max_iter, seed

    def fit(self, data: Sentences, targets: np.ndarray, dev=None):
        """One binary LR per key on the sentences that have a target (``dev`` is not used: lbfgs converges)."""
        from sklearn.linear_model import LogisticRegression

        targets = as_targets(targets)
        sent, unit, row = _words(data)
        X = data.flat.numpy().astype(np.float64)[row]
        K = targets.shape[1]
        self.coef_ = np.zeros((K, X.shape[1]))
        self.intercept_ = np.zeros(K)
        for k in range(K):
            t = targets[sent, k]
            use = t >= 0
            y = (unit[use] == t[use]).astype(int)
            if y.min() == y.max():        # one class only: constant scores, argmax picks the first word
                continue
            lr = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")     # ConvergenceWarning on separable data is expected
                lr.fit(X[use], y)
            self.coef_[k], self.intercept_[k] = lr.coef_[0], lr.intercept_[0]
        return self

    def scores(self, data: Sentences) -> np.ndarray:
        """[N, U, K] decision function, −inf where a unit may not be picked."""
        sent, unit, row = _words(data)
        out = np.full((*data.index.shape, len(self.intercept_)), -np.inf)
        out[sent, unit] = data.flat.numpy().astype(np.float64)[row] @ self.coef_.T + self.intercept_
        return out

    def predict(self, data: Sentences) -> np.ndarray:
        return self.scores(data).argmax(1)

    def predict_log_proba(self, data: Sentences) -> np.ndarray:
        """[N, U, K] log-probabilities of each word being the target, normalised over the sentence's words."""
        s = torch.from_numpy(self.scores(data))
        return torch.log_softmax(s, dim=1).numpy()
