"""Saving and loading classifiers: safetensors weights and JSON, never pickle.

A classifier folder (a ``python -m probekit.classify`` run folder is one) holds

- ``classifier.json``: format, head type and options, level, encoder mode, layer, max length, the label map
  (``labels``, ``label2id``) and the encoder's name, source and fingerprint;
- ``classifier.safetensors``: the head's weights;
- ``encoder/`` (fine-tuned classifiers only): the fine-tuned encoder and its tokenizer, ``save_pretrained``
  with safetensors. With the ``cls`` head reading the last layer this folder is a complete Hugging Face
  ``AutoModelForSequenceClassification`` checkpoint (config with ``id2label``/``label2id``, the head's weights
  in the architecture's own layout), so ``AutoModelForSequenceClassification.from_pretrained(DIR/"encoder")``
  gives the same logits.

A frozen or ``none`` classifier stores no encoder weights: it names its encoder and checks the fingerprint
when loading, so a changed checkpoint is refused rather than silently used.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.errors import UserError
from .model import Classifier

FORMAT = 1
CONFIG = "classifier.json"
WEIGHTS = "classifier.safetensors"
ENCODER = "encoder"

#: where each architecture's sequence-classification head keeps the cls head's two layers
_HF_LAYOUT = {
    "bert": ("bert.pooler.dense", "classifier"),
    "albert": ("albert.pooler", "classifier"),
    "roberta": ("classifier.dense", "classifier.out_proj"),
    "electra": ("classifier.dense", "classifier.out_proj"),
    "distilbert": ("pre_classifier", "classifier"),
}


def classifier_config(clf: Classifier) -> dict:
    enc = clf.source
    return {"format": FORMAT, "head": clf.head_type, "level": clf.level, "encoder_mode": clf.encoder_mode,
            "layer": clf.layer, "max_length": clf.max_length, "labels": list(clf.labels),
            "label2id": {l: i for i, l in enumerate(clf.labels)}, "options": dict(clf.options),
            "encoder": {"name": enc.name, "source": enc.source, "fingerprint": enc.fingerprint(),
                        "type": enc.config.model_type}}


def hf_exportable(clf: Classifier) -> bool:
    return (clf.head_type == "cls" and clf.encoder is not None and clf.layer == clf.source.num_layers
            and clf.source.config.model_type in _HF_LAYOUT)


def save_classifier(clf: Classifier, folder: str | os.PathLike) -> Path:
    """Write ``classifier.json``, ``classifier.safetensors`` (and ``encoder/`` when fine-tuned) into ``folder``."""
    from safetensors.torch import save_file

    if hasattr(clf, "vocab"):                  # an encoder trained from scratch
        from .scratch_saved import save_scratch

        return save_scratch(clf, folder, fmt=FORMAT, config_name=CONFIG, weights_name=WEIGHTS)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = classifier_config(clf)
    state = {k: v.detach().to("cpu").contiguous() for k, v in clf.head.state_dict().items()}
    save_file(state, str(folder / WEIGHTS), metadata={"format": str(FORMAT)})
    if clf.encoder_mode == "finetune":
        target = folder / ENCODER
        if hf_exportable(clf):
            hf_model(clf).save_pretrained(target)
            config["hf_sequence_classification"] = True
        else:
            clf.source.model.save_pretrained(target)
        clf.tokenizer.save_pretrained(target)
    (folder / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return folder


def hf_model(clf: Classifier):
    """The classifier as a transformers ``AutoModelForSequenceClassification`` (cls head, last layer)."""
    from transformers import AutoModelForSequenceClassification

    if not hf_exportable(clf):
        raise ValueError("only a cls-head classifier reading the last layer is a sequence-classification model")
    enc = clf.source
    config = enc.config.__class__.from_dict(enc.config.to_dict())
    config.num_labels = clf.n_classes
    config.id2label = {i: l for i, l in enumerate(clf.labels)}
    config.label2id = {l: i for i, l in enumerate(clf.labels)}
    config.architectures = None
    model = AutoModelForSequenceClassification.from_config(config)
    base = getattr(model, model.base_model_prefix)
    base_state = {k: v for k, v in enc.model.state_dict().items()}
    missing, _ = base.load_state_dict(base_state, strict=False)
    dense, out = _HF_LAYOUT[config.model_type]
    state = model.state_dict()
    for prefix, layer in ((dense, clf.head.dense), (out, clf.head.out)):
        for name in ("weight", "bias"):
            state[f"{prefix}.{name}"] = getattr(layer, name).detach().clone().cpu()
    model.load_state_dict(state)
    missing = [k for k in missing if not f"{model.base_model_prefix}.{k}".startswith(dense)]
    if missing:
        raise RuntimeError(f"encoder weights not carried over to the sequence-classification model: {missing[:3]}")
    return model.eval()


def _config_path(folder: Path) -> Path:
    for p in (folder / CONFIG, folder / "classifier" / CONFIG):
        if p.is_file():
            return p
    raise UserError(f"--classifier {folder}: not a classifier folder (no {CONFIG}; "
                    f"write one with python -m probekit.classify --out DIR)")


def load_classifier(folder: str | os.PathLike, *, device: str = "cpu") -> Classifier:
    """The classifier saved in ``folder`` (a classifier run folder), in eval mode on ``device``; a ``classify
    --task multiple-choice`` folder gives its :class:`~probekit.classify.multiple_choice.MultipleChoiceModel`."""
    from safetensors.torch import load_file

    from ..core.encoder import load_encoder

    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"--classifier {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"--classifier {folder} is a file, not a classifier folder")
    cfg_path = _config_path(folder)
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        if isinstance(cfg, dict) and cfg.get("task") == "multiple-choice":
            from .mc_saved import load_multiple_choice

            return load_multiple_choice(cfg_path, cfg, device=device)
        if isinstance(cfg, dict) and "scratch" in cfg and cfg.get("format") == FORMAT:
            from .scratch_saved import load_scratch

            return load_scratch(cfg_path, cfg, device=device, weights_name=WEIGHTS)
        labels, head, mode = cfg["labels"], cfg["head"], cfg["encoder_mode"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{cfg_path}: not a valid classifier config ({exc.__class__.__name__}: {exc})") from None
    if cfg.get("format") != FORMAT:
        raise UserError(f"{cfg_path}: classifier format {cfg.get('format')!r}; this probekit reads {FORMAT}")
    weights = cfg_path.parent / WEIGHTS
    if not weights.is_file():
        raise UserError(f"{cfg_path.parent}: {WEIGHTS} is missing")
    enc_info = cfg["encoder"]
    if mode == "finetune":
        enc_dir = cfg_path.parent / ENCODER
        if not enc_dir.is_dir():
            raise UserError(f"{cfg_path.parent}: the fine-tuned encoder folder {ENCODER}/ is missing")
        encoder = load_encoder(str(enc_dir), device=device)
        encoder.name = enc_info["name"]
    else:
        encoder = load_encoder(enc_info["name"] if _is_default(enc_info) else enc_info["source"], device=device)
        if encoder.fingerprint() != enc_info["fingerprint"]:
            raise UserError(f"{cfg_path}: the encoder {enc_info['source']} differs from the one this classifier "
                            f"was trained with (fingerprint {encoder.fingerprint()} ≠ {enc_info['fingerprint']})")
    clf = Classifier(encoder, labels, head=head, level=cfg["level"], encoder_mode=mode, layer=cfg["layer"],
                     max_length=cfg["max_length"], **cfg.get("options", {}))
    try:
        clf.head.load_state_dict(load_file(str(weights)))
    except (RuntimeError, OSError) as exc:
        raise UserError(f"{weights}: does not fit this classifier ({str(exc).splitlines()[0]})") from None
    return clf.to(device).eval()


def _is_default(info: dict) -> bool:
    from ..core.encoder import DEFAULT_MODEL

    return info.get("name") == DEFAULT_MODEL


def classifier_summary(folder) -> dict:
    """The saved config, for records."""
    return json.loads(_config_path(Path(folder)).read_text(encoding="utf-8"))

