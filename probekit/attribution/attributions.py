"""``Attributions``: the one explanation object every consumer reads (the page, agreement, ERASER, attacks).

Per example: its units (words, or sub-tokens at ``level="token"``), one score array per method over them, the
target explained, the prediction with its probability, the true label when known, and for a method with a
convergence delta (integrated gradients) the delta and whether it was flagged. ``to_frame()`` is the long table
``attributions.csv`` holds; ``html()``, ``ansi()`` and ``figure(i)`` draw it; ``agreement()`` is the Kendall-τ
table; in a notebook the object shows its (first) page inside an ``<iframe srcdoc>``, so the page's CSS and
script stay inside it.

The examples hold their scores as arrays; the long table exists only when asked for. A run folder is written a
piece at a time, so memory does not grow with the table: ``write_csv`` appends ``CHUNK`` examples' rows at a time
(the same bytes as writing the whole frame), and ``pages`` yields the page ``PAGE`` examples at a time
(``attributions.html``, then ``attributions-0002.html`` …, each linking to every other), which also keeps each
page quick to open at 10,000 examples.
"""
from __future__ import annotations

import html as _html
import math
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

FRAME_COLUMNS = ["example", "index", "word", "method", "score", "target", "label", "prediction", "probability",
                 "correct", "delta", "flagged"]
CHUNK = 256       # examples per piece of attributions.csv written at a time
PAGE = 500        # examples per page of attributions.html


@dataclass
class Explanation:
    """One example's attributions."""

    units: list[str]
    scores: dict[str, np.ndarray]          # method → float64 [len(units)]
    target: str
    prediction: str
    probability: float                     # of the prediction
    label: str | None = None               # the true label, when the example has one
    delta: dict[str, float] = field(default_factory=dict)      # method → convergence delta
    flagged: dict[str, bool] = field(default_factory=dict)     # method → |delta| over the tolerance
    word_index: np.ndarray | None = None   # level="token": each sub-token's word

    @property
    def correct(self) -> bool | None:
        return None if self.label is None else self.label == self.prediction


class Attributions:
    """Explanations of ``len(self)`` examples by ``methods`` (in input order; ``self[i]`` is example i)."""

    def __init__(self, examples: list[Explanation], methods: list[str], *, level: str = "word",
                 signed: dict | None = None, labels=None, truncated=None):
        self.examples, self.methods, self.level = list(examples), list(methods), level
        self.signed = dict(signed or {})
        self.labels = list(labels or [])
        self.truncated = list(truncated or [False] * len(self.examples))

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> Explanation:
        return self.examples[i]

    def __repr__(self) -> str:
        return f"Attributions({len(self)} examples, methods: {', '.join(self.methods)}, level={self.level})"

    # --- arrays ---------------------------------------------------------------------------------------------

    @property
    def units(self) -> list[list[str]]:
        return [e.units for e in self.examples]

    def scores(self, method: str) -> list[np.ndarray]:
        """One score array per example for ``method``."""
        return [e.scores[method] for e in self.examples]

    def target_ids(self) -> np.ndarray:
        """The class index each example's scores explain."""
        return np.asarray([self.labels.index(e.target) for e in self.examples], dtype=np.int64)

    def flagged_count(self, method: str = "integrated-gradients") -> int:
        return int(sum(bool(e.flagged.get(method)) for e in self.examples))

    # --- the table ------------------------------------------------------------------------------------------

    def to_frame(self, examples: Iterable[int] | None = None) -> pd.DataFrame:
        """One row per example, unit and method (``attributions.csv``), sorted by example, method, index;
        ``examples``: only those (their numbers kept)."""
        token = self.level == "token"
        rows = []
        for x in range(len(self)) if examples is None else examples:
            e = self.examples[x]
            common = dict(target=e.target, label=e.label, prediction=e.prediction, probability=e.probability,
                          correct=e.correct)
            for m in self.methods:
                delta, flagged = e.delta.get(m), e.flagged.get(m)
                for i, (u, v) in enumerate(zip(e.units, e.scores[m])):
                    row = dict(example=x, index=i, word=u, method=m, score=float(v), delta=delta, flagged=flagged,
                               **common)
                    if token:
                        row["word_index"] = int(e.word_index[i])
                    rows.append(row)
        return pd.DataFrame(rows, columns=FRAME_COLUMNS + (["word_index"] if token else []))

    def write_csv(self, path, chunk: int | None = None) -> None:
        """``attributions.csv``, ``chunk`` examples' rows at a time (``write_tidy``'s format, the same bytes as the
        whole frame written at once)."""
        chunk = chunk or CHUNK
        with open(path, "w", encoding="utf-8", newline="") as f:
            for start in range(0, max(len(self), 1), chunk):
                part = self.to_frame(range(start, min(start + chunk, len(self))))
                part.to_csv(f, index=False, header=start == 0, float_format="%.6g", lineterminator="\n")

    def page_names(self, per_page: int | None = None) -> list[str]:
        pages = max(1, math.ceil(len(self) / (per_page or PAGE)))
        return ["attributions.html"] + [f"attributions-{p:04d}.html" for p in range(2, pages + 1)]

    def pages(self, title: str = "attributions", per_page: int | None = None) -> Iterator[tuple[str, str]]:
        """(file name, page) of every page, ``per_page`` examples each, one at a time; colours use the methods'
        signs over all examples, so a method looks the same on every page."""
        from probekit.attribution.render import page_links, render_html

        per_page = per_page or PAGE
        names, signed = self.page_names(per_page), self._signed_or_none()
        for p, name in enumerate(names):
            start = p * per_page
            part = self.to_frame(range(start, min(start + per_page, len(self))))
            nav = page_links(names, p, len(self), per_page) if len(names) > 1 else ""
            yield name, render_html(part, title=title, signed=signed, nav=nav)

    def agreement(self) -> pd.DataFrame:
        """Mean Kendall τ between every pair of methods (``agreement.py``), from the arrays."""
        from probekit.attribution.agreement import agreement_from_scores

        return agreement_from_scores([e.scores for e in self.examples], self.methods, self.signed)

    # --- drawings -------------------------------------------------------------------------------------------

    def _signed(self) -> set:
        return {m for m in self.methods if self.signed.get(m)}

    def html(self, title: str = "attributions") -> str:
        """The offline coloured-text page (``render.render_html``)."""
        from probekit.attribution.render import render_html

        return render_html(self.to_frame(), title=title, signed=self._signed_or_none())

    def ansi(self, color: bool | None = None) -> str:
        from probekit.attribution.render import render_ansi

        return render_ansi(self.to_frame(), color=color, signed=self._signed_or_none())

    def figure(self, example: int = 0):
        """A matplotlib Figure of example ``example``'s units under every method."""
        from probekit.attribution.render import example_figure

        return example_figure(self.to_frame([example]), example, signed=self._signed_or_none())

    def _signed_or_none(self):
        # methods registered as signed, plus any with a negative score here (render's rule for frames)
        neg = {m for m in self.methods if any(np.nanmin(s, initial=0.0) < 0 for s in self.scores(m) if len(s))}
        return self._signed() | neg

    def _repr_html_(self) -> str:
        return iframe(next(self.pages())[1])


def iframe(page: str, height: int = 520) -> str:
    """``page`` isolated in an ``<iframe srcdoc>``: its CSS and script cannot touch the notebook, nor the
    notebook's the page (every ``&`` and ``"`` of the page escaped for the attribute)."""
    return (f'<iframe srcdoc="{_html.escape(page, quote=True)}" style="width:100%;height:{int(height)}px;'
            f'border:1px solid #ddd" sandbox="allow-scripts"></iframe>')
