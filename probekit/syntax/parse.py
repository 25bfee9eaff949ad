"""``pk.parse(...)``: attention-only parsing probes on a UD treebank (Clark et al. 2019 Table 3).

Attention of the training and development treebanks is extracted once into the activation cache (word
level, every layer and head); probes train on the training file and report UAS on the development file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probekit.core import checks
from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.core.options import (CacheOptions, ModelOptions, RunOptions, above_zero, input_file, option,
                            optional_positive, positive, takes)
from probekit.corpora.conllu import strip_subtype
from probekit.core.result import Result, tidy
from probekit.syntax.parsing_probes import LABELS, PROBES, Tree


class StoredAttention:
    """Sentence i of a split (``indices[i]`` in its store): word-level attention [L, H, U, U] and special mask."""

    def __init__(self, store, indices: list[int]):
        self.store, self.indices = store, indices

    def __call__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        k = self.indices[i]
        return self.store.sentence_attention(k), self.store.special[self.store.rows(k)]


def trees_for(examples: list[Example], keep: list[int], vocab: dict[str, int], lowercase: bool) -> list[Tree]:
    from probekit.syntax.word_vectors import word_rows

    out = []
    for k in keep:
        ex = examples[k]
        out.append(Tree(heads=np.asarray(ex.meta["heads"], dtype=np.int64),
                        punct=np.array([strip_subtype(r) == "punct" for r in ex.meta["deprels"]]),
                        word_ids=word_rows(ex.words, vocab, lowercase)))
    return out


class ParseResult(Result):
    """What :func:`parse` returns.

    ``frame``: results.csv (UAS of every probe on the dev treebank; no layer/head, they use every head);
    ``weights``: the Attn probe's weight per layer × head × direction, largest first (attn_weights.csv;
    ``None`` without the ``attn`` probe); ``table``: the readable Table 3 (UAS in %).
    """

    command = "parse"

    def __init__(self, frame, record, *, weights: pd.DataFrame | None, table: pd.DataFrame, notes: dict):
        super().__init__(frame, record)
        self.weights, self.table, self._notes = weights, table, notes

    def markdown(self) -> str:
        from probekit.core.rundir import markdown_table

        n, c = self._notes, self.record["counts"]
        md = [f"# Attention-only parsing probes: {self.model}\n",
              f"Trained on {n['train']} ({c['train']} sentences, {n['epochs']} epoch(s), Adam lr "
              f"{n['lr']}, one sentence per step), UAS (%) on {n['dev']} ({c['dev']} sentences, "
              "punctuation excluded). Clark et al. 2019 Table 3 shape.\n",
              markdown_table(self.table, floatfmt=".1f"),
              f"\nWord vectors: {n['vectors']}. ROOT alignment: "
              f"{'misaligned as in the original code' if n['root_misaligned'] else 'correct'}.\n",
              f"\nSentences longer than {n['limit']} tokens left out: {c['too_long']['train']} train, "
              f"{c['too_long']['dev']} dev; malformed sentences skipped: {c['malformed_skipped']}.\n"]
        timing = self.record["seconds_per_epoch"]
        if timing:
            md.append("\nTraining time per epoch: " + ", ".join(
                f"{LABELS[k]} {np.mean(v):.1f} s" for k, v in timing.items()) + ".\n")
        if self.weights is not None:
            md.append("\nLargest Attn probe weights (attn_weights.csv has all):\n\n"
                      + markdown_table(self.weights.head(10), floatfmt=".3f"))
        if n["problems"]:
            md.append("\nSkipped sentences:\n\n" + "\n".join(f"- {p}" for p in n["problems"][:50]) + "\n")
        return "\n".join(md)

    def write_files(self, run) -> None:
        from probekit.core.rundir import write_tidy

        write_tidy(run, self.frame)
        if self.weights is not None:
            write_tidy(run, self.weights, "attn_weights.csv")
        run.write_text("results.md", self.markdown())

    def files(self) -> list[str]:
        return ["results.csv", "results.md"] + (["attn_weights.csv"] if self.weights is not None else [])


def _probe_list(probes) -> list[str]:
    """A list, or the command line's comma list ``"attn,attn-words"``."""
    if isinstance(probes, str):
        probes = [p.strip() for p in probes.split(",") if p.strip()]
    return checks.choices("probes", probes, PROBES)


def _comma_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _word_vectors(name, value):
    if value != "model":
        checks.input_file(name, value)
    return value


@dataclass(frozen=True, kw_only=True)
class ParseOptions(ModelOptions, CacheOptions, RunOptions):
    """The options of :func:`parse` (and ``python -m probekit.parse``)."""

    train: Any = option(help="training treebank (CoNLL-U)", check=input_file)
    dev: Any = option(help="evaluation treebank (CoNLL-U)", check=input_file)
    probes: tuple = option(PROBES, f"comma list of {', '.join(PROBES)} (default: all)", type=_comma_list,
                           check=lambda n, v: _probe_list(v))
    epochs: int = option(1, "passes over the training set (default %(default)s, as in Clark's notebook)",
                         check=positive)
    lr: float = option(0.002, "Adam learning rate (default %(default)s)", check=above_zero)
    word_vectors: str = option("model", "'model' (the encoder's input embeddings, mean over pieces) or a GloVe text "
                                        "file", check=_word_vectors)
    root_misaligned: bool = option(False, "reproduce the original Attn+GloVe code's ROOT misalignment (Clark issue "
                                          "#17)")
    skip_bad: bool = option(False, "skip malformed sentences (counted) instead of stopping")
    limit: int | None = option(None, "use only the first N sentences of each file", type=int,
                               check=optional_positive)


@takes(ParseOptions, args=("train", "dev"))
def parse(o: ParseOptions) -> ParseResult:
    """Train attention-only parsing probes on ``train`` (CoNLL-U) and report UAS on ``dev``.

    ``probes``: any of right-branching, distance-words, attn, attn-words (default all). ``word_vectors``:
    ``"model"`` (the encoder's input embeddings, mean over pieces) or a GloVe text file. ``model``: a Hugging
    Face id, a local folder or an Encoder loaded with attention. Options: :class:`ParseOptions`. Returns a
    :class:`ParseResult`; ``.write(out)`` writes what ``python -m probekit.parse`` writes (results.csv,
    attn_weights.csv, results.md, config.json).
    """
    import torch

    from probekit.core.cache import get_activations
    from probekit.core.progress import progress
    from probekit.core.rundir import run_record
    from probekit.syntax.common import model_limit, open_encoder, read_treebank
    from probekit.syntax.parsing_probes import (ParsingProbe, evaluate_probe, evaluate_right_branching, top_weights,
                                                train_probe)
    from probekit.syntax.word_vectors import glove_vectors, model_vectors, vocabulary

    train, dev, probes, epochs, lr, seed = o.train, o.dev, o.probes, o.epochs, o.lr, o.seed
    word_vectors, skip_bad, limit, cache_dir = o.word_vectors, o.skip_bad, o.limit, o.cache_dir
    batch_size = o.batch_size
    glove = word_vectors != "model"
    torch.manual_seed(seed)
    problems: list[str] = []
    examples = {"train": read_treebank(train, skip_bad=skip_bad, limit=limit, problems=problems),
                "dev": read_treebank(dev, skip_bad=skip_bad, limit=limit, problems=problems)}
    encoder = open_encoder(o.model, o.device)
    tokens = model_limit(encoder, o.max_length)
    need_attention = any(p in ("attn", "attn-words") for p in probes)
    stores, keep, too_long = {}, {}, {}
    for split, ex in examples.items():
        if need_attention:
            stores[split] = get_activations(encoder, ex, cache_dir=cache_dir, use_cache=not o.no_cache,
                                            hidden=False, attention=True, max_length=tokens,
                                            batch_size=batch_size, dtype=o.dtype)
            cut = set(stores[split].meta["truncated"])
        else:
            from probekit.core.extraction import encode_examples

            cut = {e.index for e in encode_examples(encoder, ex, max_length=tokens, warn=False) if e.truncated}
        keep[split] = [i for i in range(len(ex)) if i not in cut]
        too_long[split] = len(cut)
    if not keep["train"] or not keep["dev"]:
        raise UserError(f"every sentence of a treebank is longer than {tokens} tokens")

    vocab = vocabulary((w for ex in examples.values() for e in ex for w in e.words), lowercase=glove)
    vectors, vec_note = None, "none"
    if any(p in ("attn-words", "distance-words") for p in probes):
        if glove:
            vectors, found = glove_vectors(word_vectors, vocab)
            vec_note = f"GloVe file {word_vectors} ({found} of {len(vocab)} word types found)"
        else:
            vectors = model_vectors(encoder, vocab)
            vec_note = f"{encoder.name} input embeddings (mean over a word's pieces), {vectors.shape[1]} dims"
    trees = {s: trees_for(ex, keep[s], vocab, glove) for s, ex in examples.items()}
    att = {s: StoredAttention(stores[s], keep[s]) for s in stores}
    n_maps = 2 * encoder.num_layers * encoder.num_heads

    rows, timing, weights = [], {}, None
    for kind in probes:
        if kind == "right-branching":
            uas = evaluate_right_branching(trees["dev"])
        else:
            torch.manual_seed(seed)
            probe = ParsingProbe(kind, n_maps, word_dim=0 if vectors is None else vectors.shape[1],
                                 root_misaligned=o.root_misaligned)
            bar = progress(total=epochs * len(trees["train"]), desc=f"training {kind}", unit="sent")
            timing[kind] = train_probe(probe, trees["train"], att.get("train"), vectors, epochs=epochs, lr=lr,
                                       progress=bar)
            bar.close()
            uas = evaluate_probe(probe, trees["dev"], att.get("dev"), vectors)
            if kind == "attn":
                weights = pd.DataFrame(top_weights(probe, encoder.num_layers, encoder.num_heads))
        rows.append({"task": "parse", "model": encoder.name, "probe": kind, "split": Path(dev).stem,
                     "metric": "uas", "value": uas,
                     "n_words": sum(int((~t.punct).sum()) for t in trees["dev"]),
                     "epochs": 0 if kind == "right-branching" else epochs,
                     "seconds_per_epoch": float(np.mean(timing[kind])) if kind in timing else np.nan})
    frame = tidy(pd.DataFrame(rows), task="parse", model=encoder.name, keys=["probe"])
    table = pd.DataFrame({"model": [LABELS[k] for k in frame["probe"]], "UAS": 100 * frame["value"]})
    counts = {"train": len(trees["train"]), "dev": len(trees["dev"]), "too_long": too_long,
              "malformed_skipped": len(problems)}
    record = run_record("parse", o.record(), encoder=encoder, inputs={"train": str(train), "dev": str(dev)},
                        counts=counts, max_tokens=tokens, word_vectors=vec_note, seconds_per_epoch=timing,
                        skipped=problems)
    notes = {"train": str(train), "dev": str(dev), "epochs": epochs, "lr": lr, "vectors": vec_note,
             "root_misaligned": o.root_misaligned, "limit": tokens, "problems": problems}
    return ParseResult(frame, record, weights=weights, table=table, notes=notes)
