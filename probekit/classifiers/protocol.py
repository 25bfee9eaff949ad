"""The one protocol every probekit classifier satisfies: ``predict_proba(examples) → [N, C]`` probabilities.

Single-text and pair classifiers (:class:`~.model.Classifier` on a transformer, :class:`~.scratch.ScratchClassifier`
trained from scratch, :class:`~.hf_model.HFClassifier` around a Hugging Face ``…ForSequenceClassification``) take
:class:`~probekit.core.examples.Example` lists (a pair is an Example with ``words_b``) and give one column per
``labels`` entry; the multiple-choice model (:class:`~.multiple_choice.MultipleChoiceModel`) takes
:class:`~.mcdata.MCItem` lists and gives one column per option (0 past an item's last option). Every row sums to
1. Code that only needs a model's probabilities (faithfulness metrics, attacks, baselines) can accept any
:class:`ProbabilisticClassifier`; ``isinstance`` checks it, as scikit-learn's duck typing would.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class ProbabilisticClassifier(Protocol):
    """A model that gives class (or option) probabilities for a list of inputs, in input order."""

    def predict_proba(self, examples: Sequence, batch_size: int = ...) -> np.ndarray:
        ...
