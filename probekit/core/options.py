"""Options declared once: a frozen dataclass per option group, each field carrying its default, help, choices and
check.

The Python function builds its options from keywords (:func:`takes`; an unknown keyword is a one-line error
naming it), the command line is generated from the same fields (:mod:`probekit.cli.generate`), and the run
record's ``arguments`` are :meth:`Options.record` — ``dataclasses.asdict`` with paths and loaded models written as
text. Shared groups: :class:`ModelOptions` (model, batch size, max length, device), :class:`CacheOptions`
(activation cache and its dtype), :class:`RunOptions` (seed, quiet); the command-line-only output options
come from :func:`output_options`. The idea follows scikit-learn's parameters read from ``__init__`` and
inseq's command arguments declared as dataclasses.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import os
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, ClassVar, Iterable, Sequence

from probekit.core import checks
from probekit.core.errors import UserError

__all__ = ["option", "Options", "ModelOptions", "DeviceOptions", "CacheOptions", "RunOptions", "SampleOptions",
           "takes", "output_options", "ordered_fields", "UnknownOption", "batch_size_option", "data_root_option",
           "DTYPES"]

DTYPES = ("float16", "float32")
_META = "probekit"


class UnknownOption(UserError, TypeError):
    """A keyword the function does not take (also a ``TypeError``, as Python reports a wrong keyword)."""


def option(default: Any = MISSING, help: str | Callable[[], str] = "", *, choices: Iterable | None = None,
           nargs: str | int | None = None, type: Callable | None = None, check: Callable | None = None,
           metavar: str | None = None, flag: str | None = None, required: bool = False, positional: bool = False,
           exclusive: str | None = None, action: str | None = None, cli: bool = True):
    """One option: a dataclass field whose metadata the command line and the checks read.

    ``check(name, value) → value`` checks (and may normalise) a value; ``choices`` (with ``nargs`` a list of
    them) are checked before it. ``help`` and ``choices`` may be callables, read when the parser is built and
    when a value is checked (a registry that plug-ins join after import). Command line
    only: ``flag`` (default ``--name-with-dashes``), ``positional``, ``exclusive`` (a mutually exclusive group's
    name), ``action`` (``append`` for a repeatable option), ``metavar``, ``cli=False`` to leave it off. A list
    default is stored as a tuple (the dataclass is frozen). ``required`` with no default: a missing value is a
    one-line error in Python as on the command line.
    """
    if isinstance(default, list):
        default = tuple(default)
    if choices is not None and not callable(choices):
        choices = tuple(choices)
    meta = {"help": help, "choices": choices, "nargs": nargs,
            "type": type, "check": check, "metavar": metavar, "flag": flag, "required": required or default is MISSING,
            "positional": positional, "exclusive": exclusive, "action": action, "cli": cli}
    return field(default=default, metadata={_META: meta})


def meta(f: dataclasses.Field) -> dict:
    return f.metadata.get(_META, {})


def _groups(cls) -> list[type]:
    """The option groups ``cls`` inherits, in the order its bases name them (depth first)."""
    out = []
    for base in cls.__bases__:
        if dataclasses.is_dataclass(base) and base is not Options:
            for g in [*_groups(base), base]:
                if g not in out:
                    out.append(g)
    return out


def ordered_fields(cls) -> list[dataclasses.Field]:
    """``cls``'s fields in the order help and checks show them: its own first, then each inherited group's
    (a field a subclass re-declares, e.g. another default batch size, stays in its group)."""
    by_name = {f.name: f for f in fields(cls)}
    groups = _groups(cls)
    inherited = [f.name for g in reversed(groups) for f in fields(g)]
    order = [n for n in by_name if n not in inherited]
    for g in groups:
        order += [f.name for f in fields(g) if f.name not in order]
    return [by_name[n] for n in order]


def flag_of(f: dataclasses.Field) -> str:
    """How the command line spells a field: its ``flag``, else ``--name-with-dashes``."""
    return meta(f).get("flag") or checks.flag(f.name)


def choices_of(f: dataclasses.Field) -> tuple | None:
    """A field's allowed values now (a callable's are read at each call)."""
    allowed = meta(f).get("choices")
    return tuple(allowed()) if callable(allowed) else allowed


def validate(f: dataclasses.Field, value):
    """A field's value after its choices and its check."""
    m = meta(f)
    allowed = choices_of(f)
    if allowed is not None and not (value is None and f.default is None):
        if m.get("nargs") in ("+", "*") or isinstance(m.get("nargs"), int):
            value = tuple(checks.choices(f.name, value, allowed))
        else:
            checks.choice(f.name, value, allowed)
    if m.get("check") is not None:
        value = m["check"](f.name, value)
    if isinstance(value, list):
        value = tuple(value)
    return value


class Options:
    """Base of every option group: values are checked when built, in help order, then :meth:`check` sees
    them together. ``required_groups`` names the ``exclusive`` groups of which one option must be given."""

    required_groups: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        for f in ordered_fields(type(self)):
            value = getattr(self, f.name)
            new = validate(f, value)
            if new is not value:
                object.__setattr__(self, f.name, new)
        for group in self.required_groups:
            members = [f.name for f in ordered_fields(type(self)) if meta(f).get("exclusive") == group]
            given = [n for n in members if getattr(self, n) not in (None, (), [])]
            if len(given) != 1:
                names = " or ".join(flag_of(f) for f in ordered_fields(type(self)) if f.name in members)
                raise UserError(f"give {names}" + (", not both" if given else ""))
        self.check()

    def check(self) -> None:
        """Checks across fields (``--min-offset`` ≤ ``--max-offset``); a group overrides it."""

    def _set(self, **values) -> None:
        """Normalise a value inside :meth:`check` (the dataclass is frozen)."""
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def record(self) -> dict:
        """The run record's ``arguments``: every field, as :func:`dataclasses.asdict` gives it for plain
        values, with paths and loaded objects (an Encoder, a Task) written as text."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in ordered_fields(cls)]

    @classmethod
    def from_keywords(cls, where: str, keywords: dict, *, extra: bool | Callable[[], Iterable[str]] = False):
        """``cls(**keywords)``, with a one-line error for an unknown keyword or a missing required one. ``extra``
        True returns the unknown ones for the caller; a callable names the plug-ins' options the caller takes
        (an attribution method's ``steps``), and others are refused. Returns ``(options, rest)``."""
        known = {f.name: f for f in fields(cls)}
        rest = {k: v for k, v in keywords.items() if k not in known}
        plugins = list(extra()) if callable(extra) else []
        unknown = sorted(k for k in rest if k not in plugins) if callable(extra) or not extra else []
        if unknown:
            names = ", ".join(unknown)
            theirs = f"; its plug-ins': {', '.join(plugins)}" if plugins else ""
            raise UnknownOption(f"unknown option {', '.join(map(checks.flag, unknown))}: {where}() has no option "
                                f"{names}; its options: {', '.join(cls.names())}{theirs}")
        missing = [n for n, f in known.items() if n not in keywords and f.default is MISSING
                   and f.default_factory is MISSING]
        if missing:
            raise UserError(f"{' and '.join(checks.flag(n) for n in missing)} is required")
        return cls(**{k: v for k, v in keywords.items() if k in known}), rest


def _plain(value):
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "fingerprint") and hasattr(value, "source"):      # a loaded Encoder
        return str(value.source)
    return str(getattr(value, "name", value))


def takes(options: type, *, args: Sequence[str] = (), extra: bool | Callable[[], Iterable[str]] = False):
    """Decorator: ``fn(o: options, **rest)`` becomes ``fn(*args, **keywords)``: the keywords build ``options``
    (checked before any work), ``args`` may be given by position, and ``quiet`` holds for the call only.
    With ``extra`` unknown keywords go to ``fn`` (a task's own options) instead of being refused; a callable
    ``extra`` names the ones that may (the plug-ins' options)."""
    from probekit.core.progress import quiet as quiet_scope

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*positional, **keywords):
            if len(positional) > len(args):
                raise UnknownOption(f"{fn.__name__}() takes {len(args)} positional argument(s) "
                                    f"({', '.join(args)}); give the others by keyword")
            for name, value in zip(args, positional):
                if name in keywords:
                    raise UnknownOption(f"{fn.__name__}() got {name} twice (by position and by keyword)")
                keywords[name] = value
            quiet = bool(keywords.get("quiet", False))
            with quiet_scope(quiet):
                o, rest = options.from_keywords(fn.__name__, keywords, extra=extra)
                with _cluster(getattr(o, "ray", None)):
                    return fn(o, **rest) if extra else fn(o)

        wrapper.__signature__ = _signature(options, args, extra, fn)
        wrapper.options = options
        return wrapper

    return decorate


def _cluster(address):
    """``--ray``: the call runs in a Ray session (:mod:`probekit.core.distributed`); without it, nothing changes."""
    if address is None:
        return contextlib.nullcontext()
    from probekit.core.distributed.session import session

    return session(address)


def _signature(options: type, args: Sequence[str], extra: bool, fn) -> inspect.Signature:
    """What ``help(pk.X)`` and ``inspect.signature`` show: the options as keyword parameters."""
    params = []
    for f in ordered_fields(options):
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if f.name in args else inspect.Parameter.KEYWORD_ONLY
        default = inspect.Parameter.empty if f.default is MISSING else f.default
        params.append((args.index(f.name) if f.name in args else len(args), kind, f.name, default))
    params.sort(key=lambda p: p[0])
    out = [inspect.Parameter(name, kind, default=default) for _, kind, name, default in params]
    if extra:
        out.append(inspect.Parameter("options", inspect.Parameter.VAR_KEYWORD))
    return inspect.Signature(out, return_annotation=fn.__annotations__.get("return", inspect.Signature.empty))


# --- shared checks, in the (name, value) → value shape of a field's check --------------------------------------

def positive(name, value):
    return checks.positive(name, value)


def optional_positive(name, value):
    return checks.positive(name, value, optional=True)


def non_negative(name, value):
    return checks.integer(name, value, minimum=0)


def whole(name, value):
    return checks.integer(name, value)


def above_zero(name, value):
    return checks.number(name, value, above=0)


def optional_above_zero(name, value):
    return None if value is None else checks.number(name, value, above=0)


def max_length(name, value):
    return checks.max_length(value, name)


def device(name, value):
    return checks.device(value, name)


def optional_device(name, value):
    return None if value is None else checks.device(value, name)


def input_file(name, value):
    return checks.input_file(name, value)


def optional_input_file(name, value):
    return None if value is None else checks.input_file(name, value)


# --- shared groups --------------------------------------------------------------------------------------------

def batch_size_option(default: int = 32):
    """``--batch-size`` with a command's own default (the help is the same everywhere)."""
    return option(default, "sentences per forward pass (default %(default)s)", type=int, check=positive)


def ray_option(spread: str):
    """``--ray auto|ADDRESS``: the call runs in a Ray session, ``spread`` (what) over its workers."""
    return option(None, f"run on Ray (needs probekit[ray]): auto (a local cluster) or a cluster ADDRESS; {spread} "
                        f"are spread over its workers (same numbers)", metavar="auto|ADDRESS",
                  check=lambda name, value: None if value is None else (str(value).strip() or None))


@dataclass(frozen=True, kw_only=True)
class ModelOptions(Options):
    """The encoder and how inputs go through it."""

    model: Any = option(None, "Hugging Face model id or local folder (default: the bundled all-MiniLM-L6-v2)")
    batch_size: int = batch_size_option(32)
    max_length: int | None = option(None, "truncate inputs to this many tokens (default: the model's maximum)",
                                    type=int, check=max_length)
    device: str = option("cpu", "torch device (default %(default)s)", check=device)
    ray: str | None = ray_option("extraction and probe grids")


@dataclass(frozen=True, kw_only=True)
class DeviceOptions(Options):
    """Batching and device of a command that loads its model another way than ``--model`` (a saved classifier, a
    fine-tuned model and its base)."""

    batch_size: int = batch_size_option(32)
    device: str = option("cpu", "torch device (default %(default)s)", check=device)


def data_root_option():
    """``--data-root``: where the named data sets (``rt:dev``, ``mc160:test``) are found."""
    return option(None, "folder of the named sets (default $PROBEKIT_DATA, else ~/.local/share/probekit/data)")


@dataclass(frozen=True, kw_only=True)
class CacheOptions(Options):
    """The activation cache (:mod:`probekit.core.cache`) and the precision of what it stores."""

    cache_dir: Any = option(None, "activation cache folder (default: the user's cache directory)")
    no_cache: bool = option(False, "neither read nor write the activation cache")
    dtype: str = option("float16", "precision of stored activations (default %(default)s)", choices=DTYPES)


@dataclass(frozen=True, kw_only=True)
class RunOptions(Options):
    """What every command takes: the seed of everything random and whether progress bars show."""

    seed: int = option(0, "random seed (default %(default)s)", type=int, check=whole)
    quiet: bool = option(False, "no progress bars")


@dataclass(frozen=True, kw_only=True)
class SampleOptions(RunOptions):
    """``--limit N``: a seeded random sample of the examples, in their order — the same meaning in every command
    that reads labelled examples (the first N of a file sorted by class would be one class only)."""

    limit: int | None = option(None, "a seeded random sample of N examples of --data (kept in file order; --seed)",
                               type=int, metavar="N", check=optional_positive)

    def sample(self, items: Sequence) -> list:
        from probekit.core.examples import seeded_sample

        return seeded_sample(list(items), self.limit, self.seed)


FIGURE_FORMATS = ("png", "svg", "pdf")


def output_options(out_help: str, *, required: bool = False, figures: bool = True, name: str = "Output"):
    """The command line's output group (``--out``, ``--overwrite``, ``--figures``): what ``Result.write`` takes,
    so not an argument of the Python function. ``out_help`` says what ``--out`` is for this command."""
    spec = [("out", Any, option(MISSING if required else None, out_help, required=required))]
    spec.append(("overwrite", bool, option(False, "replace an existing non-empty --out folder")))
    if figures:
        spec.append(("figures", tuple, option(("png",), "figure formats, any of png svg pdf (default png)",
                                              nargs="+", choices=FIGURE_FORMATS, metavar="FORMAT")))
    return dataclasses.make_dataclass(name, spec, bases=(Options,), frozen=True, kw_only=True)
