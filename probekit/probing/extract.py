"""``pk.extract(corpus=…)``: word-level states (and attention) of a corpus as a folder readable with numpy alone.

The folder is an activation store (the format of :mod:`probekit.core.cache`), built through the activation
cache: an identical rerun makes no model call, and its files are hard-linked (or copied, across file systems)
from the cache entry into the output folder::

    import probekit as pk
    states = pk.extract(corpus="sentences.txt", attention=True)
    states.frame                      # one row per sentence: index, source, n_words, n_units, truncated
    states.store.hidden(6)            # [total_units, hidden] of layer 6, memory-mapped
    states.write("states/")           # the store files + sentences.jsonl, sentences.csv, config.json
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass
from typing import Any

import pandas as pd

from probekit.core.options import CacheOptions, ModelOptions, RunOptions, input_file, option, takes
from probekit.core.result import Result

POOLINGS = ("first", "mean", "last")
ATTENTION_FROM = ("mean", "first")


class ExtractResult(Result):
    """``.frame``: one row per sentence (``index`` 0-based, ``source`` file:line, ``n_words``, ``n_units``
    including the special tokens, ``truncated``); ``.store``: the :class:`~probekit.core.cache.ActivationStore`;
    ``.examples``: the sentences read."""

    command = "extract"
    main_table = "sentences.csv"

    def __init__(self, frame: pd.DataFrame, record: dict, store, examples):
        super().__init__(frame, record)
        self.store, self.examples = store, examples

    def write_files(self, run) -> None:
        from probekit.core.rundir import write_tidy

        for src in sorted(self.store.path.iterdir()):
            if src.is_file():
                _link_or_copy(src, run.file(src.name))
        with open(run.file("sentences.jsonl"), "w", encoding="utf-8") as f:
            for ex in self.examples:
                f.write(json.dumps(ex.words if ex.words is not None else ex.text, ensure_ascii=False) + "\n")
        write_tidy(run, self.frame, self.main_table)

    def files(self) -> list[str]:
        return ["meta.json", "offsets.npy", "hidden_LL.npy", "sentences.csv"]


def _link_or_copy(src, dst) -> None:
    """A hard link (no second copy of large arrays); a copy where links are not possible."""
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        shutil.copyfile(src, dst)


@dataclass(frozen=True, kw_only=True)
class ExtractOptions(ModelOptions, CacheOptions, RunOptions):
    """The options of :func:`extract` (and ``python -m probekit.extract``)."""

    corpus: Any = option(help=".txt (one sentence per line) or .conllu", check=input_file)
    attention: bool = option(False, "also write word-level attention of every layer")
    pooling: str = option("mean", "sub-token pooling for word vectors (default %(default)s)", choices=POOLINGS)
    attention_from: str = option("mean", "attention FROM a split word: mean of its pieces (Clark et al.) or the "
                                         "first piece", choices=ATTENTION_FROM)


@takes(ExtractOptions, args=("corpus",))
def extract(o: ExtractOptions) -> ExtractResult:
    """Word-level hidden states of every layer (and attention with ``attention=True``) for ``corpus``
    (``.txt``, one sentence per line, or ``.conllu``); returns an :class:`ExtractResult`.
    Options: :class:`ExtractOptions`."""
    from probekit.core.cache import get_activations
    from probekit.core.encoder import load_encoder
    from probekit.corpora.sentences import read_sentences
    from probekit.core.rundir import run_record

    corpus, attention, no_cache = o.corpus, o.attention, o.no_cache
    examples = read_sentences(corpus)
    encoder = load_encoder(o.model, attention=attention, device=o.device)
    store = get_activations(encoder, examples, cache_dir=o.cache_dir, use_cache=not no_cache, hidden=True,
                            attention=attention, pooling=o.pooling, attention_from=o.attention_from,
                            max_length=o.max_length, batch_size=o.batch_size, dtype=o.dtype)
    truncated = set(store.meta.get("truncated", []))
    frame = pd.DataFrame({
        "index": range(len(examples)),
        "source": [ex.meta.get("source", "") for ex in examples],
        "n_words": [len(ex.words) if ex.words is not None else None for ex in examples],
        "n_units": [int(store.offsets[i + 1] - store.offsets[i]) for i in range(len(examples))],
        "truncated": [i in truncated for i in range(len(examples))],
    })
    record = run_record("extract", o.record(), encoder=encoder, inputs={"corpus": str(corpus)},
                        counts={"sentences": len(examples), "truncated": len(truncated),
                                "units": int(store.offsets[-1])},
                        task="extract", cache=None if no_cache else str(store.path))
    return ExtractResult(frame, record, store, examples)
