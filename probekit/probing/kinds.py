"""The probe kinds by name: the built-in probes' modules, imported so their classes are registered, and the
look-ups the commands use (``--probes`` choices, a fresh probe of a kind, ``pk.list_probes()``).

Built in: ``linear`` (:class:`~.linear.LinearProbe`, L-BFGS, L2 chosen on the training split), ``mlp``
(:class:`~.selection.MLPProbe`, Adam), ``logreg`` (:class:`~.logreg.LogRegProbe`, scikit-learn) over sentences;
``distance`` and ``depth`` (:class:`~.structural.StructuralProbe`, Hewitt & Manning) over trees; ``edge``
(:class:`~.edges.EdgeProbeClassifier`, Tenney et al.) over spans. A user's probe joins by ``@register`` (:mod:`.base`).
"""
from __future__ import annotations

from probekit.probing import edge_probe as edges, linear, logreg, selection, structural_probes as structural  # noqa: F401 (they register the built-in probes)
from probekit.probing.base import PROBES, Probe

#: the order probes are listed in (a user's follow, in registration order)
ORDER = ("linear", "mlp", "logreg", "distance", "depth", "edge")


def _ordered() -> list[str]:
    rank = {n: i for i, n in enumerate(ORDER)}
    return sorted(PROBES, key=lambda n: rank.get(n, len(ORDER)))


def probe_names(input: str | None = None) -> list[str]:
    """Registered probe kinds (of one ``input``)."""
    return [n for n in _ordered() if input is None or PROBES[n].input == input]


def get_probe(name: str) -> type:
    return PROBES[name]


def make(name: str, **options) -> Probe:
    """A fresh probe of kind ``name`` from the ``options`` its ``__init__`` takes (others are ignored, so one set
    of command options — hidden size, epochs, seed — serves every kind)."""
    cls = get_probe(name)
    own = set(cls._get_param_names())
    return cls(**{k: v for k, v in options.items() if k in own})


def list_probes():
    """Every registered probe with its input, paper and hyperparameters, one row each (a pandas DataFrame)."""
    import pandas as pd

    return pd.DataFrame([PROBES[n].describe() for n in _ordered()])
