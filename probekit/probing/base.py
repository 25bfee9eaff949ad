"""The plug-in base class of probes, on scikit-learn's conventions, and the registry of probe kinds.

A probe is a scikit-learn estimator: hyperparameters are explicit keywords of ``__init__`` (stored under their
own names, so ``get_params``/``set_params``/``clone`` and ``sklearn.model_selection`` work), ``fit(X, y) →
self``, ``predict``, ``predict_proba``, ``score → float``. What ``X`` is depends on the probe's ``input``:

- ``"sentences"``: a :class:`~.selection.Sentences` (word vectors of N sentences; indexable by rows) and ``y``
  [N, K] target word positions (−1: none), one column per task key (a probe trains K scorers side by side).
  ``predict`` [N, K] picks a word per sentence and key, ``predict_proba`` [N, U, K] is the softmax over the
  sentence's real words, ``score`` the mean accuracy over keys, ``accuracies`` each key's. These are the
  ``--probes`` of ``python -m probekit.probe``.
- ``"trees"``: a list of :class:`~.structural.Sentence` (vectors and gold tree), ``y`` unused: Hewitt &
  Manning's structural probes (``predict`` gives distances or depths; they are not classifiers, so they have no
  ``predict_proba``).
- ``"spans"``: a :class:`~.edges.Spans` (a word-vector table and span targets), ``y`` unused: Tenney et al.'s edge
  probe (``predict_proba`` one sigmoid per label, ``score`` micro-F1).

A new probe subclasses :class:`SelectionProbeBase` (or :class:`Probe`), sets ``name`` and ``summary`` and is
registered in one line (``@register``); from then on it is a ``--probes`` choice (``--plugin FILE`` loads a
user's file) and trains on every layer in ``pk.probe``. ``pk.list_probes()`` lists them.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from probekit.core.plugins import registry as _registry

PROBES: dict[str, type] = _registry("probes")
INPUTS = ("sentences", "trees", "spans")


class Probe(BaseEstimator):
    """A probe: ``fit(X, y=None) → self``, ``predict(X)``, ``score(X, y=None) → float``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""          # one line: what it fits and how
    input: ClassVar[str] = "sentences"   # what X is (INPUTS)
    paper: ClassVar[str] = ""            # whose probe it is
    on_step = None                       # optional callable(text): where a long fit is (progress bars)

    def fit(self, X, y=None, **fit_params) -> "Probe":
        raise NotImplementedError

    def predict(self, X):
        raise NotImplementedError

    def score(self, X, y=None) -> float:
        raise NotImplementedError

    @classmethod
    def describe(cls) -> dict:
        """Name, input, paper and hyperparameters with their defaults, as ``pk.list_probes()`` lists them."""
        import inspect

        params = inspect.signature(cls.__init__).parameters
        return {"name": cls.name, "summary": cls.summary, "input": cls.input, "paper": cls.paper,
                "class": cls.__name__,
                "options": {n: p.default for n, p in params.items() if n != "self"}}


class SelectionProbeBase(ClassifierMixin, Probe):
    """A probe that picks one word per sentence and task key (``input = "sentences"``). Subclasses implement
    ``fit(X, y, dev=None)`` (``dev``: ``(Sentences, targets)`` for model selection) and ``predict_log_proba``;
    ``predict``, ``predict_proba``, ``accuracies`` and ``score`` follow from it."""

    input = "sentences"

    def predict_log_proba(self, X) -> np.ndarray:
        """[N, U, K]: log p(word u is the target of key k), −inf off the sentence's real words."""
        raise NotImplementedError

    def predict_proba(self, X) -> np.ndarray:
        """[N, U, K]: p(word u is the target of key k); each sentence's column sums to 1 over its words."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> np.ndarray:
        """[N, K]: the word position each key's scorer picks in each sentence."""
        return self.predict_log_proba(X).argmax(1)

    def accuracies(self, X, y) -> np.ndarray:
        """[K] accuracy per key over the sentences that have a target (NaN where none has)."""
        y = as_targets(y)
        pred = self.predict(X)
        has = y >= 0
        n = has.sum(0)
        return np.where(n > 0, ((pred == y) & has).sum(0) / np.maximum(n, 1), np.nan)

    def score(self, X, y=None) -> float:
        """Mean accuracy over the keys that have a target (scikit-learn's ``score``: one number)."""
        acc = self.accuracies(X, y)
        return float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan")

    def _more_tags(self):                # scikit-learn < 1.6: targets are [N, K]
        return {"multioutput": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def as_targets(y) -> np.ndarray:
    """Targets as [N, K] integers (a 1-D array is one key)."""
    y = np.asarray(y)
    return (y[:, None] if y.ndim == 1 else y).astype(np.int64)


def register(cls: type) -> type:
    """Add the probe class ``cls`` under ``cls.name`` (a later registration replaces an earlier one); a class
    decorator, or called: ``register(MyProbe)``. A probe that does not say what it is is refused at once."""
    if not (isinstance(cls, type) and issubclass(cls, Probe)):
        raise TypeError(f"{cls!r} is not a Probe subclass")
    if not cls.name or not isinstance(cls.name, str):
        raise TypeError(f"{cls.__name__}: set the class attribute name")
    if cls.input not in INPUTS:
        raise TypeError(f"{cls.__name__}: input {cls.input!r} is not one of {', '.join(INPUTS)}")
    for method in ("fit", "predict_log_proba" if issubclass(cls, SelectionProbeBase) else "predict"):
        if getattr(cls, method) is getattr(SelectionProbeBase if method == "predict_log_proba" else Probe, method):
            raise TypeError(f"{cls.__name__}: implement {method}")
    cls._get_param_names()           # scikit-learn refuses *args/**kwargs in __init__: say so at registration
    PROBES[cls.name] = cls
    return cls


register_probe = register
