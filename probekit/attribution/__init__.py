"""Which words mattered to a classifier's decision: word attributions, their agreement, coloured-text pages.

``base`` is the plug-in class every method subclasses (name, capabilities, what it needs from the forward pass,
its own options); ``registry`` names the methods; ``state`` computes once per batch what they need; ``explain``
runs them into an ``Attributions`` object (``attributions``); ``attribute`` is ``pk.attribute``; ``words`` turns
sub-token scores into word scores; ``render`` draws any attribution frame as an offline HTML page, ANSI text or a
figure; ``plugins`` loads a user's methods from a file.

The built-in methods register themselves when this package is imported (``registry`` imports none of them,
so there is no import cycle).
"""
from probekit.attribution import internal, gradients, occlusion, captum_gradients, sampling, perturbation  # noqa: E402,F401 (registration, in this order)
from probekit.attribution.base import AttributionMethod, option  # noqa: E402,F401 (what a plug-in file imports)
from probekit.attribution.registry import register  # noqa: E402,F401
