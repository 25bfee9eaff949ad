"""The faithfulness experiments, registered by name: ``@register`` on an :class:`~.base.Experiment` subclass.

The registry is what ``--experiments`` offers (in registration order, the run and report order), what
``pk.faithfulness`` runs when none is named, and where every experiment option's default lives. The built-in
experiments below are classes of their own (paper, options, capabilities); each one's code is imported when it
runs, so ``--experiments tau`` never imports the adversary's.
"""
from __future__ import annotations

import importlib
from dataclasses import MISSING, fields
from typing import Sequence

from probekit.core import checks
from probekit.core.errors import UserError
from probekit.core.options import above_zero, non_negative, option, positive
from probekit.core.plugins import registry as _registry
from probekit.evaluation.experiment import Experiment, as_experiment_class

EXPERIMENTS: dict[str, type] = _registry("faithfulness experiments")
_COMMON = tuple(f.name for f in fields(Experiment))


def register(cls: type) -> type:
    """Add the experiment class ``cls`` under ``cls.name`` (a later registration replaces an earlier one); a
    class decorator, or called: ``register(MyExperiment)``. An option it shares with another experiment must
    have the same default (one flag sets both)."""
    cls = as_experiment_class(cls)
    for f in fields(cls):
        for other in EXPERIMENTS.values():
            if other.name == cls.name:
                continue
            theirs = next((g for g in fields(other) if g.name == f.name), None)
            if theirs is not None and theirs.default != f.default:
                raise TypeError(f"{cls.__name__}: option {f.name} defaults to {f.default!r}, but experiment "
                                f"{other.name!r} declares it with {theirs.default!r}")
    EXPERIMENTS[cls.name] = cls
    return cls


register_experiment = register


def names() -> list[str]:
    return list(EXPERIMENTS)


def get(name: str) -> type:
    return EXPERIMENTS[name]


def option_fields() -> dict:
    """option name → its dataclass field (the first experiment's that declares it), over every experiment; the
    options every experiment has (``resamples``) last."""
    out: dict = {}
    for cls in [*EXPERIMENTS.values(), Experiment]:
        for f in fields(cls):
            out.setdefault(f.name, f)
    return {**{n: f for n, f in out.items() if n not in _COMMON}, **{n: out[n] for n in _COMMON}}


def defaults() -> dict:
    """Every experiment option's default (Jain & Wallace's, Serrano & Smith's, Wiegreffe & Pinter's values)."""
    return {n: (None if f.default is MISSING else f.default) for n, f in option_fields().items()}


def in_order(selected: Sequence[str]) -> list[str]:
    """``selected`` in the order given, each experiment moved after the ones it names in ``after`` (the
    diagnostic imposes the end-to-end adversary's α, so it runs after it when both are asked for)."""
    chosen, out = list(dict.fromkeys(selected)), []

    def visit(name, seen=()):
        if name in out:
            return
        if name in seen:
            raise UserError(f"--experiments: {' → '.join([*seen, name])} wait for each other")
        for first in EXPERIMENTS[name].after:
            if first in chosen:
                visit(first, (*seen, name))
        out.append(name)

    for name in chosen:
        visit(name)
    return out


def list_experiments():
    """Every registered experiment with its paper, capabilities and options, one row each (a pandas DataFrame)."""
    import pandas as pd

    return pd.DataFrame([cls.describe() for cls in EXPERIMENTS.values()])


# --- the built-in experiments ---------------------------------------------------------------------------------

def _lambdas(name, value):
    return tuple(checks.number(name, v, minimum=0) for v in value)


def _percentages(name, value):
    ks = tuple(checks.number(name, k, above=0) for k in value)
    if any(k > 100 for k in ks):
        raise UserError(f"{checks.flag(name)} are percentages of the words, 0 < k ≤ 100 (got {max(ks):g})")
    return ks


def _epochs():
    return option(20, "epochs of every retrained head (classify's frozen default; the paper: 8 epochs of its "
                      "BiLSTM)", check=positive)


def _accept():
    return option(0.05, "adversary: reject candidates with TVD above this", check=above_zero)


class _Builtin(Experiment):
    """A built-in experiment: ``run`` calls ``function`` (``"module:name"`` in probekit.evaluation)."""

    function = ""

    def run(self, ctx: Context) -> Outcome:
        module, fn = self.function.split(":")
        return getattr(importlib.import_module(module), fn)(ctx)


@register
class Tau(_Builtin):
    name = "tau"
    paper = "Jain & Wallace (2019): do attention weights agree with other importance measures?"
    function = "probekit.evaluation.jain_wallace.correlation:run"  # Kendall τ, attention vs gradient / leave-one-out


@register
class Permutation(_Builtin):
    name = "permutation"
    paper = "Jain & Wallace (2019): does shuffling the attention change the output?"
    function = "probekit.evaluation.jain_wallace.permutation:run"            # median TVD under shuffled α (Fig. 10)
    permutations: int = option(100, "shuffles of the attention per example", check=positive)


@register
class Adversary(_Builtin):
    name = "adversary"
    paper = "Jain & Wallace (2019): is there a very different attention with the same output?"
    function = "probekit.evaluation.jain_wallace.adversary:run"  # ε-max JSD adversarial attention (Fig. 11, 12)
    epsilon: float = option(0.01, "adversary: TVD allowed by the hinge (J&W ε_opt, on the TVD scale)",
                            check=above_zero)
    accept: float = _accept()
    candidates: int = option(5, "adversary: attention vectors per example", check=positive)
    adversary_steps: int = option(500, "adversary: Adam steps (amsgrad)", check=positive)
    adversary_lr: float = option(0.01, "adversary: Adam learning rate", check=above_zero, cli=False)
    hinge: float = option(500.0, "adversary: weight of ReLU(TVD − ε)", check=above_zero, cli=False)


@register
class SingleWeight(_Builtin):
    name = "single-weight"
    paper = "Serrano & Smith (2019): erasing the single most attended word"
    function = "probekit.evaluation.serrano_smith.erasure:run_single"  # zero the top α vs a random one (Fig. 4, 5)


@register
class Sets(_Builtin):
    name = "sets"
    paper = "Serrano & Smith (2019): how much must be erased before the decision flips?"
    function = "probekit.evaluation.serrano_smith.sets:run_sets"              # fraction removed before a flip (Fig. 8)
    random_draws: int = option(5, "sets: random erasure orders", check=positive)


@register
class Uniform(_Builtin):
    name = "uniform"
    paper = "Wiegreffe & Pinter (2019): is attention needed for this task?"
    function = "probekit.evaluation.wiegreffe_pinter.retrain:run_uniform"        # Table 2
    needs_training = True
    epochs: int = _epochs()


@register
class Seeds(_Builtin):
    name = "seeds"
    paper = "Wiegreffe & Pinter (2019): how different is different? (seed variance)"
    function = "probekit.evaluation.wiegreffe_pinter.retrain:run_seeds"          # Fig. 2
    needs_training = True
    seeds: int = option(5, "seed variance: retrained seeds (the paper used 8)", check=positive)
    epochs: int = _epochs()


@register
class EndToEndAdversary(_Builtin):
    name = "e2e-adversary"
    paper = "Wiegreffe & Pinter (2019): an adversary trained end to end"
    function = "probekit.evaluation.wiegreffe_pinter.adversary:run"              # Fig. 4
    needs_training = True
    lambdas: tuple = option((0.0001, 0.001, 0.01, 0.1, 1.0), "end-to-end adversary: KL weights λ on their scale",
                            type=float, nargs="+", check=_lambdas)
    adversary_epochs: int = option(80, "end-to-end adversary: most epochs (Wiegreffe & Pinter's)", check=positive)
    patience: int = option(10, "end-to-end adversary: epochs without a lower training loss before stopping",
                           check=positive, cli=False)
    accept: float = _accept()
    epochs: int = _epochs()


@register
class Diagnostic(_Builtin):
    name = "diagnostic"
    paper = "Wiegreffe & Pinter (2019): imposed weights in a non-contextual MLP"
    function = "probekit.evaluation.wiegreffe_pinter.diagnostic:run"  # Table 3; imposes the end-to-end adversary's α too
    needs_training = True
    after = ("e2e-adversary",)
    epochs: int = _epochs()


def _eraser_metrics() -> dict:
    from probekit.evaluation.eraser.metrics import INFO

    return {name: "higher" if higher else "lower" for name, (_, higher, _) in INFO.items()}


@register
class Eraser(_Builtin):
    name = "eraser"
    paper = "DeYoung et al. (2020): ERASER comprehensiveness, sufficiency and plausibility"
    function = "probekit.evaluation.eraser.experiment:run"
    needs_source = False                       # ranks attribution methods on the classifier itself
    ranks_methods = True
    metrics = _eraser_metrics()
    ks: tuple = option((1, 5, 10, 20, 50), "ERASER: percentages of words removed or kept", type=float, nargs="+",
                       check=_percentages)
    flip_max_words: int = option(0, "ERASER decision flips: remove at most this many words one by one (default: "
                                    "all)", check=non_negative)
