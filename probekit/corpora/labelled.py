"""Labelled examples for classifiers: JSON Lines, TSV/CSV, and the shared data sets by name.

Every reader returns :class:`~probekit.core.examples.Example` objects with ``meta["label"]`` (a string) and
``meta["source"] = "file:line"``; pairs use ``words``/``words_b`` (whitespace-split). Files are split into lines
at ``\\n`` only: ``str.splitlines`` would also split at U+0085 (NEL), which ``imdb_labelled.txt`` contains
inside sentences.

Named sets (``NAME:SPLIT``; files under ``data_root``: by default ``$PROBEKIT_DATA``, else
``$XDG_DATA_HOME/probekit/data`` (``~/.local/share/probekit/data``), never a folder relative to where a command runs):

=====================  ==========================================  ========================================
name                   files                                       splits
=====================  ==========================================  ========================================
``rt``                 rt-sentence-polarity/rt-polarity.{pos,neg}  train/dev/test: seeded 80/10/10
``amazon`` ``imdb``    sentiment-labelled-sentences/*_labelled.txt train/dev/test: seeded 80/10/10
``yelp`` ``sls``       (``sls`` = all three)
``hatexplain``         hatexplain/{train,val}.jsonl                train/dev: seeded 90/10 of train.jsonl;
                                                                   test (= ``val``): val.jsonl
``snli``               snli-dev/{s1,s2,labels}.dev (pairs)         train/dev/test: seeded 80/10/10
=====================  ==========================================  ========================================

Split seeds are fixed (:data:`SPLIT_SEED`), independent of ``--seed``, so every run sees the same split.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from probekit.core.errors import UserError, where
from probekit.core.examples import Example
from probekit.corpora.text import drop_invisible

SPLIT_SEED = 0
NAMED = ("rt", "amazon", "imdb", "yelp", "sls", "hatexplain", "snli")
SPLITS = ("train", "dev", "test")
_SLS_FILES = {"amazon": "amazon_cells_labelled.txt", "imdb": "imdb_labelled.txt", "yelp": "yelp_labelled.txt"}
_SENTIMENT = {"0": "negative", "1": "positive"}
_TEXT_COLUMNS = ("text", "sentence", "sentence1", "text_a", "premise")
_PAIR_COLUMNS = ("text_b", "sentence2", "hypothesis")


def user_data_dir() -> Path:
    """The documented default folder of the named sets: ``$XDG_DATA_HOME/probekit/data``
    (``~/.local/share/probekit/data``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "probekit" / "data"


def default_data_root() -> Path | None:
    """``$PROBEKIT_DATA``, else :func:`user_data_dir` when it exists; the same wherever a command runs."""
    env = os.environ.get("PROBEKIT_DATA")
    if env:
        return Path(env).expanduser()
    p = user_data_dir()
    return p if p.is_dir() else None


def no_data_root(spec: str, holding: str) -> UserError:
    """The error for a named set without a data folder, naming every place that was tried."""
    return UserError(f"{spec}: no data folder: $PROBEKIT_DATA is not set and {user_data_dir()} does not exist; "
                     f"set PROBEKIT_DATA or pass --data-root (the folder holding {holding})")


def read_lines(path: Path, encoding: str = "utf-8") -> list[str]:
    """Lines split at ``\\n`` only (trailing ``\\r`` dropped), read as strict UTF-8 (a BOM allowed) by the one
    text reader every input file goes through: a stray byte is ``file:line: not UTF-8 text``, never a silent
    re-reading of the whole file as latin-1."""
    from probekit.corpora.text import read_utf8_lines

    return read_utf8_lines(path, what="data file")


def _example(text: str | None, words, label, source: str, *, text_b=None, words_b=None, rationale=None,
             extra: dict | None = None) -> Example:
    if label is None or (isinstance(label, str) and not label.strip()):
        raise UserError(f"{source}: no label")
    if isinstance(label, (dict, list)):
        raise UserError(f"{source}: the label must be a string or a number, got {type(label).__name__}")
    meta = {"label": str(label).strip() if isinstance(label, str) else str(label), "source": source}
    if rationale is not None:
        meta["rationale"] = list(rationale)
    meta.update(extra or {})
    if words is not None:
        if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
            raise UserError(f"{source}: 'words' must be a non-empty list of strings")
        # a word must be non-empty and free of whitespace (tokenizers split on it): squeeze it, drop blanks
        # (and their rationale values, so the two stay aligned)
        keep = ["".join(w.split()) for w in words]
        if rationale is not None and len(rationale) == len(words):
            rationale = [r for r, w in zip(rationale, keep) if w]
            meta["rationale"] = list(rationale)
        words = [w for w in keep if w]
        if not words:
            raise UserError(f"{source}: 'words' holds only blanks")
    elif text is not None:
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{source}: empty text")
    else:
        raise UserError(f"{source}: needs 'text' or 'words'")
    pair = words_b if words_b is not None else (text_b.split() if isinstance(text_b, str) else None)
    if text_b is not None and not isinstance(text_b, str):
        raise UserError(f"{source}: 'text_b' must be a string")
    if words_b is not None and (not isinstance(words_b, list) or not all(isinstance(w, str) for w in words_b)):
        raise UserError(f"{source}: 'words_b' must be a list of strings")
    if pair is not None:
        pair = [p for w in pair for p in w.split()]
        if not pair:
            raise UserError(f"{source}: the second sentence of the pair is empty")
        if words is None:
            words = text.split()      # pairs are always pre-split: [CLS] A [SEP] B [SEP] with word indices
            text = None
    if rationale is not None and words is not None and len(rationale) != len(words):
        raise UserError(f"{source}: 'rationale' has {len(rationale)} values for {len(words)} words")
    return Example(words=words, text=None if words is not None else " ".join(text.split()), words_b=pair,
                   meta=meta)


def json_objects(path: Path):
    """(line number, ``file:line``, object) for every non-blank line of a JSON Lines file; a line that is not a
    JSON object is one error naming it."""
    for lineno, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        src = where(path, lineno)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{src}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise UserError(f"{src}: expected a JSON object")
        yield lineno, src, obj


def read_jsonl(path, *, what: str = "--train") -> list[Example]:
    """One JSON object per line: ``text`` or ``words``, ``label``, optional ``text_b``/``words_b``,
    ``rationale`` (0/1 per word, kept in meta) and ``id``. Blank lines are skipped."""
    path = Path(path)
    out = []
    for _, src, obj in json_objects(path):
        if "label" not in obj:
            raise UserError(f"{src}: no 'label' field")
        extra = {"id": obj["id"]} if "id" in obj else None
        out.append(_example(obj.get("text"), obj.get("words"), obj["label"], src, text_b=obj.get("text_b"),
                            words_b=obj.get("words_b"), rationale=obj.get("rationale"), extra=extra))
    return _nonempty(drop_invisible(out, str(path)), path, what)


def _nonempty(examples: list[Example], path, what: str) -> list[Example]:
    if not examples:
        raise UserError(f"{what} {path}: no examples (the file is empty)")
    return examples


def _is_header(fields: list[str]) -> bool:
    low = [f.strip().lower() for f in fields]
    return "label" in low and any(c in low for c in _TEXT_COLUMNS)


def read_table(path, *, what: str = "--train", delimiter: str | None = None) -> list[Example]:
    """``text<TAB>label`` per line (``.csv``: comma-separated, quoted as Excel writes), or ``text<TAB>text_b<TAB>
    label`` for pairs. A first line naming the columns (``text``/``sentence``, ``label``, optional ``text_b``)
    is a header and then picks the columns by name."""
    path = Path(path)
    if delimiter is None:
        delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    lines = read_lines(path)
    if delimiter == ",":
        rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=","))
    else:
        rows = [l.split("\t") for l in lines]
    out = []
    columns = None
    for lineno, fields in enumerate(rows, 1):
        if not any(f.strip() for f in fields):
            continue
        src = where(path, lineno)
        if columns is None and not out and _is_header(fields):
            low = [f.strip().lower() for f in fields]
            columns = {"label": low.index("label"),
                       "text": next(low.index(c) for c in _TEXT_COLUMNS if c in low)}
            pair = next((c for c in _PAIR_COLUMNS if c in low), None)
            if pair:
                columns["text_b"] = low.index(pair)
            continue
        if columns is not None:
            if len(fields) <= max(columns.values()):
                raise UserError(f"{src}: expected {max(columns.values()) + 1} fields, got {len(fields)}")
            text, label = fields[columns["text"]], fields[columns["label"]]
            text_b = fields[columns["text_b"]] if "text_b" in columns else None
        elif len(fields) == 2:
            (text, label), text_b = fields, None
        elif len(fields) == 3:
            text, text_b, label = fields
        else:
            sep = "tab" if delimiter == "\t" else "comma"
            raise UserError(f"{src}: expected 2 {sep}-separated fields (text, label) or 3 (text, text_b, label), "
                            f"got {len(fields)} field(s)")
        out.append(_example(text, None, label, src, text_b=text_b))
    return _nonempty(drop_invisible(out, str(path)), path, what)


def read_file(path, *, what: str = "--train") -> list[Example]:
    """By extension: ``.jsonl``/``.json`` → :func:`read_jsonl`, anything else → :func:`read_table`."""
    from probekit.core.checks import input_file

    p = input_file(what.lstrip("-").replace("-", "_"), path) if what.startswith("--") else Path(path)
    if p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return read_jsonl(p, what=what)
    return read_table(p, what=what)


# --- the shared sets ------------------------------------------------------------------------------------------

def seeded_split(n: int, fractions=(0.8, 0.1, 0.1), seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Indices of a seeded random split into ``SPLITS``, each part in the shuffled order: the files list one
    class after another (RT: every negative sentence, then every positive one), so a part in file order would
    make its first N examples (``--limit N``) all one class."""
    order = np.random.default_rng(seed).permutation(n)
    cut1 = int(round(fractions[0] * n))
    cut2 = cut1 + int(round(fractions[1] * n))
    return {"train": order[:cut1], "dev": order[cut1:cut2], "test": order[cut2:]}


def _need(root: Path, rel: str) -> Path:
    p = root / rel
    if not p.is_file():
        raise UserError(f"{p} does not exist (is --data-root or $PROBEKIT_DATA right?)")
    return p


def _rt(root: Path) -> list[Example]:
    out = []
    for name, label in (("rt-polarity.neg", "negative"), ("rt-polarity.pos", "positive")):
        p = _need(root, f"rt-sentence-polarity/{name}")
        out += drop_invisible([_example(line, None, label, where(p, lineno))
                               for lineno, line in enumerate(read_lines(p), 1) if line.strip()], str(p))
    return out


def _sls(root: Path, which: list[str]) -> list[Example]:
    out = []
    for name in which:
        p = _need(root, f"sentiment-labelled-sentences/{_SLS_FILES[name]}")
        for ex in read_table(p, what=name):
            ex.meta["label"] = _SENTIMENT.get(ex.meta["label"], ex.meta["label"])
            ex.meta["corpus"] = name
            out.append(ex)
    return out


def _snli(root: Path) -> list[Example]:
    files = [_need(root, f"snli-dev/{n}.dev") for n in ("s1", "s2", "labels")]
    s1, s2, labels = (read_lines(f) for f in files)
    if not len(s1) == len(s2) == len(labels):
        raise UserError(f"{files[0].parent}: s1.dev, s2.dev and labels.dev differ in length "
                        f"({len(s1)}, {len(s2)}, {len(labels)})")
    return drop_invisible([_example(a, None, lab, where(files[2], i + 1), text_b=b)
                           for i, (a, b, lab) in enumerate(zip(s1, s2, labels)) if lab.strip()], str(files[0].parent))


def read_named(spec: str, data_root=None) -> list[Example]:
    """``NAME:SPLIT`` (see the module docstring), e.g. ``rt:train``, ``hatexplain:test``, ``snli:dev``."""
    name, _, split = spec.partition(":")
    name, split = name.strip().lower(), (split.strip().lower() or "train")
    if split == "val":
        split = "test" if name == "hatexplain" else "dev"
    if name not in NAMED:
        raise UserError(f"unknown data set {name!r} in {spec!r}; named sets are {', '.join(NAMED)}")
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r} in {spec!r}; use one of {', '.join(SPLITS)}")
    root = Path(data_root) if data_root is not None else default_data_root()
    if root is None:
        raise no_data_root(spec, f"{name}'s files")
    if name == "hatexplain":
        if split == "test":
            return read_jsonl(_need(root, "hatexplain/val.jsonl"), what=spec)
        examples = read_jsonl(_need(root, "hatexplain/train.jsonl"), what=spec)
        parts = seeded_split(len(examples), (0.9, 0.1, 0.0))
        return [examples[i] for i in parts[split]]
    if name == "rt":
        examples = _rt(root)
    elif name == "snli":
        examples = _snli(root)
    else:
        examples = _sls(root, list(_SLS_FILES) if name == "sls" else [name])
    return [examples[i] for i in seeded_split(len(examples))[split]]


def is_named(spec) -> bool:
    """True for ``NAME:SPLIT`` with a known name (and no such file)."""
    if not isinstance(spec, str) or ":" not in spec or Path(spec).exists():
        return False
    return spec.partition(":")[0].strip().lower() in NAMED


def load_split(spec, *, what: str, data_root=None) -> list[Example] | None:
    """A file path, a ``NAME:SPLIT`` name, several of them (concatenated in order: original + augmented data),
    or an already-built list of Examples (each needing meta["label"])."""
    if spec is None:
        return None
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(s, (str, os.PathLike)) for s in spec):
        return [ex for s in spec for ex in load_split(s, what=what, data_root=data_root)]
    if isinstance(spec, (list, tuple)):
        examples = list(spec)
        for i, ex in enumerate(examples):
            if not isinstance(ex, Example) or "label" not in ex.meta:
                raise UserError(f"{what}: item {i} is not an Example with meta['label']")
            ex.meta["label"] = str(ex.meta["label"])
            ex.meta.setdefault("source", f"{what}[{i}]")
        return _nonempty(drop_invisible(examples, what), "(list)", what)
    if is_named(spec):
        return read_named(spec, data_root)
    return read_file(spec, what=what)
