"""A multiple-choice reading-comprehension model on any encoder (Si et al. 2019's setting).

Each option becomes one sequence ``[CLS] passage [SEP] question option [SEP]`` (the tokenizer's own pair
layout: ``<s> P </s></s> Q O </s>`` for RoBERTa); the model gives one score per sequence and a softmax over an
item's options picks the answer. Where transformers has an ``AutoModelForMultipleChoice`` class for the
architecture (BERT, RoBERTa, DistilBERT, ALBERT, ELECTRA …) that class is the model: built from the encoder's
config with a seeded head, its encoder replaced by a copy of the :class:`~probekit.core.encoder.Encoder`'s
pre-trained weights (so the caller's encoder is never modified). Otherwise the same head (dropout + linear on
the pooled output, else the first token's vector) is built on the encoder.

Truncation cuts only the passage (``truncation="only_first"``); an item whose question + option alone do not
fit ``max_length`` is a :class:`UserError`. Options may differ in number between items: scores are [N, k_max]
with ``-inf`` where an item has fewer options, so a softmax gives those 0.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from probekit.core.encoder import Encoder
from probekit.core.errors import UserError
from probekit.corpora.multiple_choice import MCItem


def has_hf_head(model_type: str) -> bool:
    """True when transformers has an ``AutoModelForMultipleChoice`` class for ``model_type``."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES

    return model_type in MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES


@dataclass
class EncodedItem:
    """One item's option sequences (lists of token ids, one per option) and whether its passage was cut."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    truncated: bool

    @property
    def length(self) -> int:
        return max(len(x) for x in self.input_ids)

    @property
    def k(self) -> int:
        return len(self.input_ids)


class ScoreHead(nn.Module):
    """Dropout + linear → one score per sequence (the head of ``BertForMultipleChoice``)."""

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, 1)

    def forward(self, pooled):
        return self.classifier(self.dropout(pooled)).squeeze(-1)


class MultipleChoiceModel(nn.Module):
    """``forward(input_ids [B,k,T], attention_mask, token_type_ids=None) → [B,k]`` logits, like transformers'
    multiple-choice models. Attributes: ``encoder`` (an :class:`Encoder` whose ``model`` is this model's own
    encoder, so analyses of the fine-tuned model use it), ``tokenizer``, ``max_length``, ``hf`` (True when
    ``net`` is a transformers ``AutoModelForMultipleChoice``), ``net`` (that model) or ``head`` (the fallback)."""

    def __init__(self, encoder: Encoder, *, max_length: int | None = None, seed: int = 0, hf: bool | None = None,
                 dropout: float | None = None):
        super().__init__()
        model_type = encoder.config.model_type
        self.hf = has_hf_head(model_type) if hf is None else bool(hf)
        base = copy.deepcopy(encoder.model)
        for p in base.parameters():
            p.requires_grad_(True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)   # the head's initialisation is seeded; the global RNG is left as it was
            if self.hf:
                from transformers import AutoModelForMultipleChoice

                config = encoder.config.__class__.from_dict(encoder.config.to_dict())
                config.architectures = None
                net = AutoModelForMultipleChoice.from_config(config)
                prefix = net.base_model_prefix
                if type(getattr(net, prefix, None)) is not type(base):
                    raise ValueError(f"{type(net).__name__}.{prefix} is not a {type(base).__name__}")
                setattr(net, prefix, base)
                self.net = net.to(encoder.device)
            else:
                self.base = base
                p = dropout if dropout is not None else float(getattr(encoder.config, "hidden_dropout_prob", 0.1))
                self.head = ScoreHead(encoder.hidden_size, p).to(encoder.device)
        self.encoder = dataclasses.replace(encoder, model=base, _fingerprint=None)
        self.source_name = encoder.name
        self.tokenizer = encoder.tokenizer
        self.max_length = min(max_length or encoder.max_length, encoder.max_length)
        self.uses_token_types = ("token_type_ids" in self.tokenizer.model_input_names
                                  and bool(getattr(encoder.config, "type_vocab_size", 0)))
        self.eval()

    @property
    def device(self) -> torch.device:
        return self.encoder.input_embeddings.weight.device

    def head_state(self) -> dict[str, torch.Tensor]:
        """The weights outside the encoder (the scoring head), with the names this model gives them."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(self._base_key())}

    def _base_key(self) -> str:
        return f"net.{self.net.base_model_prefix}." if self.hf else "base."

    # --- scoring ------------------------------------------------------------------------------------------------

    def flat_scores(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """[M] scores of M option sequences [M, T] (any mix of items)."""
        kwargs = {"attention_mask": attention_mask}
        if token_type_ids is not None and self.uses_token_types:
            kwargs["token_type_ids"] = token_type_ids
        if self.hf:   # transformers' own forward: the M sequences as the choices of one item
            return self.net(input_ids=input_ids[None], **{k: v[None] for k, v in kwargs.items()}).logits[0]
        out = self.base(input_ids=input_ids, **kwargs)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            pooled = out.last_hidden_state[:, 0]
        return self.head(pooled)

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        b, k, t = input_ids.shape
        flat = self.flat_scores(input_ids.reshape(b * k, t), attention_mask.reshape(b * k, t),
                                None if token_type_ids is None else token_type_ids.reshape(b * k, t))
        return flat.reshape(b, k)

    # --- inputs -------------------------------------------------------------------------------------------------

    def encode(self, items: Sequence[MCItem]) -> list[EncodedItem]:
        """Token ids of every (passage, question ⊕ option) pair; only the passage is ever cut."""
        tok, L = self.tokenizer, self.max_length
        specials = tok.num_special_tokens_to_add(pair=True)
        firsts, seconds = [], []
        for it in items:
            for o in it.options:
                firsts.append(it.passage)
                seconds.append(qo_text(it.question, o))
        if not firsts:
            return []
        qo_len = [len(x) for x in tok(seconds, add_special_tokens=False)["input_ids"]]
        passages = list(dict.fromkeys(it.passage for it in items))
        p_len = dict(zip(passages, (len(x) for x in tok(passages, add_special_tokens=False)["input_ids"])))
        j = 0
        for it in items:
            for i in range(it.k):
                if qo_len[j + i] + specials >= L:
                    raise UserError(f"{it.meta.get('source') or it.id or 'item'}: question + option {i + 1} take "
                                    f"{qo_len[j + i]} tokens, leaving no room for the passage within "
                                    f"--max-length {L} (raise --max-length)")
            j += it.k
        enc = tok(firsts, seconds, truncation="only_first", max_length=L)
        ids, types = enc["input_ids"], enc.get("token_type_ids") if self.uses_token_types else None
        out, j = [], 0
        for it in items:
            cut = any(p_len[it.passage] + qo_len[j + i] + specials > L for i in range(it.k))
            out.append(EncodedItem(ids[j:j + it.k], None if types is None else types[j:j + it.k], cut))
            j += it.k
        return out

    def collate(self, encoded: Sequence[EncodedItem]) -> dict:
        """Flat padded tensors of all option sequences: input_ids/attention_mask(/token_type_ids) [M, T] and
        ``counts`` (options per item)."""
        seqs = [s for e in encoded for s in e.input_ids]
        T = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(seqs), T), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), T), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, :len(s)] = torch.tensor(s)
            mask[r, :len(s)] = 1
        batch = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}
        if encoded[0].token_type_ids is not None:
            tt = torch.zeros((len(seqs), T), dtype=torch.long)
            for r, s in enumerate(t for e in encoded for t in e.token_type_ids):
                tt[r, :len(s)] = torch.tensor(s)
            batch["token_type_ids"] = tt.to(self.device)
        batch["counts"] = [e.k for e in encoded]
        return batch

    def batch_scores(self, batch: dict, k_max: int | None = None) -> torch.Tensor:
        """[B, k_max] scores of a collated batch, ``-inf`` where an item has fewer options."""
        counts = batch["counts"]
        flat = self.flat_scores(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        return group_scores(flat, counts, k_max)

    @torch.no_grad()
    def scores(self, items: Sequence[MCItem], batch_size: int = 8, *, encoded=None) -> np.ndarray:
        """[N, k_max] float64 logits (eval mode), ``-inf`` past an item's last option."""
        encoded = self.encode(items) if encoded is None else encoded
        k_max = max(e.k for e in encoded)
        out = np.full((len(encoded), k_max), -np.inf)
        was = self.training
        self.eval()
        for idx in length_batches(encoded, batch_size):
            s = self.batch_scores(self.collate([encoded[i] for i in idx]), k_max)
            out[idx] = s.double().cpu().numpy()
        self.train(was)
        return out

    def predict_proba(self, items: Sequence[MCItem], batch_size: int = 8) -> np.ndarray:
        """[N, k_max] probability of each option (softmax of :meth:`scores` over the item's options; 0 past its
        last option), in input order: the classifier protocol (:mod:`.protocol`) for multiple choice."""
        return softmax(self.scores(items, batch_size))


def qo_text(question: str, option: str) -> str:
    """The second sequence of a pair: question ⊕ option."""
    return f"{question} {option}".strip()


def group_scores(flat: torch.Tensor, counts: Sequence[int], k_max: int | None = None) -> torch.Tensor:
    """Flat [M] scores → [B, k_max], ``-inf`` padded (differentiable)."""
    k_max = k_max or max(counts)
    rows = torch.repeat_interleave(torch.arange(len(counts), device=flat.device),
                                   torch.as_tensor(counts, device=flat.device))
    cols = torch.cat([torch.arange(c, device=flat.device) for c in counts])
    out = torch.full((len(counts), k_max), float("-inf"), dtype=flat.dtype, device=flat.device)
    return out.index_put((rows, cols), flat)


def length_batches(encoded: Sequence[EncodedItem], batch_size: int) -> list[list[int]]:
    """Items in order of length, ``batch_size`` per batch (evaluation: no shuffling, little padding)."""
    order = sorted(range(len(encoded)), key=lambda i: encoded[i].length)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of [N, k] scores with ``-inf`` padding (padding gets probability 0)."""
    s = scores - scores.max(1, keepdims=True)
    p = np.exp(s)
    return p / p.sum(1, keepdims=True)
