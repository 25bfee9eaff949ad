"""Export a probekit classifier as a standard Hugging Face sequence classifier.

The folder written holds ``config.json`` (with ``id2label``/``label2id``), safetensors weights and the tokenizer,
and loads with ``AutoModelForSequenceClassification.from_pretrained(folder)`` — no ``trust_remote_code``, so
only classifiers whose head *is* a standard head can be exported: the ``cls`` head reading the last layer of a
BERT, ALBERT, RoBERTa, ELECTRA or DistilBERT encoder (fine-tuned or frozen). Its dense + activation + linear
layers go where the architecture's own head keeps them (``saved.hf_model``). Pooling heads (attention, max,
mean) read every word, which no standard head does; they are refused in one line.

Before the folder is put in place, the reloaded model's logits are checked against the classifier's on a
sentence, so a folder that would give other numbers is never written.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from probekit.core.errors import UserError

#: the largest logit difference accepted between the classifier and its exported model (float32 rounding)
TOLERANCE = 1e-4
CHECK_SENTENCE = "The old teacher walked slowly to the village school every morning ."


def export_refusal(clf) -> str:
    """Why ``clf`` cannot be a standard Hugging Face sequence classifier ("" when it can)."""
    from probekit.classifiers.saved import _HF_LAYOUT

    if clf.head_type != "cls":
        return (f"its {clf.head_type!r} head pools every word, and a standard Hugging Face sequence-classification "
                f"head reads only the [CLS] vector (that would need custom code); train it with --head cls")
    if getattr(clf, "encoder", None) is None:
        return "it has no encoder (--encoder none), and a Hugging Face classifier is an encoder with a head"
    if clf.layer != clf.source.num_layers:
        return (f"its head reads layer {clf.layer}, and a standard head reads the last layer "
                f"({clf.source.num_layers})")
    model_type = clf.source.config.model_type
    if model_type not in _HF_LAYOUT:
        return (f"no standard head layout is known for {model_type!r} encoders "
                f"(known: {', '.join(sorted(_HF_LAYOUT))})")
    return ""


def export_hf(classifier, out, *, overwrite: bool = False) -> Path:
    """Write ``classifier`` (a loaded classifier or its folder) to the folder ``out`` as a Hugging Face
    ``AutoModelForSequenceClassification`` checkpoint with its tokenizer; returns ``out``. A Hugging Face
    classifier (:class:`~probekit.classifiers.hf_model.HFClassifier`) is saved as it is."""
    from transformers import AutoModelForSequenceClassification

    from probekit.classifiers.hf_model import HFClassifier, as_classifier
    from probekit.classifiers.saved import hf_model, load_classifier

    clf = load_classifier(classifier) if isinstance(classifier, (str, os.PathLike)) else as_classifier(classifier)
    if not hasattr(clf, "head_type"):
        raise UserError(f"export: expected a classifier or its folder, got {type(classifier).__name__}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise UserError(f"export: {out} exists and is not empty (pass overwrite=True to replace it)")
    if isinstance(clf, HFClassifier):
        model = clf.hf
    else:
        why = export_refusal(clf)
        if why:
            raise UserError(f"export: this classifier cannot be a standard Hugging Face model: {why}")
        model = hf_model(clf)
    clf.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        clf.tokenizer.save_pretrained(tmp)
        reloaded = AutoModelForSequenceClassification.from_pretrained(tmp, local_files_only=True).eval()
        _check_same_logits(clf, reloaded)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


@torch.no_grad()
def _check_same_logits(clf, reloaded) -> None:
    """The exported model must give the classifier's logits on a sentence (a pair too, for models with segments)."""
    from probekit.core.examples import Example

    words = CHECK_SENTENCE.split()
    examples = [Example(words=words), Example(words=words[:5], words_b=words[5:])]
    batch = clf.encode(examples, warn=False)
    words_of = batch.pop("words")
    ours = clf(**batch).float()
    inputs = {k: v for k, v in batch.items() if k != "word_ids"}
    theirs = reloaded.to(ours.device)(**inputs).logits.float()
    gap = float((ours - theirs).abs().max())
    if gap > TOLERANCE:
        raise RuntimeError(f"the exported model's logits differ from the classifier's by {gap:.2e} "
                           f"(on {' '.join(words_of[0])!r}); nothing was written")
