"""Saving and loading multiple-choice models (safetensors and JSON, never pickle).

The folder (a ``classify --task multiple-choice`` run folder is one) holds ``classifier.json`` with
``"task": "multiple-choice"`` (so :func:`probekit.classifiers.saved.load_classifier` returns a
:class:`MultipleChoiceModel`), ``classifier.safetensors`` (the scoring head) and ``encoder/`` with the tokenizer
and the fine-tuned weights. Where the architecture has a transformers multiple-choice class, ``encoder/`` is a
complete ``AutoModelForMultipleChoice`` checkpoint: ``AutoModelForMultipleChoice.from_pretrained(DIR/"encoder")``
gives the same scores. ``manifest.json`` (the sha256 of every file above) is written last and checked first, as
for classifiers (:mod:`.verify`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from probekit.core.errors import UserError
from probekit.classifiers.multiple_choice.model import MultipleChoiceModel

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
    """Write ``classifier.json``, ``classifier.safetensors`` and ``encoder/`` into ``folder``, then
    ``manifest.json``; a failure (a full disk) leaves none of them."""
    from safetensors.torch import save_file

    from probekit.classifiers.verify import model_files, saving, write_manifest

    folder = Path(folder)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.head_state().items()}
    with saving(folder, "the multiple-choice model"):
        folder.mkdir(parents=True, exist_ok=True)
        save_file(state, str(folder / WEIGHTS), metadata={"format": str(FORMAT), "task": TASK})
        (model.net if model.hf else model.encoder.model).save_pretrained(folder / ENCODER)
        model.tokenizer.save_pretrained(folder / ENCODER)
        (folder / CONFIG).write_text(json.dumps(mc_config(model), indent=2) + "\n", encoding="utf-8")
        write_manifest(folder, model_files(folder, [CONFIG, WEIGHTS, ENCODER]))
    return folder


def load_multiple_choice(cfg_path: Path, cfg: dict, *, device: str = "cpu") -> MultipleChoiceModel:
    """The model saved beside ``cfg_path`` (its parsed ``classifier.json`` is ``cfg``), in eval mode."""
    from probekit.classifiers.verify import check_manifest, load_encoder_checked, load_weights

    if cfg.get("format") != FORMAT:
        raise UserError(f"{cfg_path}: multiple-choice format {cfg.get('format')!r}; this probekit reads {FORMAT}")
    folder = cfg_path.parent
    check_manifest(folder, (CONFIG, WEIGHTS, ENCODER), what="multiple-choice folder",
                   legacy_hint="; re-save it with pk.save_classifier(pk.load_classifier(DIR), NEW_DIR)")
    problems = config_problems(cfg)
    if problems:
        raise UserError(f"{cfg_path}: {len(problems)} problem(s): " + "; ".join(problems))
    weights, enc_dir = folder / WEIGHTS, folder / ENCODER
    if not weights.is_file():
        raise UserError(f"{folder}: {WEIGHTS} is missing")
    if not enc_dir.is_dir():
        raise UserError(f"{folder}: the fine-tuned encoder folder {ENCODER}/ is missing")
    encoder = load_encoder_checked(str(enc_dir), device=device)
    encoder.name = cfg["encoder"]["name"]
    model = MultipleChoiceModel(encoder, max_length=cfg["max_length"], hf=cfg["hf_multiple_choice"])
    head = load_weights(weights, "scoring head's weights")
    missing = set(model.head_state()) ^ set(head)
    if missing:
        raise UserError(f"{weights}: does not fit this model (keys {sorted(missing)[:3]})")
    model.load_state_dict(head, strict=False)
    return model.to(device).eval()


def config_problems(cfg: dict) -> list[str]:
    """Every problem of a multiple-choice ``classifier.json``, field by field."""
    out = [f"unknown key {k!r}" for k in sorted(set(cfg) - {"format", "task", "hf_multiple_choice", "max_length",
                                                              "encoder"})]
    if not isinstance(cfg.get("hf_multiple_choice"), bool):
        out.append(f"hf_multiple_choice: {cfg.get('hf_multiple_choice', 'missing')!r}, not true or false")
    length = cfg.get("max_length")
    if length is not None and (not isinstance(length, int) or isinstance(length, bool) or length < 3):
        out.append(f"max_length: {length!r} is not a whole number ≥ 3")
    enc = cfg.get("encoder")
    if not isinstance(enc, dict) or not isinstance(enc.get("name"), str):
        out.append("encoder: not an object with a name")
    return out
