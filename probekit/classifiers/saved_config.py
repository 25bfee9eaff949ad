"""``classifier.json`` checked field by field before any weights are read.

A reversed ``labels`` list against ``label2id`` would silently rename every prediction, a string where a list
belongs would be iterated letter by letter, an out-of-range layer would fail deep inside the model: each is
reported here, all problems of one file in one message (``field: what is wrong``, separated by ``;``).
"""
from __future__ import annotations

from pathlib import Path

from probekit.core.errors import UserError
from probekit.classifiers.pooling import HEADS
from probekit.classifiers.model import ENCODER_MODES, LEVELS

#: every key a saved classifier may hold (another module that saves more adds its key here)
KNOWN_KEYS = {"format", "head", "level", "encoder_mode", "layer", "max_length", "labels", "label2id", "options",
              "encoder", "hf_sequence_classification"}
ENCODER_KEYS = {"name", "source", "fingerprint", "type"}
#: the head options :class:`~probekit.classifiers.model.Classifier` takes, with their checks
OPTION_CHECKS = {
    "dropout": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "attention_dim": (lambda v: _whole(v) and 1 <= v <= 1 << 16, "a whole number in 1 … 65536"),
    "n_heads": (lambda v: _whole(v) and 1 <= v <= 1024, "a whole number in 1 … 1024"),
}


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def config_problems(cfg) -> list[str]:
    """Every problem of a parsed ``classifier.json`` that needs no model to see."""
    if not isinstance(cfg, dict):
        return [f"the file holds a JSON {type(cfg).__name__}, not an object"]
    out = [f"unknown key {k!r}" for k in sorted(set(cfg) - KNOWN_KEYS)]
    need = {"head": HEADS, "level": LEVELS, "encoder_mode": ENCODER_MODES}
    for key, allowed in need.items():
        if key not in cfg:
            out.append(f"{key}: missing")
        elif cfg[key] not in allowed:
            out.append(f"{key}: {cfg[key]!r} is not one of {', '.join(allowed)}")
    layer = cfg.get("layer", "missing")
    if layer == "missing":
        out.append("layer: missing")
    elif layer is None:
        if cfg.get("encoder_mode") != "none":
            out.append("layer: null, but only encoder_mode none reads no layer")
    elif not _whole(layer) or layer < 0:
        out.append(f"layer: {layer!r} is not a layer number (0 … the encoder's layers)")
    length = cfg.get("max_length")
    if length is not None and (not _whole(length) or length < 3):
        out.append(f"max_length: {length!r} is not a whole number ≥ 3")
    out += _label_problems(cfg)
    options = cfg.get("options", {})
    if not isinstance(options, dict):
        out.append(f"options: a JSON {type(options).__name__}, not an object")
    else:
        for key, value in options.items():
            if key not in OPTION_CHECKS:
                out.append(f"options: unknown option {key!r}")
            elif not OPTION_CHECKS[key][0](value):
                out.append(f"options.{key}: {value!r} is not {OPTION_CHECKS[key][1]}")
    enc = cfg.get("encoder")
    if not isinstance(enc, dict):
        out.append("encoder: missing" if enc is None else f"encoder: a JSON {type(enc).__name__}, not an object")
    else:
        for key in sorted(ENCODER_KEYS):
            if not isinstance(enc.get(key), str) or not enc.get(key):
                out.append(f"encoder.{key}: {'missing' if key not in enc else repr(enc[key])}, not a string")
        out += [f"encoder: unknown key {k!r}" for k in sorted(set(enc) - ENCODER_KEYS)]
    if "hf_sequence_classification" in cfg and not isinstance(cfg["hf_sequence_classification"], bool):
        out.append("hf_sequence_classification: not true or false")
    return out


def _label_problems(cfg: dict) -> list[str]:
    labels, label2id = cfg.get("labels"), cfg.get("label2id")
    if not isinstance(labels, list):
        return [f"labels: {'missing' if labels is None else type(labels).__name__ + ' ' + repr(labels)[:40]}, "
                f"not a list of strings"]
    out = []
    if len(labels) < 2:
        out.append(f"labels: {len(labels)} label(s); a classifier needs at least 2")
    if not all(isinstance(l, str) and l for l in labels):
        out.append("labels: not all non-empty strings")
    elif len(set(labels)) != len(labels):
        out.append("labels: a label appears twice")
    if not isinstance(label2id, dict):
        out.append("label2id: missing" if label2id is None else "label2id: not an object")
    elif label2id != {l: i for i, l in enumerate(labels) if isinstance(l, str)}:
        wrong = next((l for i, l in enumerate(labels) if label2id.get(l) != i), None)
        detail = (f"label2id[{wrong!r}] = {label2id.get(wrong)!r}, but {wrong!r} is label {labels.index(wrong)}"
                  if wrong is not None else f"label2id names {sorted(set(label2id) - set(labels))[:3]}")
        out.append(f"labels and label2id disagree ({detail}); every prediction would carry the wrong name")
    return out


def check_config(cfg, cfg_path: Path) -> dict:
    """``cfg`` when it has no problem, else one UserError listing them all."""
    problems = config_problems(cfg)
    if problems:
        raise UserError(f"{cfg_path}: {len(problems)} problem(s): " + "; ".join(problems))
    return cfg


def check_against_model(cfg: dict, cfg_path: Path, encoder, head_state: dict) -> None:
    """What needs the encoder and the head's weights: the layer within the encoder's layers, and as many
    labels as the head has outputs."""
    problems = []
    layer = cfg.get("layer")
    if layer is not None and layer > encoder.num_layers:
        problems.append(f"layer: {layer} is beyond the encoder's {encoder.num_layers} layers")
    out = head_state.get("out.weight")
    if out is not None and out.ndim == 2 and out.shape[0] != len(cfg["labels"]):
        problems.append(f"labels: {len(cfg['labels'])} labels, but the head has {out.shape[0]} outputs")
    if problems:
        raise UserError(f"{cfg_path}: {len(problems)} problem(s): " + "; ".join(problems))
