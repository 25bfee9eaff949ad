"""Which words mattered to a classifier's decision: word attributions, their agreement, coloured-text pages.

``registry`` names the methods (pooling weights, gradients, integrated gradients, occlusion, attention);
``words`` turns sub-token scores into word scores; ``attribute`` runs them over texts or a data file;
``render`` draws any attribution frame as an offline HTML page, ANSI text or a figure.

The built-in methods register themselves when this package is imported (``registry`` imports none of them,
so there is no import cycle).
"""
from . import internal, gradients, occlusion  # noqa: E402,F401 (registration, in this order)
