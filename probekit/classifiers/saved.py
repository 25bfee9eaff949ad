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

- ``manifest.json``: the sha256 of every file above, written last (:mod:`.verify`).

A frozen or ``none`` classifier stores no encoder weights: it names its encoder and checks the fingerprint
when loading, so a changed checkpoint is refused rather than silently used. Loading checks the manifest, then
``classifier.json`` field by field (:mod:`.saved_config`), then where the encoder comes from (:mod:`.verify`),
before any weights are read.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from probekit.core.errors import UserError
from probekit.classifiers.model import Classifier

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
    """Write ``classifier.json``, ``classifier.safetensors`` (and ``encoder/`` when fine-tuned) into ``folder``,
    then ``manifest.json``; a failure (a full disk) leaves none of them."""
    from safetensors.torch import save_file

    from probekit.classifiers.verify import model_files, saving, write_manifest

    if hasattr(clf, "vocab"):                  # an encoder trained from scratch: its own files, the same manifest
        from probekit.classifiers.scratch_saved import VOCABULARY, save_scratch

        with saving(Path(folder)):
            save_scratch(clf, folder, fmt=FORMAT, config_name=CONFIG, weights_name=WEIGHTS)
            write_manifest(folder, [CONFIG, WEIGHTS, VOCABULARY])
        return Path(folder)
    folder = Path(folder)
    config = classifier_config(clf)
    state = {k: v.detach().to("cpu").contiguous() for k, v in clf.head.state_dict().items()}
    with saving(folder):
        folder.mkdir(parents=True, exist_ok=True)
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
        write_manifest(folder, model_files(folder, [CONFIG, WEIGHTS, *([ENCODER] if (folder / ENCODER).is_dir()
                                                                      else [])]))
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
    --task multiple-choice`` folder gives its :class:`~probekit.classifiers.multiple_choice.model.MultipleChoiceModel`; a plain
    Hugging Face sequence-classifier folder, or a model id in the local cache, an :class:`~.hf_model.HFClassifier`."""
    from safetensors.torch import load_file

    from probekit.core.encoder import load_encoder

    from probekit.classifiers.hf_model import hf_classifier_or_none

    hf = hf_classifier_or_none(folder, device=device)   # a plain Hugging Face sequence classifier (or model id)
    if hf is not None:
        return hf
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"--classifier {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"--classifier {folder} is a file, not a classifier folder")
    cfg_path = _config_path(folder)
    return _load_probekit_folder(cfg_path, device=device)


#: what a classifier folder's model is made of (the manifest lists these; nothing else may be added)
SCOPE = (CONFIG, WEIGHTS, ENCODER)
RESAVE = "; re-save it with pk.save_classifier(pk.load_classifier(DIR), NEW_DIR) to add one"


def _load_probekit_folder(cfg_path: Path, *, device: str) -> Classifier:
    """A probekit classifier folder, verified (manifest, config, encoder source) before its weights are read."""
    from probekit.classifiers.saved_config import check_against_model, check_config
    from probekit.classifiers.verify import check_manifest, encoder_location, load_encoder_checked, load_weights

    base = cfg_path.parent
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{cfg_path}: not a valid classifier config ({exc.__class__.__name__}: {exc})") from None
    if isinstance(cfg, dict) and cfg.get("task") == "multiple-choice":
        from probekit.classifiers.multiple_choice.saved import load_multiple_choice

        return load_multiple_choice(cfg_path, cfg, device=device)
    if isinstance(cfg, dict) and "scratch" in cfg and cfg.get("format") == FORMAT:
        from probekit.classifiers.scratch_saved import VOCABULARY, load_scratch

        check_manifest(base, (*SCOPE, VOCABULARY), legacy_hint=RESAVE)
        return load_scratch(cfg_path, cfg, device=device, weights_name=WEIGHTS)
    if isinstance(cfg, dict) and cfg.get("format") != FORMAT:
        raise UserError(f"{cfg_path}: classifier format {cfg.get('format')!r}; this probekit reads {FORMAT}")
    check_manifest(base, SCOPE, legacy_hint=RESAVE)
    cfg = check_config(cfg, cfg_path)
    labels, head, mode, enc_info = cfg["labels"], cfg["head"], cfg["encoder_mode"], cfg["encoder"]
    weights = base / WEIGHTS
    if not weights.is_file():
        raise UserError(f"{base}: {WEIGHTS} is missing")
    if mode == "finetune":
        enc_dir = base / ENCODER
        if not enc_dir.is_dir():
            raise UserError(f"{base}: the fine-tuned encoder folder {ENCODER}/ is missing")
        encoder = load_encoder_checked(str(enc_dir), device=device)
        encoder.name = enc_info["name"]
    else:
        where = encoder_location(base, enc_info, cfg_path)
        encoder = load_encoder_checked(where, device=device)
        if where is not None and where != enc_info["source"]:
            # a model that moved: the fingerprint hashes its name and path too, so compare it under the recorded ones
            encoder.name, encoder.model.config._name_or_path = enc_info["name"], enc_info["source"]
            encoder._fingerprint = None
        if encoder.fingerprint() != enc_info["fingerprint"]:
            raise UserError(f"{cfg_path}: the encoder {encoder.source} differs from the one this classifier "
                            f"was trained with (fingerprint {encoder.fingerprint()} ≠ {enc_info['fingerprint']})")
    state = load_weights(weights, "classifier head's weights")
    check_against_model(cfg, cfg_path, encoder, state)
    try:
        clf = Classifier(encoder, labels, head=head, level=cfg["level"], encoder_mode=mode, layer=cfg["layer"],
                         max_length=cfg["max_length"], **cfg.get("options", {}))
        clf.head.load_state_dict(state)
    except (RuntimeError, ValueError, OSError) as exc:
        raise UserError(f"{weights}: does not fit this classifier ({str(exc).splitlines()[0]})") from None
    return clf.to(device).eval()


def _is_default(info: dict) -> bool:
    from probekit.core.encoder import DEFAULT_MODEL

    return info.get("name") == DEFAULT_MODEL


def classifier_summary(folder) -> dict:
    """The saved config, for records."""
    return json.loads(_config_path(Path(folder)).read_text(encoding="utf-8"))



def recorded_split(folder, name: str):
    """The ``train``/``dev`` data a classifier folder's run record (``config.json``) names, resolved so the
    folder can move: a relative path is tried from where ``classify`` ran (``cwd`` in the record), then from the
    classifier folder, then from here. None when the record names no file or set; a path that resolves nowhere
    is an error that says it comes from the record."""
    from probekit.corpora.labelled import is_named

    if folder is None or not (Path(folder) / "config.json").is_file():
        return None
    record_path = Path(folder) / "config.json"
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        value = record.get("arguments", {}).get(name)
    except (OSError, ValueError, AttributeError):
        return None
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v and not v.endswith(" examples") for v in values):
        return None
    cwd = record.get("cwd")
    out = []
    for v in values:
        if is_named(v):
            out.append(v)
            continue
        tries = [Path(v)] if Path(v).is_absolute() else [
            *([Path(cwd) / v] if isinstance(cwd, str) else []), Path(folder) / v, Path(v)]
        found = next((p for p in tries if p.is_file()), None)
        if found is None:
            where = f" (relative to {cwd}, where classify ran)" if isinstance(cwd, str) and not Path(v).is_absolute() else ""
            raise UserError(f"{record_path} records --{name} {v}{where}, which no longer resolves (tried "
                            f"{', '.join(map(str, dict.fromkeys(tries)))}); pass --{name} FILE")
        out.append(str(found))
    return out if isinstance(value, list) else out[0]
