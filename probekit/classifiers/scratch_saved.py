"""Saving and loading encoders trained from scratch, beside every other classifier (``saved.py``).

The folder holds ``classifier.json`` (format, ``"scratch"``: the model's constructor arguments, labels),
``vocabulary.json`` (units, lower-casing, the units in id order) and ``classifier.safetensors`` (every weight:
embeddings, encoder, head). No pickle; nothing outside the folder is needed.
"""
from __future__ import annotations

import json
from pathlib import Path

from probekit.core.errors import UserError
from probekit.classifiers.scratch import ENCODERS, ScratchClassifier
from probekit.classifiers.vocab import Vocabulary

VOCABULARY = "vocabulary.json"


def save_scratch(clf: ScratchClassifier, folder, *, fmt: int, config_name: str, weights_name: str) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in clf.state_dict().items()}
    save_file(state, str(folder / weights_name), metadata={"format": str(fmt)})
    (folder / VOCABULARY).write_text(json.dumps(clf.vocab.to_json(), ensure_ascii=False) + "\n", encoding="utf-8")
    config = {"format": fmt, "head": clf.head_type, "level": "word", "units": clf.units_kind,
              "encoder_mode": clf.encoder_mode, "layer": None, "max_length": clf.max_length,
              "labels": list(clf.labels), "label2id": {l: i for i, l in enumerate(clf.labels)},
              "scratch": clf.config(), "encoder": {"name": clf.source.name, "source": clf.source.source}}
    (folder / config_name).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return folder


def load_scratch(cfg_path: Path, cfg: dict, *, device: str, weights_name: str) -> ScratchClassifier:
    from safetensors.torch import load_file

    folder = cfg_path.parent
    vocab_path = folder / VOCABULARY
    if not vocab_path.is_file():
        raise UserError(f"{folder}: {VOCABULARY} is missing (an encoder trained from scratch keeps its vocabulary)")
    try:
        data = json.loads(vocab_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{vocab_path}: not a valid vocabulary ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise UserError(f"{vocab_path}: not a valid vocabulary (not a JSON object)")
    vocab = Vocabulary.from_json(data, str(vocab_path))
    try:
        opts = dict(cfg["scratch"])
        if opts.get("encoder") not in ENCODERS:
            raise ValueError(f"unknown encoder {opts.get('encoder')!r}")
        clf = ScratchClassifier(vocab, cfg["labels"], **opts)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{cfg_path}: not a valid classifier config ({exc.__class__.__name__}: {exc})") from None
    weights = folder / weights_name
    if not weights.is_file():
        raise UserError(f"{folder}: {weights_name} is missing")
    try:
        clf.load_state_dict(load_file(str(weights)))
    except (RuntimeError, OSError) as exc:
        raise UserError(f"{weights}: does not fit this classifier ({str(exc).splitlines()[0]})") from None
    return clf.to(device).eval()
