"""The plug-in base class of attacks and their registry: one class per attack, saying when and to what it applies.

An attack is either a **transform** (``apply(items, seed) → items``: the same number of perturbed items, seeded
draws when ``random``) or a **key-word** attack (``operation`` ``delete``/``mask`` of the top-k % words by an
attribution method, against k % random words: :mod:`.keywords` runs it). ``stage`` says whether it perturbs the
test items (``"test"``) or a training set the model is retrained on (``"training"``: Si et al.'s un-answerable
sets); ``models`` which models it applies to: ``"single-text"`` classifiers (one text or a pair) and
``"multiple-choice"`` models. Registered (``@register``), a transform is an ``--attacks`` choice of
``python -m probekit.attack`` for those models (``--unanswerable`` for a training-set one) and runs in
``pk.attack``; ``pk.list_attacks()`` lists them (:mod:`.catalogue`).
"""
from __future__ import annotations

from typing import Callable, ClassVar, Sequence

from probekit.core.plugins import registry as _registry

ATTACKS: dict[str, type] = _registry("attacks")
STAGES = ("test", "training")
MODELS = ("single-text", "multiple-choice")
KINDS = ("transform", "keyword")


class Attack:
    """One attack. Subclasses set the class attributes and implement :meth:`apply` (a transform)."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    stage: ClassVar[str] = "test"                 # STAGES
    models: ClassVar[frozenset] = frozenset({"single-text"})   # MODELS it applies to
    kind: ClassVar[str] = "transform"             # KINDS
    random: ClassVar[bool] = True                 # draws random numbers (so several seeded draws differ)
    operation: ClassVar[str] = ""                 # a key-word attack's: "delete" or "mask"

    def apply(self, items: Sequence, seed: int = 0) -> list:
        """The perturbed items, one per item of ``items``, in order (Examples or MCItems)."""
        raise NotImplementedError

    @classmethod
    def describe(cls) -> dict:
        return {"name": cls.name, "summary": cls.summary, "paper": cls.paper, "stage": cls.stage,
                "models": sorted(cls.models), "kind": cls.kind, "random": cls.random}


def register(cls: type) -> type:
    """Add the attack class ``cls`` under ``cls.name`` (a later registration replaces an earlier one)."""
    if not (isinstance(cls, type) and issubclass(cls, Attack)):
        raise TypeError(f"{cls!r} is not an Attack subclass")
    if not cls.name or not isinstance(cls.name, str):
        raise TypeError(f"{cls.__name__}: set the class attribute name")
    if cls.stage not in STAGES or cls.kind not in KINDS or not cls.models or set(cls.models) - set(MODELS):
        raise TypeError(f"{cls.__name__}: stage must be one of {STAGES}, kind one of {KINDS}, models a subset "
                        f"of {MODELS}")
    if cls.kind == "transform" and cls.apply is Attack.apply:
        raise TypeError(f"{cls.__name__}: implement apply(items, seed)")
    if cls.kind == "keyword" and (cls.stage != "test" or cls.operation not in ("delete", "mask")):
        raise TypeError(f"{cls.__name__}: a key-word attack is a test-time delete or mask")
    ATTACKS[cls.name] = cls
    return cls


register_attack = register


def transform(name: str, fn: Callable, *, stage: str = "test", models=("single-text",), random: bool = True,
              paper: str = "", summary: str = "") -> type:
    """Register the function ``fn(items, seed) → items`` as a transform attack; returns its class."""
    attrs = dict(name=name, stage=stage, models=frozenset(models), random=random, paper=paper,
                 summary=summary or (fn.__doc__ or "").strip().split("\n")[0],
                 apply=lambda self, items, seed=0: fn(items, seed))
    return register(type(f"Attack_{name}", (Attack,), attrs))
