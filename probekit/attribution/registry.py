"""Attribution methods, registered by name with one signature.

A method is ``fn(classifier, batch, target, **options) -> (scores, extra)``: ``batch`` is what
``classifier.encode(examples)`` returns (padded tensors plus the words of each example), ``target`` a LongTensor
[B] of class indices, ``scores`` a float tensor [B, T] over the batch's tokens (``unit="token"``), [B, W] over
words (``unit="word"``) or over the head's own units (``unit="head"``: words or tokens, ``classifier.level``),
and ``extra`` a dict of per-example arrays (IG's convergence delta …). ``words.py`` turns token scores into
word scores by the method's ``word_rule``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ..core.errors import UserError


@dataclass(frozen=True)
class Method:
    name: str
    fn: Callable
    unit: str            # "token", "word", or "head" (the classifier's own level): what fn returns
    signed: bool         # scores can be negative (drawn red/blue)
    word_rule: str       # "sum" or "l2" (sqrt of the summed squares): how sub-token scores become a word's
    applies: Callable    # classifier -> bool
    needs: str           # what a classifier must have, for the error message
    summary: str


METHODS: dict[str, Method] = {}
#: The order methods are listed, run and shown in (methods registered elsewhere follow, in registration order).
ORDER = ("pooling", "attention-cls", "attention-rollout", "gradient", "grad-input", "integrated-gradients",
         "occlusion")


def register(name: str, *, unit: str = "token", signed: bool = False, word_rule: str = "sum",
             applies: Callable | None = None, needs: str = "", summary: str = ""):
    """Decorator: add ``fn`` to :data:`METHODS` under ``name`` (later registrations replace earlier ones)."""
    if unit not in ("token", "word", "head") or word_rule not in ("sum", "l2"):
        raise ValueError(f"bad unit {unit!r} or word rule {word_rule!r}")

    def deco(fn):
        METHODS[name] = Method(name, fn, unit, signed, word_rule, applies or (lambda c: True), needs,
                               summary or (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return deco


def unit_of(method: Method, classifier) -> str:
    """"token" or "word": the units ``method``'s scores are over for this classifier."""
    return classifier.level if method.unit == "head" else method.unit


def _ordered() -> list[str]:
    rank = {n: i for i, n in enumerate(ORDER)}
    return sorted(METHODS, key=lambda n: rank.get(n, len(ORDER)))


def method_names() -> list[str]:
    return _ordered()


def get_method(name: str) -> Method:
    return METHODS[name]


def applicable(classifier) -> list[str]:
    """The methods that apply to ``classifier``, in registry order (the ``--methods`` default)."""
    return [n for n in _ordered() if METHODS[n].applies(classifier)]


def resolve(methods: Sequence[str] | str | None, classifier) -> list[str]:
    """Check ``--methods`` against the registry and the classifier; ``None`` means every applicable method."""
    if methods is None:
        return applicable(classifier)
    names = [methods] if isinstance(methods, str) else list(methods)
    if not names:
        raise UserError(f"--methods needs at least one of {', '.join(_ordered())}")
    for n in names:
        if n not in METHODS:
            raise UserError(f"--methods: unknown method {n!r}; choose from {', '.join(_ordered())}")
        m = METHODS[n]
        if not m.applies(classifier):
            raise UserError(f"--methods {n}: needs {m.needs}; this classifier has head {classifier.head_type!r} "
                            f"and encoder {classifier.encoder_mode!r}")
    return list(dict.fromkeys(names))
