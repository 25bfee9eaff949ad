"""``pk.attribute``: which words mattered to a classifier's decisions, by every method that applies.

One call runs each method over the examples in batches (sorted by length, reported in input order), turns
sub-token scores into word scores (``words.py``) and returns an :class:`AttributionResult`: ``.frame`` (one row
per example, word and method: ``attributions.csv``), ``.agreement`` (mean Kendall τ between every pair of
methods), and ``write(out)`` for the run folder (CSV tables, the coloured-text page ``attributions.html`` and a
figure of the first example).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..core.progress import quiet_option
from ..core import checks
from ..core.errors import UserError
from ..core.progress import postfix, progress
from ..report.result import Result
from ..report.rundir import RunDir, run_record, write_tidy
from . import registry
from .agreement import agreement_table
from .words import model_inputs, spread_to_tokens, to_words, token_positions

LEVELS = ("word", "token")
FRAME_COLUMNS = ["example", "index", "word", "method", "score", "target", "label", "prediction", "probability",
                 "correct", "delta", "flagged"]


class AttributionResult(Result):
    command = "attribute"
    main_table = "attributions.csv"

    def __init__(self, frame: pd.DataFrame, agreement: pd.DataFrame, record: dict):
        super().__init__(frame, record)
        self.agreement = agreement

    def html(self, **kwargs) -> str:
        from .render import render_html

        return render_html(self.frame, **kwargs)

    def ansi(self, color: bool | None = None) -> str:
        from .render import render_ansi

        return render_ansi(self.frame, color=color)

    def figure(self, example: int = 0):
        from .render import example_figure

        return example_figure(self.frame, example)

    def write_files(self, run: RunDir) -> None:
        write_tidy(run, self.frame, "attributions.csv")
        write_tidy(run, self.agreement, "agreement.csv")
        title = f"attributions — {self.record.get('classifier', {}).get('path') or self.model}"
        run.write_text("attributions.html", self.html(title=title))
        if len(self.frame):
            run.save_figure(self.figure(int(self.frame["example"].iloc[0])), "example")

    def files(self) -> list[str]:
        return ["attributions.csv", "agreement.csv", "attributions.html"]


def _load(classifier):
    if isinstance(classifier, (str, os.PathLike)):
        from ..classify.saved import load_classifier

        return load_classifier(classifier), str(classifier)
    if not isinstance(classifier, torch.nn.Module) or not hasattr(classifier, "encode"):
        raise UserError(f"--classifier must be a classifier folder or a loaded Classifier (got "
                        f"{type(classifier).__name__})")
    return classifier, None


def _examples(texts, data, limit, seed=0):
    from ..core.examples import Example, seeded_sample

    if (texts is None) == (data is None):
        raise UserError("give the input with --text (repeatable) or --data FILE, not both")
    if texts is not None:
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise UserError("--text: no text given")
        for i, t in enumerate(texts, 1):
            if not isinstance(t, str) or not t.strip():
                raise UserError(f"--text number {i} is empty")
        examples = [Example(words=None, text=t, meta={"source": f"--text {i}"}) for i, t in enumerate(texts, 1)]
    elif isinstance(data, (list, tuple)):            # Examples from Python: labels are optional here
        examples = list(data)
        bad = next((i for i, ex in enumerate(examples) if not isinstance(ex, Example)), None)
        if bad is not None:
            raise UserError(f"data[{bad}] is not an Example")
    else:
        from ..classify.datasets import load_split

        examples = load_split(data, what="--data")
    return seeded_sample(examples, limit, seed)


def _target_index(classifier, target) -> int | None:
    if target is None:
        return None
    labels = [str(l) for l in classifier.labels]
    if str(target) not in labels:
        raise UserError(f"--target {target!r} is not one of the classifier's labels: {', '.join(labels)}")
    return labels.index(str(target))


def _word_layout(classifier, batch, examples):
    """(word index of every token [B, T] as numpy, words of each example) whatever the classifier's level."""
    if classifier.level == "word":
        return batch["word_ids"].cpu().numpy(), [list(w) for w in batch["words"]]
    from ..classify.model import unit_layout
    from ..core.extraction import encode_examples

    source = classifier.source
    encoded = encode_examples(source, examples, max_length=classifier.max_length, level="word", warn=False)
    T = batch["input_ids"].shape[1]
    wid = np.full((len(encoded), T), -1, dtype=np.int64)
    words = []
    for b, e in enumerate(encoded):
        tw, names = unit_layout(e.alignment, "word")
        wid[b, :len(tw)] = tw
        words.append(names)
    return wid, words


def _head_to_tokens(scores: torch.Tensor, batch) -> torch.Tensor:
    """Scores over a token-level head's units (ranks of the real tokens) → [B, T] over token positions."""
    wid = batch["word_ids"].to(scores.device)
    gathered = scores.gather(1, wid.clamp_min(0))
    return torch.where(wid >= 0, gathered, torch.zeros_like(gathered))


@quiet_option
def attribute(classifier, texts: Sequence[str] | str | None = None, *, data=None,
              methods: Sequence[str] | None = None, target: str | None = None, steps: int = 50,
              batch_size: int = 16, limit: int | None = None, level: str = "word", seed: int = 0,
              retry_steps: int | None = None, quiet: bool = False) -> AttributionResult:
    """Attribute the classifier's decision on ``texts`` (or the examples of ``data``) to their words.

    ``classifier`` is a loaded Classifier or its folder; ``data`` a file (JSON Lines, TSV/CSV), a named set
    (``rt:test``) or a list of Examples, read as ``pk.classify`` reads them; ``methods`` default to every method
    that applies (``pooling`` needs an attention or max head, ``attention-*`` an encoder); ``target`` is a label to explain
    (default: each example's predicted class); ``steps`` and ``batch_size`` drive integrated gradients
    (``batch_size`` is also Captum's internal batch size, in rows per forward pass); IG examples whose
    convergence delta is flagged are retried once with ``retry_steps`` when given. ``level="token"`` reports
    sub-tokens instead of words.
    """
    steps = checks.positive("steps", steps)
    batch_size = checks.positive("batch_size", batch_size)
    limit = checks.positive("limit", limit, optional=True)
    retry_steps = checks.positive("retry_steps", retry_steps, optional=True)
    level = checks.choice("level", level, LEVELS)
    seed = checks.integer("seed", seed)
    model, path = _load(classifier)
    names = registry.resolve(methods, model)
    target_index = _target_index(model, target)
    examples = _examples(texts, data, limit, seed)
    if not examples:
        raise UserError(f"--data {data}: no examples")
    torch.manual_seed(seed)
    model.eval()

    order = sorted(range(len(examples)), key=lambda i: (len(examples[i].text or "") + sum(
        len(w) + 1 for w in (examples[i].words or []) + (examples[i].words_b or []))))
    rows, cut = [], []
    bar = progress(total=len(examples), desc="attributions", unit="example")
    tell = postfix(bar)                     # which method of the current batch: the count moves per batch
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        chunk = [examples[i] for i in idx]
        batch_rows, batch_cut = _attribute_batch(model, chunk, idx, names, target_index, steps=steps,
                                                 batch_size=batch_size, level=level, retry_steps=retry_steps,
                                                 tell=tell)
        rows += batch_rows
        cut += batch_cut
        bar.update(len(idx))
    bar.close()
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS + (["word_index"] if level == "token" else []))
    frame = frame.sort_values(["example", "method", "index"], kind="stable", key=_method_key(names))
    frame = frame.reset_index(drop=True)
    truncated = int(sum(cut))
    if truncated:
        import sys

        print(f"probekit: warning: {truncated} of {len(examples)} inputs were longer than the classifier's "
              f"{model.max_length} tokens; the words cut off are left out", file=sys.stderr)
    agreement = agreement_table(frame, signed={n: registry.get_method(n).signed for n in names})
    record = run_record("attribute", dict(methods=names, target=target, steps=steps, batch_size=batch_size,
                                          limit=limit, level=level, seed=seed, retry_steps=retry_steps),
                        encoder=getattr(model, "encoder", None),
                        inputs={"data": None if data is None else str(data) if isinstance(data, (str, os.PathLike))
                                else f"{len(examples)} Examples",
                                "texts": len(texts) if texts is not None and not isinstance(texts, str) else
                                (1 if texts else 0)},
                        counts={"examples": len(examples), "rows": len(frame), "truncated": truncated,
                                "ig_flagged": _flagged(frame)},
                        classifier={"path": path, "head": model.head_type, "level": model.level,
                                    "encoder": model.encoder_mode, "labels": list(model.labels)},
                        methods={n: registry.get_method(n).summary for n in names})
    return AttributionResult(frame, agreement, record)


def _flagged(frame: pd.DataFrame) -> int:
    """How many examples' integrated gradients were flagged (|δ| > 5 % of |F(x) − F(x′)|)."""
    ig = frame.loc[frame["method"] == "integrated-gradients", ["example", "flagged"]].drop_duplicates("example")
    return int(sum(bool(f) for f in ig["flagged"]))


def _method_key(names):
    rank = {n: i for i, n in enumerate(names)}

    def key(col):
        return col.map(rank) if col.name == "method" else col

    return key


def _truncated(model, batch, chunk) -> list[bool]:
    """Which examples lost tokens to the length limit (only those that fill it are re-tokenised to check)."""
    from ..core.extraction import encode_examples

    full = (batch["attention_mask"].sum(1) >= model.max_length).tolist()
    if not any(full):
        return [False] * len(chunk)
    source = model.source
    at_limit = [ex for ex, f in zip(chunk, full) if f]
    flags = iter(e.truncated for e in encode_examples(source, at_limit, max_length=model.max_length, warn=False))
    return [next(flags) if f else False for f in full]


def _attribute_batch(model, chunk, idx, names, target_index, *, steps, batch_size, level, retry_steps,
                     tell=None):
    batch = model.encode(chunk, warn=False)
    with torch.no_grad():
        probs = torch.softmax(model(**model_inputs(batch)).float(), -1).cpu()
    pred = probs.argmax(1)
    target = pred.clone() if target_index is None else torch.full_like(pred, target_index)
    target = target.to(batch["input_ids"].device)
    word_ids, words = _word_layout(model, batch, chunk)
    B = len(chunk)
    results = {}
    for name in names:
        if tell is not None:
            tell(f"{name} on a batch of {len(chunk)}")
        m = registry.get_method(name)
        scores, extra = m.fn(model, batch, target, steps=steps, internal_batch_size=batch_size,
                             retry_steps=retry_steps, words=words, word_ids=word_ids, examples=chunk)
        unit = registry.unit_of(m, model)
        if m.unit == "head" and unit == "token":
            scores = _head_to_tokens(scores, batch)
        results[name] = (m, unit, scores.detach().float().cpu(), extra)
    tokens = model.tokenizer
    rows = []
    for b in range(B):
        true = chunk[b].meta.get("label")
        true = None if true is None else str(true)
        p_label = model.labels[int(pred[b])]
        common = dict(target=model.labels[int(target[b])], label=true, prediction=p_label,
                      probability=float(probs[b, pred[b]]), correct=None if true is None else true == p_label)
        n = len(words[b])
        pos = token_positions({"attention_mask": batch["attention_mask"], "word_ids": torch.from_numpy(word_ids)}, b)
        token_strings = tokens.convert_ids_to_tokens(batch["input_ids"][b, pos].tolist()) if level == "token" else None
        for name, (m, unit, scores, extra) in results.items():
            if level == "word":
                vals = scores[b, :n].numpy().astype(np.float64) if unit == "word" else \
                    to_words(scores[b], word_ids[b], n, m.word_rule)
                units = words[b]
            else:
                vals = spread_to_tokens(scores[b, :n].numpy(), word_ids[b], pos) if unit == "word" else \
                    scores[b, pos].numpy().astype(np.float64)
                units = token_strings
            delta = float(extra["delta"][b]) if "delta" in extra else None
            flagged = bool(extra["flagged"][b]) if "flagged" in extra else None
            for i, (u, v) in enumerate(zip(units, vals)):
                row = dict(example=idx[b], index=i, word=u, method=name, score=float(v), delta=delta,
                           flagged=flagged, **common)
                if level == "token":
                    row["word_index"] = int(word_ids[b][pos[i]])
                rows.append(row)
    return rows, _truncated(model, batch, chunk)
