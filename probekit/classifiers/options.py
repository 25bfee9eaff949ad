"""The options of ``pk.classify`` and ``python -m probekit.classify``, declared once (:mod:`probekit.core.options`),
and the checks between them that need no data: which options apply to which task, encoder and head.

Epochs, learning rate, weight decay and batch size are None unless given: their defaults depend on the task and
the encoder (:data:`DEFAULT_EPOCHS`, :data:`DEFAULT_LR`; multiple choice: ``mc_train.MC_DEFAULTS``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from probekit.core import checks
from probekit.core.errors import UserError
from probekit.core.options import (CacheOptions, ModelOptions, SampleOptions, data_root_option, max_length, option,
                            optional_above_zero, optional_positive, positive)
from probekit.classifiers.pooling import HEADS
from probekit.classifiers.scratch import ENCODERS as SCRATCH
from probekit.classifiers.scratch_train import SCRATCH_DEFAULTS, check_options as check_scratch_options, sizes_help
from probekit.classifiers.vocab import UNITS

#: mode-dependent defaults (``None`` in the options picks these)
DEFAULT_EPOCHS = {"frozen": 20, "none": 20, "finetune": 3, **{e: SCRATCH_DEFAULTS["epochs"] for e in SCRATCH}}
DEFAULT_LR = {"frozen": 1e-3, "none": 1e-3, "finetune": 5e-5, **{e: SCRATCH_DEFAULTS["lr"] for e in SCRATCH}}
DEFAULT_WEIGHT_DECAY = 0.01   # AdamW, transformer modes; encoders from scratch: SCRATCH_DEFAULTS (Adam, 1e-5)
DEFAULT_BATCH_SIZE = 32   # --task multiple-choice: probekit.classifiers.multiple_choice.train.MC_DEFAULTS
TASKS = ("classification", "multiple-choice")
#: the frozen cls head starts from the checkpoint's pooler (dense + tanh) and needs larger steps to leave it:
#: on RT, 1e-3 gave 0.698 test accuracy, below logistic regression on the same [CLS] vectors (0.716); 3e-3 0.715
FROZEN_CLS_LR = 3e-3

#: options that only --task classification reads (multiple choice refuses them unless left at their default)
CLASSIFICATION_ONLY = ("head", "encoder", "finetune", "level", "layer", "attention_dim", "n_heads", "dropout",
                       "limit", "units", "min_count", "max_vocab", "vectors", "embedding_dim", "hidden_dim",
                       "linear_start")
#: options of --encoder lstm|cnn|average alone (a vocabulary of its own)
SCRATCH_ONLY = ("vectors", "max_vocab", "embedding_dim", "hidden_dim", "min_count")


def _mc(key: str):
    from probekit.classifiers.multiple_choice.train import MC_DEFAULTS

    return MC_DEFAULTS[key]


def _task_help() -> str:
    return ("classification (labelled texts) or multiple-choice (reading comprehension: MCTest .tsv with its .ans, "
            "JSON Lines with passage/question/options/answer, or mc160:SPLIT, mc500:SPLIT; defaults: "
            f"--epochs {_mc('epochs')} --lr {_mc('lr'):g} --head-lr {_mc('head_lr'):g} --batch-size "
            f"{_mc('batch_size')} --max-length {_mc('max_length')}; checkpoints in OUT.checkpoint/, so the same "
            "command again resumes a killed run after its last finished epoch)")


def _fraction(name, value):
    return checks.number(name, value, minimum=0, maximum=1)


def _dropout(name, value):
    return None if value is None else checks.number(name, value, minimum=0, maximum=0.99)


def _layer(name, value):
    return checks.integer(name, value, minimum=0, optional=True)


def _decay(name, value):
    return None if value is None else checks.number(name, value, minimum=0)


@dataclass(frozen=True, kw_only=True)
class ClassifyOptions(ModelOptions, CacheOptions, SampleOptions):
    """The options of :func:`~probekit.classifiers.classify.classify` (and ``python -m probekit.classify``)."""

    task: str = option("classification", _task_help, choices=TASKS)
    checkpoint: Any = option(None, "multiple-choice: checkpoint folder (default: OUT.checkpoint beside --out)",
                             metavar="DIR")
    train: Any = option(None, "training data: .jsonl, .tsv/.txt, .csv, or a named set NAME:SPLIT (rt, amazon, imdb, "
                              "yelp, sls, hatexplain, snli; splits train/dev/test); several are concatenated "
                              "(original + augmented data, e.g. from probekit.attack --augment)", nargs="+",
                        metavar="FILE")
    dev: Any = option(None, "dev data (model selection: the best dev epoch is kept)")
    test: Any = option(None, "test data (optional)")
    data_root: Any = data_root_option()
    load: Any = option(None, "evaluate the classifier saved in DIR on --test (and/or --dev) instead of training",
                       metavar="DIR")
    head: str = option("attention", "pooling head", choices=HEADS)
    encoder: str = option("frozen", "frozen encoder (cached word vectors), none: pool the input word embeddings, or "
                                    "an encoder trained from scratch over its own vocabulary: lstm (BiLSTM, Jain & "
                                    "Wallace), cnn (Conv1D k=3 + ReLU), average (per-unit Linear + tanh, no "
                                    f"context); defaults for these (Jain & Wallace's): {SCRATCH_DEFAULTS['epochs']} "
                                    f"epochs, Adam (amsgrad) lr {SCRATCH_DEFAULTS['lr']:g}, weight decay "
                                    f"{SCRATCH_DEFAULTS['weight_decay']:g} (none on the attention), no dropout, the "
                                    "epoch of best dev ROC-AUC (accuracy for 3+ classes) after the first kept",
                          choices=("frozen", "none", *SCRATCH))
    finetune: bool = option(False, "fine-tune the encoder with the head")
    level: str = option("word", "pool word vectors (mean of their sub-tokens) or sub-tokens",
                        choices=("word", "token"))
    layer: int | None = option(None, "hidden layer the head reads (default: the last)", type=int, check=_layer)
    attention_dim: int = option(128, "size of W in the attention score vᵀtanh(W h)", type=int, check=positive)
    n_heads: int = option(4, "pooling heads of attention-multi", type=int, check=positive)
    dropout: float | None = option(None, "dropout before the output layer (default 0.1; 0 for encoders from "
                                         "scratch, as Jain & Wallace train them)", type=float, check=_dropout)
    units: str = option("word", "encoders from scratch: word: whitespace-separated words; char: every character; "
                                "auto: CJK script one character at a time, other text as words", choices=UNITS)
    min_count: int = option(1, "encoders from scratch: keep units seen at least this often in --train (others "
                               "become <unk>)", type=int, check=positive)
    max_vocab: int | None = option(None, "encoders from scratch: at most this many units (padding and <unk> "
                                         "included)", type=int, check=optional_positive)
    vectors: Any = option(None, "encoders from scratch: pre-trained vectors, word2vec/GloVe text format (a local "
                                "file; its width must equal --embedding-dim); the share of the vocabulary it covers "
                                "is reported", metavar="FILE")
    embedding_dim: int | None = option(None, lambda: f"encoders from scratch: embedding size (default: "
                                                     f"{sizes_help()} embedding/hidden)", type=int,
                                       check=optional_positive)
    hidden_dim: int | None = option(None, "encoders from scratch: hidden size (per LSTM direction; CNN filters)",
                                    type=int, check=optional_positive)
    limit: int | None = option(None, "train on a seeded sample of N examples of --train (--seed), in file order",
                               type=int, metavar="N", check=optional_positive)
    epochs: int | None = option(None, f"epochs (default {DEFAULT_EPOCHS['frozen']} frozen/none, "
                                      f"{DEFAULT_EPOCHS['finetune']} fine-tuning)", type=int, check=optional_positive)
    lr: float | None = option(None, f"AdamW learning rate (default {DEFAULT_LR['frozen']:g} frozen/none, "
                                    f"{DEFAULT_LR['finetune']:g} fine-tuning; {FROZEN_CLS_LR:g} for the frozen cls "
                                    f"head)", type=float, check=optional_above_zero)
    head_lr: float | None = option(None, lambda: f"multiple-choice: learning rate of the scoring head and the "
                                                 f"encoder's pooler (default {_mc('head_lr'):g}; --lr is the rest "
                                                 f"of the encoder's)", type=float, check=optional_above_zero)
    weight_decay: float | None = option(None, f"weight decay (default {DEFAULT_WEIGHT_DECAY:g} AdamW; encoders "
                                              f"from scratch {SCRATCH_DEFAULTS['weight_decay']:g}, Adam)",
                                        type=float, check=_decay)
    warmup: float = option(0.1, "share of the steps for linear warm-up (then linear decay to 0)", type=float,
                           check=_fraction)
    baselines: bool = option(True, "skip the TF-IDF + logistic-regression and majority-class rows",
                             flag="--no-baselines", action="store_false")
    linear_start: bool = option(True, "a frozen attention or mean head starts from logistic regression on the "
                                      "mean-pooled vectors (uniform attention), kept as epoch 0 unless an epoch "
                                      "beats it on dev", flag="--no-linear-start", action="store_false")
    micro_batch: int | None = option(None, "multiple-choice: questions per forward pass inside a step (default: "
                                           "mc_train.MC_DEFAULTS)", check=optional_positive, cli=False)
    batch_size: int | None = option(None, lambda: f"examples per batch (default {DEFAULT_BATCH_SIZE}; "
                                                  f"multiple-choice: questions per optimiser step, default "
                                                  f"{_mc('batch_size')})", type=int, check=optional_positive)
    max_length: int | None = option(None, lambda: f"truncate inputs to this many tokens (default: the model's "
                                                  f"maximum; multiple-choice: {_mc('max_length')}, cutting only the "
                                                  f"passage)", type=int, check=max_length)
    out: Any = option(None, "the run folder the command writes (multiple choice: its checkpoints go beside it)",
                      cli=False)
    overwrite: bool = option(False, "whether the command may replace a non-empty --out", cli=False)

    def check(self) -> None:
        if isinstance(self.train, tuple) and len(self.train) == 1 and isinstance(self.train[0], (str, os.PathLike)):
            self._set(train=self.train[0])      # one file on the command line: as one spec in Python
        if self.task == "multiple-choice":
            defaults = type(self).__dataclass_fields__
            given = next((n for n in CLASSIFICATION_ONLY if getattr(self, n) != defaults[n].default), None)
            if given:
                raise UserError(f"{checks.flag(given)} applies to --task classification only")
            return
        for name in ("head_lr", "checkpoint", "micro_batch"):
            if getattr(self, name) is not None:
                raise UserError(f"{checks.flag(name)} applies to --task multiple-choice only")
        encoder, head = self.encoder, self.head
        check_scratch_options(encoder=encoder, finetune=self.finetune, layer=self.layer, level=self.level,
                              model=self.model, units=self.units)
        given = next((n for n in SCRATCH_ONLY if getattr(self, n) != type(self).__dataclass_fields__[n].default),
                     None)
        if given and encoder not in SCRATCH:
            raise UserError(f"{checks.flag(given)} applies to --encoder {'|'.join(SCRATCH)} (a vocabulary of its "
                            f"own); --encoder {encoder} uses the pre-trained model's")
        if encoder in SCRATCH and head == "cls":
            raise UserError(f"--head cls reads a transformer's [CLS] vector; --encoder {encoder} has none (use mean, "
                            f"max or attention)")
        if self.finetune and encoder == "none":
            raise UserError("--finetune needs an encoder (got --encoder none)")
        if encoder == "none" and head == "cls":
            raise UserError("--head cls reads the encoder's [CLS] vector; --encoder none has none (use mean, max "
                            "or attention)")

    @property
    def mode(self) -> str:
        """``finetune``, ``frozen``, ``none`` or the encoder trained from scratch."""
        return "finetune" if self.finetune else self.encoder
