"""The attacks by name: the built-in attacks' modules, imported so their classes are registered, and the
look-ups ``pk.attack`` and its command line use.

Built in: ``word-shuffle``, ``distractor`` (transforms) and ``delete``, ``mask`` (key-word attacks) for
single-text classifiers (:mod:`.perturb`); Si et al.'s (2019) AddSent2Pas-, AddSent2Opt-, AddAns2Opt-Shuffle
test-time attacks and P-/Q-/PQ-Shuffle, P-/Q-/PQ-Remove un-answerable training sets for multiple-choice models
(:mod:`.mc`).
"""
from __future__ import annotations

from probekit.attacks.multiple_choice import perturbations as mc
from probekit.attacks import perturb  # noqa: F401 (they register the built-in attacks)
from probekit.attacks.base import ATTACKS


def attack_names(model: str | None = None, stage: str | None = None) -> list[str]:
    """Registered attacks for ``model`` ("single-text" or "multiple-choice") at ``stage``, in registration order
    (the run and table order)."""
    return [n for n, c in ATTACKS.items() if (model is None or model in c.models)
            and (stage is None or c.stage == stage)]


def get_attack(name: str) -> type:
    return ATTACKS[name]


def list_attacks():
    """Every registered attack with its stage, models and kind, one row each (a pandas DataFrame)."""
    import pandas as pd

    return pd.DataFrame([c.describe() for c in ATTACKS.values()])

