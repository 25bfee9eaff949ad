"""Attribution methods, registered by name: ``@register`` on an :class:`~.base.AttributionMethod` subclass.

The registry is what ``--methods`` offers, what ``pk.attribute``/``explain`` run when no method is named (every
registered method whose ``default`` is true and that applies to the classifier), and what ERASER and the key-word
attacks rank words with. ``Method(...)`` wraps a plain function ``fn(classifier, batch, target, **_) ->
(scores, extra)`` as a method class, for quick experiments.
"""
from __future__ import annotations

from typing import Callable, Sequence

from probekit.core.errors import UserError
from probekit.core.plugins import registry as _registry
from probekit.attribution.base import AttributionMethod, check_class

METHODS: dict[str, type] = _registry("attribution methods")
#: The order methods are listed, run and shown in (methods registered elsewhere follow, in registration order).
ORDER = ("pooling", "attention-cls", "attention-rollout", "gradient", "grad-input", "integrated-gradients",
         "occlusion")


def register(cls: type) -> type:
    """Add the method class ``cls`` under ``cls.name`` (a later registration replaces an earlier one).
    Usable as a class decorator or called: ``register(MyMethod)``."""
    check_class(cls)
    METHODS[cls.name] = cls
    return cls


register_method = register


def Method(name: str, fn: Callable, unit: str = "token", signed: bool = False, word_rule: str = "sum",
           applies: Callable | None = None, needs: str = "", summary: str = "") -> type:
    """A method class around a function ``fn(classifier, batch, target, **_) -> (scores, extra)`` (not
    registered: pass it to :func:`register`)."""
    check = applies or (lambda c: True)
    attrs = dict(name=name, unit=unit, signed=signed, word_rule=word_rule, requirement=needs,
                 summary=summary or (fn.__doc__ or "").strip().split("\n")[0],
                 applies=classmethod(lambda cls, c: bool(check(c))),
                 attribute=lambda self, classifier, batch, target, state: fn(
                     classifier, batch, target, words=state.words, examples=state.examples,
                     internal_batch_size=state.batch_size))
    cls = type(f"FunctionMethod_{name}", (AttributionMethod,), attrs)
    check_class(cls)
    return cls


def unit_of(method, classifier) -> str:
    """"token" or "word": the units ``method``'s scores are over for this classifier."""
    return classifier.level if method.unit == "head" else method.unit


def _ordered() -> list[str]:
    rank = {n: i for i, n in enumerate(ORDER)}
    return sorted(METHODS, key=lambda n: rank.get(n, len(ORDER)))


def method_names() -> list[str]:
    return _ordered()


def get_method(name: str) -> type:
    return METHODS[name]


def applicable(classifier) -> list[str]:
    """The default methods that apply to ``classifier``, in registry order (the ``--methods`` default)."""
    return [n for n in _ordered() if METHODS[n].default and METHODS[n].applies(classifier)]


def resolve(methods: Sequence[str] | str | None, classifier) -> list[str]:
    """Check ``--methods`` against the registry and the classifier; ``None`` means every default that applies."""
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
            raise UserError(f"--methods {n}: needs {m.requirement or 'something this classifier lacks'}; this "
                            f"classifier has head {getattr(classifier, 'head_type', '?')!r} and encoder "
                            f"{getattr(classifier, 'encoder_mode', '?')!r}")
    return list(dict.fromkeys(names))


def list_methods():
    """Every registered method with its capabilities and options, one row each (a pandas DataFrame)."""
    import pandas as pd

    return pd.DataFrame([METHODS[n].describe() for n in _ordered()])


def all_options() -> dict:
    """option name → [(method class, dataclass field)] over every registered method (the command's flags)."""
    from dataclasses import fields

    out: dict = {}
    for n in _ordered():
        for f in fields(METHODS[n]):
            out.setdefault(f.name, []).append((METHODS[n], f))
    return out


def is_method(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, AttributionMethod)
