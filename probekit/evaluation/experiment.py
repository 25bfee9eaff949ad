"""The plug-in base class of faithfulness experiments: one class per experiment, saying what it is and needs.

An experiment subclasses :class:`Experiment`: its class attributes say what it is (``name``, ``paper``, whether it
retrains heads, reads the attention source, ranks attribution methods and which way its metrics point, which
experiments must run before it), its options are dataclass fields made with :func:`~probekit.core.options.option`,
and :meth:`Experiment.run` maps a :class:`~.base.Context` to an :class:`~.base.Outcome`. Registered in one line
(``@register`` from ``experiments.py``), it is an ``--experiments`` choice (its options become flags), runs in
``pk.faithfulness`` and gets a section of the summary. Models: Captum's and ferret's self-describing classes.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import ClassVar

from probekit.core.options import Options, option

DIRECTIONS = ("higher", "lower")


def _resamples(name, value):
    from probekit.core import checks
    from probekit.evaluation.stats import RESAMPLES_RANGE

    return checks.integer(name, value, minimum=RESAMPLES_RANGE[0], maximum=RESAMPLES_RANGE[1])


@dataclass(frozen=True, kw_only=True)
class Experiment(Options):
    """One faithfulness experiment. Subclasses set the class attributes, may add options (fields made with
    ``option``; a field another experiment also declares must have its default, as one flag sets both) and
    implement :meth:`run`. Every experiment has ``resamples``, the bootstrap resamples of its intervals."""

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""            # "Authors (year): the question", the summary's heading
    needs_training: ClassVar[bool] = False   # retrains heads on train/dev (skipped, and said, without them)
    needs_source: ClassVar[bool] = True  # reads the attention under test (ctx.source); ERASER does not
    ranks_methods: ClassVar[bool] = False    # fills Outcome.ranking with one row per attribution method
    metrics: ClassVar[dict] = {}         # ranking metric → "higher"/"lower" is more faithful (the first sorts)
    after: ClassVar[tuple] = ()          # experiments that run first when both are asked for (their results feed it)

    resamples: int = option(9999, "bootstrap resamples of every 95%% interval, 1000 to 1000000",
                            type=int, check=_resamples)

    def run(self, ctx: Context) -> Outcome:
        raise NotImplementedError

    @classmethod
    def build(cls, options: dict) -> "Experiment":
        """An instance from the options in ``options`` that are this experiment's (others are ignored)."""
        own = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in own and v is not None})

    @classmethod
    def options(cls) -> dict:
        """option name → default."""
        return {f.name: (None if f.default is MISSING else f.default) for f in fields(cls)}

    @classmethod
    def describe(cls) -> dict:
        """Name, paper, capabilities and options, as ``pk.list_experiments()`` lists them."""
        return {"name": cls.name, "paper": cls.paper, "needs_training": cls.needs_training,
                "needs_source": cls.needs_source, "ranks_methods": cls.ranks_methods, "metrics": dict(cls.metrics),
                "after": list(cls.after), "options": cls.options()}


def as_experiment_class(cls) -> type:
    """``cls`` made a frozen keyword dataclass if its author did not decorate it, then checked: an experiment
    that does not say what it is is refused at registration, so its author sees it at once."""
    if not (isinstance(cls, type) and issubclass(cls, Experiment)):
        raise TypeError(f"{cls!r} is not an Experiment subclass")
    if "__dataclass_fields__" not in cls.__dict__ or not is_dataclass(cls):
        cls = dataclass(frozen=True, kw_only=True)(cls)
    if not cls.name or not isinstance(cls.name, str):
        raise TypeError(f"{cls.__name__}: set the class attribute name")
    if cls.run is Experiment.run:
        raise TypeError(f"{cls.__name__}: implement run(self, ctx) -> Outcome")
    bad = {m: d for m, d in cls.metrics.items() if d not in DIRECTIONS}
    if bad or (cls.ranks_methods and not cls.metrics):
        raise TypeError(f"{cls.__name__}: a method-ranking experiment names its metrics, each 'higher' or 'lower' "
                        f"(got {dict(cls.metrics)})")
    return cls

