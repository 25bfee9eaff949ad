"""Multiple-choice reading-comprehension items: MCTest ``.tsv`` + ``.ans``, JSON Lines, and named sets.

An :class:`MCItem` is one question: passage, question, options, the index of the correct option
(``answer``; ``-1`` when unknown) and ``meta`` (``source`` = ``file:line``, MCTest's ``type`` ``one``/``multiple``,
``story`` id …).

``read_mc(spec)`` takes

- an MCTest ``.tsv`` (one story per line: id, properties, story with ``\\newline`` escapes, then four questions,
  each ``one: Q`` or ``multiple: Q`` followed by its options). The answers are the ``.ans`` file beside it (same
  stem; one line per story, one letter per question, tab-separated). Without it the answers are unknown: a
  :class:`UserError`, unless ``answers=False`` (reading for prediction only: every ``answer`` is ``-1``);
- a JSON Lines file (``.jsonl``/``.json``): one object per line with ``passage``, ``question``, ``options``
  (a list of at least two strings; their number may vary between items) and ``answer``: a 0-based index
  (an int), or a string, read as the text of one option when it equals one, else as a letter (``"A"`` = the
  first option). Optional ``id`` and ``meta`` (an object); other keys go into ``meta``;
- a named set ``mc160:train|dev|test`` or ``mc500:train|dev|test``: ``<data_root>/mctest/mc160.train.tsv`` …
  (``data_root`` as for the classification sets, :func:`probekit.corpora.labelled.default_data_root`);
- a list of MCItems (returned as is, after checking), or a list of specs (their items concatenated).

``write_mc_jsonl(items, path)`` writes the JSON Lines form that ``read_mc`` reads back unchanged.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from probekit.core.errors import UserError, where
from probekit.corpora.labelled import default_data_root, json_objects, no_data_root, read_lines

MC_NAMED = ("mc160", "mc500")
MC_SPLITS = ("train", "dev", "test")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TYPE = re.compile(r"^\s*(one|multiple)\s*:\s*", re.IGNORECASE)
_QUESTIONS, _OPTIONS = 4, 4


@dataclass
class MCItem:
    """One multiple-choice question on a passage; ``answer`` indexes ``options`` (``-1``: unknown)."""

    passage: str
    question: str
    options: list[str]
    answer: int
    id: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return len(self.options)


def is_mc_named(spec) -> bool:
    """True for ``mc160:SPLIT`` / ``mc500:SPLIT`` (and no file of that name)."""
    if not isinstance(spec, str) or ":" not in spec or Path(spec).exists():
        return False
    return spec.partition(":")[0].strip().lower() in MC_NAMED


def read_mc(spec, *, what: str = "--train", data_root=None, answers: bool = True) -> list[MCItem]:
    """Items from a file, a named set or a list (see the module docstring); never an empty list."""
    if spec is None:
        raise UserError(f"{what} is required")
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(s, (str, Path)) for s in spec):
        return [it for s in spec for it in read_mc(s, what=what, data_root=data_root, answers=answers)]
    if isinstance(spec, (list, tuple)):
        items = list(spec)
        for i, it in enumerate(items):
            if not isinstance(it, MCItem):
                raise UserError(f"{what}: item {i} is not an MCItem")
            _check(it, f"{what}[{i}]", answers)
        return _nonempty(items, "(list)", what)
    if is_mc_named(spec):
        return _named(spec, data_root, what)
    path = Path(spec)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder, not a file")
    if not path.exists():
        hint = f"; named sets are {', '.join(f'{n}:train|dev|test' for n in MC_NAMED)}" if ":" in str(spec) else ""
        raise UserError(f"{what} {path} does not exist{hint}")
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        return read_mctest(path, what=what, answers=answers)
    if suffix in (".jsonl", ".json"):
        return read_mc_jsonl(path, what=what, answers=answers)
    raise UserError(f"{what} {path}: unknown multiple-choice format {suffix or '(no suffix)'!r}; "
                    f"use an MCTest .tsv (with its .ans) or JSON Lines (.jsonl)")


def _named(spec: str, data_root, what: str) -> list[MCItem]:
    name, _, split = spec.partition(":")
    name, split = name.strip().lower(), split.strip().lower() or "train"
    if split not in MC_SPLITS:
        raise UserError(f"unknown split {split!r} in {spec!r}; use one of {', '.join(MC_SPLITS)}")
    root = Path(data_root) if data_root is not None else default_data_root()
    if root is None:
        raise no_data_root(spec, "mctest/")
    path = root / "mctest" / f"{name}.{split}.tsv"
    if not path.is_file():
        raise UserError(f"{spec}: {path} does not exist (is --data-root or $PROBEKIT_DATA right?)")
    return read_mctest(path, what=what)


def read_mctest(path, *, what: str = "--train", answers: bool = True) -> list[MCItem]:
    """MCTest's ``.tsv`` with the ``.ans`` beside it (see the module docstring)."""
    path = Path(path)
    ans_path = path.with_suffix(".ans")
    keys = None
    if ans_path.is_file():
        keys = [l.split("\t") for l in read_lines(ans_path)]
    elif answers:
        raise UserError(f"{what} {path}: the answer file {ans_path} does not exist")
    out, stories = [], 0
    for lineno, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        src = where(path, lineno)
        fields = line.split("\t")
        need = 3 + _QUESTIONS * (1 + _OPTIONS)
        if len(fields) != need:
            raise UserError(f"{src}: expected {need} tab-separated fields (id, properties, story, "
                            f"{_QUESTIONS} × question + {_OPTIONS} options), got {len(fields)}")
        story_id, properties, story = fields[0], fields[1], fields[2].replace("\\newline", "\n")
        key = None
        if keys is not None:
            if stories >= len(keys):
                raise UserError(f"{ans_path}: has {len(keys)} lines, but {path} has more stories ({src})")
            key = [k.strip().upper() for k in keys[stories]]
            if len(key) != _QUESTIONS or any(k not in _LETTERS[:_OPTIONS] for k in key):
                raise UserError(f"{where(ans_path, stories + 1)}: expected {_QUESTIONS} tab-separated letters "
                                f"A-{_LETTERS[_OPTIONS - 1]}, got {keys[stories]!r}")
        stories += 1
        for q in range(_QUESTIONS):
            start = 3 + q * (1 + _OPTIONS)
            raw = fields[start]
            m = _TYPE.match(raw)
            if m is None:
                raise UserError(f"{src}: question {q + 1} does not start with 'one:' or 'multiple:' ({raw[:40]!r})")
            options = [o.strip() for o in fields[start + 1:start + 1 + _OPTIONS]]
            out.append(MCItem(passage=story, question=raw[m.end():].strip(), options=options,
                              answer=_LETTERS.index(key[q]) if key is not None else -1, id=f"{story_id}.q{q + 1}",
                              meta={"source": src, "story": story_id, "question_index": q,
                                    "type": m.group(1).lower(), "properties": properties}))
    if keys is not None and stories != len(keys):
        raise UserError(f"{ans_path}: has {len(keys)} lines but {path} has {stories} stories")
    return _nonempty(out, path, what)


def read_mc_jsonl(path, *, what: str = "--train", answers: bool = True) -> list[MCItem]:
    """JSON Lines items (see the module docstring); blank lines are skipped."""
    path = Path(path)
    out = []
    for lineno, src, obj in json_objects(path):
        for key in ("passage", "question", "options"):
            if key not in obj:
                raise UserError(f"{src}: no {key!r} field")
        for key in ("passage", "question"):
            if not isinstance(obj[key], str):
                raise UserError(f"{src}: {key!r} must be a string")
        options = obj["options"]
        if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) for o in options):
            raise UserError(f"{src}: 'options' must be a list of at least two strings")
        if "answer" in obj and obj["answer"] is not None:
            answer = _answer_index(obj["answer"], options, src)
        elif answers:
            raise UserError(f"{src}: no 'answer' field")
        else:
            answer = -1
        meta = obj.get("meta") or {}
        if not isinstance(meta, dict):
            raise UserError(f"{src}: 'meta' must be an object")
        meta = {**{k: v for k, v in obj.items() if k not in ("passage", "question", "options", "answer", "id",
                                                              "meta")}, **meta, "source": src}
        out.append(MCItem(passage=obj["passage"], question=obj["question"], options=list(options), answer=answer,
                          id=str(obj.get("id", f"{path.stem}.{lineno}")), meta=meta))
    return _nonempty(out, path, what)


def _answer_index(value, options: list[str], src: str) -> int:
    k = len(options)
    if isinstance(value, bool):
        raise UserError(f"{src}: 'answer' must be an option index, an option's text or a letter (got {value!r})")
    if isinstance(value, int):
        if not 0 <= value < k:
            raise UserError(f"{src}: 'answer' index {value} is out of range for {k} options (0…{k - 1})")
        return value
    if isinstance(value, str):
        if value in options:
            return options.index(value)
        letter = value.strip().upper()
        if len(letter) == 1 and letter in _LETTERS[:k]:
            return _LETTERS.index(letter)
        raise UserError(f"{src}: 'answer' {value!r} is neither one of the options nor a letter "
                        f"A-{_LETTERS[k - 1]}")
    raise UserError(f"{src}: 'answer' must be an option index, an option's text or a letter (got {value!r})")


def _check(item: MCItem, src: str, answers: bool) -> None:
    if len(item.options) < 2:
        raise UserError(f"{src}: an item needs at least two options")
    if not (-1 <= item.answer < len(item.options)) or (answers and item.answer < 0):
        raise UserError(f"{src}: answer {item.answer} is not an index of its {len(item.options)} options")


def _nonempty(items: list[MCItem], path, what: str) -> list[MCItem]:
    if not items:
        raise UserError(f"{what} {path}: no items (the file is empty)")
    return items


def write_mc_jsonl(items, path) -> Path:
    """Write ``items`` as JSON Lines (``answer`` as a 0-based index); ``read_mc`` reads them back equal
    (``meta["source"]`` then names the new file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for it in items:
            meta = {k: v for k, v in it.meta.items() if k != "source"}
            f.write(json.dumps({"id": it.id, "passage": it.passage, "question": it.question,
                                "options": list(it.options),
                                "answer": int(it.answer) if it.answer >= 0 else None, "meta": meta},
                               ensure_ascii=False) + "\n")
    return path
