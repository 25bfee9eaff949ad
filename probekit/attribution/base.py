"""The plug-in base class of attribution methods: one class per method, saying what it is and what it needs.

A method subclasses :class:`AttributionMethod`, sets its class attributes (``name``, ``signed``, ``word_rule``,
``unit``, ``needs`` …), declares its own options as dataclass fields made with :func:`option`, implements
:meth:`AttributionMethod.attribute`, and is registered in one line (``@register`` from ``registry``). From then
on it is a ``--methods`` choice of ``python -m probekit.attribute`` (its options become flags there), a method of
``pk.attribute`` and ``explain``, a ranking of the ERASER experiment and a word ranking of the key-word attacks.

``needs`` says what the method takes from the batch's shared forward pass (``state.py`` computes the union once
per batch): ``logits``/``probabilities`` of the classifier on the batch, ``attentions`` (every layer's, eager),
``pooling`` (the head's weights) and ``embedding_gradients`` (∂ logit_target / ∂ word embeddings and the
embeddings). A method that runs the model itself (integrated gradients' path, occlusion's variants, Captum's
sampling methods) needs nothing more than the batch's logits or probabilities.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Callable, ClassVar

from probekit.core import checks
from probekit.core.errors import UserError
from probekit.core.options import above_zero, optional_positive, positive  # noqa: F401 (a method's checks)

#: What a method may take from the batch's shared forward pass.
NEEDS = ("logits", "probabilities", "attentions", "pooling", "embedding_gradients")
UNITS = ("token", "word", "head")
WORD_RULES = ("sum", "l2")


def option(default, help: str, *, check: Callable | None = None, type: type | None = None):
    """A method's option: a dataclass field with its default, its help line, a check ``(name, value) -> value``
    (raising :class:`UserError`) and the command-line type (default: the default's type)."""
    kind = type or (builtin_type(default) if default is not None else str)
    return field(default=default, metadata={"help": help, "check": check, "type": kind})


def builtin_type(value):
    return {bool: bool, int: int, float: float}.get(value.__class__, str)


@dataclass
class AttributionMethod:
    """One attribution method. Subclasses set the class attributes and may add options (dataclass fields).

    ``attribute(classifier, batch, target, state)`` returns ``(scores, extra)``: ``scores`` a float tensor
    [B, T] over the batch's tokens (``unit="token"``), [B, W] over words (``unit="word"``) or over the head's own
    units (``unit="head"``: words or tokens, ``classifier.level``); ``extra`` per-example arrays (``delta`` and
    ``flagged`` for a method with a convergence delta)."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""          # one line: what the score is (the run record and the page show it)
    signed: ClassVar[bool] = False       # scores can be negative (drawn red/blue, ranked by |score| in agreement)
    word_rule: ClassVar[str] = "sum"     # "sum" or "l2": how sub-token scores become a word's (words.py)
    unit: ClassVar[str] = "token"        # what attribute() returns scores over
    needs: ClassVar[frozenset] = frozenset()   # from the batch's shared forward pass (NEEDS)
    has_convergence_delta: ClassVar[bool] = False
    default: ClassVar[bool] = True       # run when no method is named (the expensive sampling ones are not)
    requirement: ClassVar[str] = ""      # what a classifier must have, said when applies() is False

    def __post_init__(self):
        for f in fields(self):
            check = f.metadata.get("check")
            if check is not None:
                setattr(self, f.name, check(f.name, getattr(self, f.name)))

    @classmethod
    def applies(cls, classifier) -> bool:
        """Whether the method can explain this classifier (pooling weights need a pooling head …)."""
        return True

    @classmethod
    def options(cls) -> list:
        """The method's own options (dataclass fields: name, default, metadata help/check/type)."""
        return list(fields(cls))

    @classmethod
    def build(cls, **given) -> "AttributionMethod":
        """An instance from the options in ``given`` that are this method's (others are ignored, so one set of
        keyword options can serve several methods)."""
        own = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in given.items() if k in own})

    @classmethod
    def describe(cls) -> dict:
        """Name, capabilities and options, as ``pk.list_methods()`` lists them."""
        return {"name": cls.name, "summary": cls.summary, "signed": cls.signed, "word_rule": cls.word_rule,
                "unit": cls.unit, "needs": sorted(cls.needs), "convergence_delta": cls.has_convergence_delta,
                "default": cls.default, "requirement": cls.requirement,
                "options": {f.name: (None if f.default is MISSING else f.default) for f in fields(cls)}}

    def attribute(self, classifier, batch: dict, target, state) -> tuple:
        raise NotImplementedError

    @classmethod
    def fn(cls, classifier, batch: dict, target=None, *, internal_batch_size: int | None = None,
           examples=None, words=None, seed: int = 0, **options):
        """Run the method on one encoded batch outside the runner (its own forward pass for what it needs)."""
        from probekit.attribution.state import batch_state

        state = batch_state(classifier, batch, cls.needs, target, batch_size=internal_batch_size,
                            examples=examples, words=words, seed=seed)
        return cls.build(**options).attribute(classifier, batch, state.target, state)


def check_class(cls) -> None:
    """Refuse a method class that does not say what it is (at registration, so the author sees it at once)."""
    if not (isinstance(cls, type) and issubclass(cls, AttributionMethod)):
        raise TypeError(f"{cls!r} is not an AttributionMethod subclass")
    if not cls.name or not isinstance(cls.name, str):
        raise TypeError(f"{cls.__name__}: set the class attribute name")
    if cls.unit not in UNITS or cls.word_rule not in WORD_RULES:
        raise TypeError(f"{cls.__name__}: bad unit {cls.unit!r} or word rule {cls.word_rule!r}")
    bad = set(cls.needs) - set(NEEDS)
    if bad:
        raise TypeError(f"{cls.__name__}: unknown needs {sorted(bad)}; choose from {', '.join(NEEDS)}")
    if cls.attribute is AttributionMethod.attribute:
        raise TypeError(f"{cls.__name__}: implement attribute(classifier, batch, target, state)")


def unknown_options(given: dict, classes) -> list[str]:
    """The keyword options that no method in ``classes`` declares."""
    known = {f.name for c in classes for f in fields(c)}
    return [k for k in given if k not in known]


def refuse_unknown(given: dict, classes, everywhere) -> None:
    """One line for an option that is no method's; name the methods that do take it if only unselected do."""
    for k in unknown_options(given, classes):
        owners = [c.name for c in everywhere if k in {f.name for f in fields(c)}]
        if not owners:
            raise UserError(f"unknown option {checks.flag(k)}: no attribution method takes it")
