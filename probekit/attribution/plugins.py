"""Load a user's attribution methods from a Python file of their own (:mod:`probekit.core.plugins`, which loads
any family's plug-ins: methods, experiments, attacks, probes, pooling heads).

The file defines an :class:`~.base.AttributionMethod` subclass and registers it (``@register``); importing it is
all it takes. ``load_plugin(path)`` (``pk.load_plugin``; ``--plugin FILE`` on the attribute command) imports the
file by path, once per path, and reports what it registered.
"""
from __future__ import annotations

from probekit.core.plugins import _LOADED, load_plugin  # noqa: F401 (this family's entry point)
