"""Saving and loading multiple-choice models (safetensors and JSON, never pickle).

The folder (a ``classify --task multiple-choice`` run folder is one) holds ``classifier.json`` with
``"task": "multiple-choice"`` (so :func:`probekit.classify.saved.load_classifier` returns a
:class:`MultipleChoiceModel`), ``classifier.safetensors`` (the scoring head) and ``encoder/`` with the tokenizer
and the fine-tuned weights. Where the architecture has a transformers multiple-choice class, ``encoder/`` is a
complete ``AutoModelForMultipleChoice`` checkpoint: ``AutoModelForMultipleChoice.from_pretrained(DIR/"encoder")``
gives the same scores.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.errors import UserError
from .multiple_choice import MultipleChoiceModel

FORMAT = 1
TASK = "multiple-choice"
CONFIG = "classifier.json"
WEIGHTS = "classifier.safetensors"
ENCODER = "encoder"


def mc_config(model: MultipleChoiceModel) -> dict:
    enc = model.encoder
    return {"format": FORMAT, "task": TASK, "hf_multiple_choice": model.hf, "max_length": model.max_length,
            "encoder": {"name": model.source_name, "type": enc.config.model_type}}


def save_multiple_choice(model: MultipleChoiceModel, folder: str | os.PathLike) -> Path:
    """Write ``classifier.json``, ``classifier.safetensors`` and ``encoder/`` into ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.head_state().items()}
    save_file(state, str(folder / WEIGHTS), metadata={"format": str(FORMAT), "task": TASK})
    (model.net if model.hf else model.encoder.model).save_pretrained(folder / ENCODER)
    model.tokenizer.save_pretrained(folder / ENCODER)
    (folder / CONFIG).write_text(json.dumps(mc_config(model), indent=2) + "\n", encoding="utf-8")
    return folder


def load_multiple_choice(cfg_path: Path, cfg: dict, *, device: str = "cpu") -> MultipleChoiceModel:
    """The model saved beside ``cfg_path`` (its parsed ``classifier.json`` is ``cfg``), in eval mode."""
    from safetensors.torch import load_file

    from ..core.encoder import load_encoder

    if cfg.get("format") != FORMAT:
        raise UserError(f"{cfg_path}: multiple-choice format {cfg.get('format')!r}; this probekit reads {FORMAT}")
    folder = cfg_path.parent
    weights, enc_dir = folder / WEIGHTS, folder / ENCODER
    if not weights.is_file():
        raise UserError(f"{folder}: {WEIGHTS} is missing")
    if not enc_dir.is_dir():
        raise UserError(f"{folder}: the fine-tuned encoder folder {ENCODER}/ is missing")
    try:
        encoder = load_encoder(str(enc_dir), device=device)
        encoder.name = cfg["encoder"]["name"]
        model = MultipleChoiceModel(encoder, max_length=cfg["max_length"], hf=cfg["hf_multiple_choice"])
    except (KeyError, TypeError) as exc:
        raise UserError(f"{cfg_path}: not a valid multiple-choice config ({exc.__class__.__name__}: {exc})") from None
    head = load_file(str(weights))
    missing = set(model.head_state()) ^ set(head)
    if missing:
        raise UserError(f"{weights}: does not fit this model (keys {sorted(missing)[:3]})")
    model.load_state_dict(head, strict=False)
    return model.to(device).eval()
