"""Figures a reader looks at: nothing covers an axis label, epochs are whole numbers."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from probekit.classifiers.report import learning_curve_figure  # noqa: E402


def test_learning_curve_legend_clears_both_axis_labels_and_epochs_are_integers():
    h = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.7, 0.5, 0.4], "dev_loss": [0.69, 0.55, 0.5],
                      "dev_accuracy": [0.6, 0.7, 0.72], "best": [False, False, True]})
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = learning_curve_figure(h, "model")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    ax, ax2 = fig.axes
    for label in (ax.yaxis.label, ax2.yaxis.label, ax.xaxis.label):
        assert not legend.overlaps(label.get_window_extent(renderer)), label.get_text()
    assert not legend.overlaps(ax.get_window_extent(renderer))
    ticks = [t for t in ax.get_xticks() if h["epoch"].min() - 0.5 <= t <= h["epoch"].max() + 0.5]
    assert ticks == [1, 2, 3]
