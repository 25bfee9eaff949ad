"""Any Hugging Face sequence classifier, explained like probekit's own classifiers.

:class:`HFClassifier` wraps an ``AutoModelForSequenceClassification`` and its fast tokenizer behind the interface
every analysis uses (``labels``, ``level``, ``head_type``, ``encoder_mode``, ``layer``, ``source``, ``tokenizer``,
``embedding_layer``, ``encode``/``tokenize``/``collate``, ``forward_with_weights``, ``predict``). Inputs are
tokenised and aligned to words by probekit's own code (``encode`` is :class:`~probekit.classifiers.model.Classifier`'s),
so word scores are aggregated exactly as for a probekit classifier; the logits are the model's own.

Such a model reads the last layer's [CLS] vector through its own head and has no pooling weights, so it presents
itself as a ``cls`` head at the last layer with a fine-tuned encoder: the pooling attribution method and the
experiments that retrain pooling heads say in one line that they do not apply, and the experiments that intervene
on attention use the last layer's [CLS] attention (``--attention cls``), recomputing the model's own head from the
recomputed [CLS] vector (:class:`HFHead`).

Loading never runs code from a checkpoint (no ``trust_remote_code``) and never downloads: a model id must already
be in the local Hugging Face cache.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from torch import nn

from probekit.core.encoder import Encoder, _needs_prefix_space
from probekit.core.errors import UserError
from probekit.classifiers.model import Classifier

SUFFIX = "ForSequenceClassification"
#: what a Hugging Face model id looks like ("name" or "owner/name"), as opposed to a path
_MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class HFHead(nn.Module):
    """The model's own classification head, applied to a [CLS] vector [B, D] → (logits, None, {}).

    Sequence-classification heads of these architectures read only the last layer's first token: BERT and ALBERT
    through the encoder's pooler, RoBERTa and ELECTRA through a head that takes the hidden states and reads
    position 0, DistilBERT through ``pre_classifier`` + ReLU. ``--attention cls`` needs this to recompute the
    output from an imposed [CLS] attention row."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        base = model.base_model
        pooler, classifier = getattr(base, "pooler", None), getattr(model, "classifier", None)
        if hasattr(model, "pre_classifier"):
            self.kind = "pre_classifier"
        elif pooler is not None and isinstance(classifier, nn.Linear):
            self.kind = "linear-pooler" if isinstance(pooler, nn.Linear) else "pooler"
        elif isinstance(classifier, nn.Module) and not isinstance(classifier, nn.Linear):
            self.kind = "sequence-head"
        else:
            self.kind = None

    def forward(self, units, mask, cls):
        m, base = self.model, self.model.base_model
        if self.kind == "pre_classifier":
            pooled = m.dropout(torch.relu(m.pre_classifier(cls)))
        elif self.kind == "linear-pooler":                      # ALBERT: pooler is a Linear + tanh
            pooled = m.dropout(base.pooler_activation(base.pooler(cls)))
        elif self.kind == "pooler":                             # BERT: the pooler reads position 0
            pooled = m.dropout(base.pooler(cls.unsqueeze(1)))
        elif self.kind == "sequence-head":                      # RoBERTa, ELECTRA: the head reads position 0
            return m.classifier(cls.unsqueeze(1)), None, {}
        else:
            raise UserError(f"a {type(m).__name__}'s head cannot be recomputed from the [CLS] vector; "
                            f"the [CLS]-attention experiments support BERT, RoBERTa, ELECTRA, ALBERT and "
                            f"DistilBERT sequence classifiers")
        return m.classifier(pooled), None, {}


class HFClassifier(nn.Module):
    """A Hugging Face sequence classifier with the interface of :class:`~probekit.classifiers.model.Classifier`.

    ``HFClassifier(model, tokenizer)`` wraps a loaded ``PreTrainedModel`` (``…ForSequenceClassification``) and its
    fast tokenizer; :meth:`load` reads a local folder or a model id already in the Hugging Face cache. ``level``
    is the unit of ``encode`` (``"word"``, or ``"token"`` for sub-tokens)."""

    head_type = "cls"             # reads the last layer's [CLS] vector; no pooling weights
    encoder_mode = "finetune"     # the whole model is the classifier
    attention_source = "cls"      # what faithfulness intervenes on (there is no pooling head)

    def __init__(self, model, tokenizer, *, name: str | None = None, source: str | None = None,
                 level: str = "word"):
        super().__init__()
        if not type(model).__name__.endswith(SUFFIX) or not hasattr(model, "base_model"):
            raise UserError(f"expected a Hugging Face …{SUFFIX} model, got {type(model).__name__}")
        if not getattr(tokenizer, "is_fast", False):
            raise UserError(f"the tokenizer {type(tokenizer).__name__} is not a fast tokenizer; word alignment "
                            f"needs one (AutoTokenizer.from_pretrained(..., use_fast=True))")
        if _needs_prefix_space(tokenizer):
            raise UserError("this byte-level BPE tokenizer encodes pre-split words as sentence starts; load it "
                            "with AutoTokenizer.from_pretrained(..., add_prefix_space=True)")
        if level not in ("word", "token"):
            raise ValueError("level must be 'word' or 'token'")
        config = model.config
        if int(getattr(config, "num_labels", 0)) < 2:
            raise UserError(f"{name or type(model).__name__}: a head with {config.num_labels} output is a "
                            f"regression, not a classifier; there are no classes to explain")
        if getattr(config, "problem_type", None) == "multi_label_classification":
            raise UserError(f"{name or type(model).__name__}: a multi-label classifier scores every label on its "
                            f"own (sigmoid); probekit's analyses explain one class per input (softmax)")
        id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
        self.labels = [id2label.get(i, f"LABEL_{i}") for i in range(int(config.num_labels))]
        self.hf = model.eval()
        self.tokenizer = tokenizer
        device = next(model.parameters()).device
        name = name or str(getattr(config, "_name_or_path", "") or type(model).__name__)
        self.source = Encoder(name=name, source=source or name, model=model.base_model, tokenizer=tokenizer,
                              attention=False, device=str(device))
        self.encoder = self.source
        self.level = level
        self.layer = self.source.num_layers
        self.max_length = self.source.max_length
        self.embedding_layer = model.get_input_embeddings()
        self.head = HFHead(model)
        self.uses_token_types = ("token_type_ids" in tokenizer.model_input_names
                                 and bool(getattr(config, "type_vocab_size", 0)))
        self._special_ids = sorted(set(tokenizer.all_special_ids))
        self.options = {}

    @classmethod
    def load(cls, name_or_path, *, device: str = "cpu", cache_dir=None) -> "HFClassifier":
        """A local folder or a model id already in the Hugging Face cache (``cache_dir``: another cache)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        src = str(name_or_path)
        local = os.path.isdir(src)
        if not local and not in_cache(src, cache_dir):
            raise UserError(f"--classifier {src}: no such folder, and no Hugging Face model of that id in the "
                            f"local cache (probekit never downloads; pass a local folder)")
        kwargs = dict(local_files_only=True, cache_dir=cache_dir)
        try:
            config = _read_config(src, cache_dir)
            if config.get("auto_map"):
                raise UserError(f"--classifier {src}: this model needs its own code (auto_map in config.json), "
                                f"which probekit never runs (no trust_remote_code)")
            _check_architecture(src, config)
            tokenizer = AutoTokenizer.from_pretrained(src, use_fast=True, **kwargs)
            if _needs_prefix_space(tokenizer):
                tokenizer = AutoTokenizer.from_pretrained(src, use_fast=True, add_prefix_space=True, **kwargs)
            model = AutoModelForSequenceClassification.from_pretrained(src, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"--classifier {src}: cannot load it as a Hugging Face sequence classifier "
                            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        return cls(model.to(device), tokenizer, name=Path(src).name if local else src, source=src)

    # --- the Classifier interface ---------------------------------------------------------------------------

    def to(self, *args, **kwargs):
        out = super().to(*args, **kwargs)
        self.source.device = str(self.device)            # the Encoder's record of where its model is
        return out

    def _model_kwargs(self, input_ids, attention_mask, token_type_ids=None) -> dict:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and self.uses_token_types:
            kwargs["token_type_ids"] = token_type_ids
        return kwargs

    def token_vectors(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """[B, T, D]: the last layer's hidden states (what the model's head reads at [CLS])."""
        out = self.hf.base_model(**self._model_kwargs(input_ids, attention_mask, token_type_ids), return_dict=True)
        return out.last_hidden_state

    def forward_with_weights(self, input_ids, attention_mask, token_type_ids=None, word_ids=None, words=None):
        """(the model's logits [B, C], None: no pooling weights, {})."""
        out = self.hf(**self._model_kwargs(input_ids, attention_mask, token_type_ids), return_dict=True)
        return out.logits, None, {}

    def forward(self, input_ids, attention_mask, token_type_ids=None, word_ids=None):
        return self.forward_with_weights(input_ids, attention_mask, token_type_ids, word_ids)[0]

    # device, tokenisation, word alignment, padding and prediction are exactly the probekit classifier's
    device = Classifier.device
    n_classes = Classifier.n_classes
    units = Classifier.units
    encode = Classifier.encode
    tokenize = Classifier.tokenize
    collate = Classifier.collate
    predict = Classifier.predict
    predict_proba = Classifier.predict_proba

    def attention_encoder(self) -> Encoder:
        """The encoder with attention maps (eager attention), for ``compare``: the model's own base model."""
        base = self.hf.base_model
        if getattr(base.config, "_attn_implementation", None) not in (None, "eager"):
            base.set_attn_implementation("eager")      # SDPA kernels return no attention maps; same numbers
        return Encoder(name=self.source.name, source=self.source.source, model=base, tokenizer=self.tokenizer,
                       attention=True, device=str(self.device))


def in_cache(model_id: str, cache_dir=None) -> bool:
    """Whether ``model_id`` (not a path) has a config.json in the local Hugging Face cache."""
    if not _MODEL_ID.match(model_id):
        return False
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(model_id, "config.json", cache_dir=cache_dir)
    except ValueError:                                  # not a valid repo id
        return False
    return isinstance(found, str)


def _read_config(src: str, cache_dir=None) -> dict:
    if os.path.isdir(src):
        path = Path(src) / "config.json"
    else:
        from huggingface_hub import try_to_load_from_cache

        path = Path(try_to_load_from_cache(src, "config.json", cache_dir=cache_dir))
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable model config ({exc.__class__.__name__})") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: not a model config (a JSON object)")
    return config


def _check_architecture(src: str, config: dict) -> None:
    """A model without a trained sequence-classification head would get a random one: refused."""
    arch = [str(a) for a in config.get("architectures") or []]
    if not any(a.endswith(SUFFIX) for a in arch):
        raise UserError(f"--classifier {src}: a Hugging Face {', '.join(arch) or config.get('model_type', '')} "
                        f"model without a sequence-classification head (its config.json's architectures do not "
                        f"end in {SUFFIX}); train a head on it with python -m probekit.classify --model {src}")


def hf_classifier_or_none(path, *, device: str = "cpu") -> HFClassifier | None:
    """The dispatch of ``load_classifier``: an :class:`HFClassifier` when ``path`` is a plain Hugging Face
    sequence classifier (a folder whose config.json's architectures end in ForSequenceClassification and that has
    no classifier.json, or a model id in the local cache); None for anything else (a probekit classifier folder)."""
    src = str(path)
    if os.path.isdir(src):
        folder = Path(src)
        if (folder / "classifier.json").is_file() or not (folder / "config.json").is_file():
            return None
        if "model_type" not in _read_config(src):       # a probekit run record, not a model config
            return None
        return HFClassifier.load(src, device=device)
    if os.path.exists(src) or not _MODEL_ID.match(src):
        return None
    return HFClassifier.load(src, device=device)       # a model id: cached, or one clear line


def as_classifier(obj):
    """``(model, tokenizer)`` → :class:`HFClassifier`; a bare Hugging Face model is refused in one line; anything
    else is returned as it is (a folder, a model id, a loaded classifier)."""
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and hasattr(obj[0], "config") \
            and hasattr(obj[1], "convert_ids_to_tokens"):
        return HFClassifier(obj[0], obj[1])
    if hasattr(obj, "config") and type(obj).__name__.endswith(SUFFIX) and not isinstance(obj, HFClassifier):
        raise UserError(f"give the {type(obj).__name__} together with its tokenizer: (model, tokenizer)")
    return obj


def finetuned_encoder(obj, *, device: str = "cpu"):
    """For ``compare``: (encoder with attention, what it is) when ``obj`` is a Hugging Face classifier given as an
    :class:`HFClassifier`, a ``(model, tokenizer)`` pair or a cached model id; None otherwise."""
    obj = as_classifier(obj)
    if isinstance(obj, (str, os.PathLike)) and not os.path.exists(obj) and in_cache(str(obj)):
        obj = HFClassifier.load(obj, device=device)
    if not isinstance(obj, HFClassifier):
        return None
    return obj.to(device).attention_encoder(), {"kind": "Hugging Face classifier", "path": obj.source.source,
                                                 "base": None, "labels": list(obj.labels)}
