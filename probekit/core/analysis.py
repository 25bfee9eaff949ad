"""One extraction pass, many analyses: the interface every corpus accumulator shares, and the loop that feeds them.

An :class:`Analysis` says what it needs from the hook layer (hidden states, attention, word or token level),
takes one example's :class:`~probekit.core.extraction.Activations` at a time in :meth:`Analysis.update` and
gives its table in :meth:`Analysis.result`. :func:`analyze` runs the model once for all of them::

    stats, deps = pk.analyze(encoder, examples, [pk.AttentionStats(encoder, word_level=True),
                                                 pk.DependencyHeads(encoder)])
"""
from __future__ import annotations

from typing import Iterator, Sequence

from probekit.core.encoder import Encoder
from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.core.extraction import Activations, extract


class Analysis:
    """Base class of corpus accumulators. Subclasses set the class attributes and define the two methods."""

    #: what the extraction pass must give this analysis
    needs_hidden: bool = False
    needs_attention: bool = True
    level: str = "word"                 # "word" or "token"

    def update(self, activations: Activations, example: Example) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def result(self):  # pragma: no cover - abstract
        raise NotImplementedError


def extract_activations(encoder: Encoder, examples: Sequence[Example], *, hidden: bool = True,
                        attention: bool = False, level: str = "word", pooling: str = "mean",
                        attention_from: str = "mean", batch_size: int = 32, max_length: int | None = None,
                        segment_ids: str = "standard", window: int | None = None) -> Iterator[Activations]:
    """Yield one :class:`Activations` per example, **in input order**.

    The examples are taken ``window`` at a time (default 16 batches), sorted by length inside the window for
    little padding, and handed back in order, so memory holds one window of activations, never the corpus.
    ``hidden[l]`` is layer l (0 = embeddings) and ``attention[l]`` layer l's maps (1…L).
    """
    from probekit.core import checks

    checks.positive("batch_size", batch_size)
    checks.max_length(max_length)
    checks.choice("level", level, ("word", "token"))
    if attention and not encoder.attention:
        raise UserError("this encoder was loaded without attention maps: load_encoder(..., attention=True)")
    window = checks.positive("window", window, optional=True) or 16 * batch_size
    examples = list(examples)
    for start in range(0, len(examples), window):
        chunk = examples[start:start + window]
        held: dict[int, Activations] = {}
        for act in extract(encoder, chunk, hidden=hidden, attention=attention, level=level, pooling=pooling,
                           attention_from=attention_from, batch_size=batch_size, max_length=max_length,
                           segment_ids=segment_ids, warn=True):
            act.index += start
            held[act.index] = act
        for i in range(start, start + len(chunk)):
            yield held.pop(i)


def analyze(encoder: Encoder, examples: Sequence[Example], analyses: Sequence[Analysis], *,
            batch_size: int = 32, max_length: int | None = None, pooling: str = "mean",
            attention_from: str = "mean", segment_ids: str = "standard", desc: str = "analyzing") -> list:
    """Run the model once over ``examples`` and feed every analysis; returns their ``result()`` in order."""
    from probekit.core import checks

    analyses = list(analyses)
    if not analyses:
        raise UserError("analyze() needs at least one analysis")
    levels = {a.level for a in analyses}
    if len(levels) > 1:
        raise UserError(f"analyses at different levels ({', '.join(sorted(levels))}) need separate passes")
    checks.positive("batch_size", batch_size)
    checks.max_length(max_length)
    hidden = any(a.needs_hidden for a in analyses)
    attention = any(a.needs_attention for a in analyses)
    if attention and not encoder.attention:
        raise UserError("these analyses read attention: load the encoder with load_encoder(..., attention=True)")
    examples = list(examples)
    for act in extract(encoder, examples, hidden=hidden, attention=attention, level=levels.pop(),
                       pooling=pooling, attention_from=attention_from, batch_size=batch_size,
                       max_length=max_length, segment_ids=segment_ids, desc=desc):
        for a in analyses:
            a.update(act, examples[act.index])
    return [a.result() for a in analyses]
