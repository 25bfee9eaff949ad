"""``pk.classify``: train a pooling-head classifier (frozen encoder, fine-tuned, or no encoder), evaluate it
beside TF-IDF + logistic regression and the majority class, and save it.

Frozen (the default): word vectors come from the activation cache (``core.cache.get_activations``), so the
model runs once per data set and model; every later head, seed or learning rate on the same data makes no
model call and trains in seconds. ``encoder="none"`` pools the input word embeddings (no positions, no layers),
computed by a table lookup. ``finetune=True`` trains encoder and head together: AdamW, linear warm-up and decay,
gradient clipping at 1.0, seeded batches, and the weights of the best dev epoch kept. Every mode keeps the
best dev epoch (accuracy, then loss). Same seed → same numbers.
"""
from __future__ import annotations

import copy
import math
import os
import time

import numpy as np
import torch

from probekit.core.errors import UserError
from probekit.core.options import takes
from probekit.classifiers.batching import (history as _history, length_batches as _batches, live_logits,
                                           loss_accuracy as _loss_acc)
from probekit.classifiers.batching import schedule as _schedule
from probekit.corpora.labelled import load_split
from probekit.classifiers.baselines import LinearBaseline, baseline_rows
from probekit.classifiers.features import Features, cached_features, live_features
from probekit.classifiers.metrics import label_ids, metric_rows  # noqa: F401  (label_ids: re-exported)
from probekit.classifiers.model import Classifier
from probekit.classifiers.options import (CLASSIFICATION_ONLY, DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR,  # noqa: F401
                      DEFAULT_WEIGHT_DECAY, FROZEN_CLS_LR, TASKS, ClassifyOptions)  # (TASKS: re-exported)
from probekit.classifiers.scratch import ENCODERS as SCRATCH
from probekit.classifiers.scratch_train import SCRATCH_DEFAULTS, classify_scratch
from probekit.classifiers.report import ClassifyResult

@takes(ClassifyOptions, args=("train", "dev", "test"))
def classify(o: ClassifyOptions) -> ClassifyResult:
    """Train (or, with ``load=DIR``, only evaluate) a classifier; returns a :class:`ClassifyResult`.

    ``train``/``dev``/``test`` are files (JSON Lines, TSV/CSV), shared-set names (``"rt:train"``; see
    ``probekit.corpora.labelled``) or lists of Examples with ``meta["label"]``. ``epochs``/``lr`` default to
    20 / 1e-3 for a frozen encoder or none (lr 3e-3 for the frozen cls head), 3 / 5e-5 for fine-tuning.
    ``encoder="lstm"|"cnn"|"average"`` trains an encoder from scratch (``scratch_train``: 8 epochs, Adam 1e-3,
    weight decay 1e-5) over ``units`` (word, char, auto) with a vocabulary of the training split (``min_count``,
    ``max_vocab``), optional word ``vectors`` (a local word2vec/GloVe text file), ``embedding_dim``,
    ``hidden_dim``. ``limit`` trains on a seeded sample of that many training examples. A frozen attention or
    mean head starts from logistic regression on the mean-pooled vectors (``linear_start``; uniform attention),
    and that baseline is reported beside it (``{mode}-mean-logreg``) with the paired accuracy difference.
    ``task="multiple-choice"`` trains a reading-comprehension model (:func:`~.mc_run.classify_multiple_choice`).
    Options: :class:`~.options.ClassifyOptions`.
    """
    if o.task == "multiple-choice":   # the options refused classification-only ones
        from probekit.classifiers.multiple_choice.run import classify_multiple_choice

        skip = ("task", *CLASSIFICATION_ONLY) + tuple(n for n in ("weight_decay", "micro_batch", "checkpoint")
                                                     if getattr(o, n) is None)
        return classify_multiple_choice(**{n: getattr(o, n) for n in o.names() if n not in skip})
    train, dev, test, head, encoder, level, seed, device = o.train, o.dev, o.test, o.head, o.encoder, o.level, \
        o.seed, o.device
    scratch, mode = encoder in SCRATCH, o.mode
    epochs = DEFAULT_EPOCHS[mode] if o.epochs is None else o.epochs
    lr = o.lr if o.lr is not None else FROZEN_CLS_LR if (mode == "frozen" and head == "cls") else DEFAULT_LR[mode]
    weight_decay = o.weight_decay if o.weight_decay is not None else \
        SCRATCH_DEFAULTS["weight_decay"] if scratch else DEFAULT_WEIGHT_DECAY
    batch_size = DEFAULT_BATCH_SIZE if o.batch_size is None else o.batch_size
    given = {k: f"{len(v)} examples" for k, v in (("train", train), ("dev", dev), ("test", test))
             if isinstance(v, (list, tuple)) and not _specs(v)}
    dropout = o.dropout if o.dropout is not None else SCRATCH_DEFAULTS["dropout"] if scratch else 0.1
    arguments = {**o.record(), **given, "epochs": epochs, "lr": lr, "batch_size": batch_size,
                 "weight_decay": weight_decay, "dropout": dropout}   # the record says what was used, not None
    data_root, max_length = o.data_root, o.max_length
    if o.load is not None:
        return _evaluate_saved(o.load, dev=dev, test=test, batch_size=batch_size, device=device,
                               data_root=data_root, arguments=arguments)
    if train is None or dev is None:
        raise UserError("--train and --dev are required (or --load DIR with --test to evaluate a saved classifier)")
    splits = {"train": load_split(train, what="--train", data_root=data_root),
              "dev": load_split(dev, what="--dev", data_root=data_root)}
    if test is not None:
        splits["test"] = load_split(test, what="--test", data_root=data_root)
    splits["train"] = o.sample(splits["train"])
    labels = sorted({ex.meta["label"] for ex in splits["train"]})
    if len(labels) < 2:
        raise UserError(f"--train has only one label ({labels[0]!r}); a classifier needs at least two")
    y = {name: label_ids(exs, labels, name) for name, exs in splits.items()}

    if scratch:
        return classify_scratch(splits, y, labels, arguments=arguments, inputs=_inputs(train, dev, test),
                                 baselines=o.baselines, seed=seed, device=device, encoder=encoder, head=head,
                                 units=o.units, min_count=o.min_count, max_size=o.max_vocab, vectors=o.vectors,
                                 embedding_dim=o.embedding_dim, hidden_dim=o.hidden_dim, dropout=dropout,
                                 attention_dim=o.attention_dim, n_heads=o.n_heads, max_length=max_length,
                                 epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay)
    from probekit.core.encoder import load_encoder

    enc, layer = load_encoder(o.model, device=device), o.layer
    if layer is not None and layer > enc.num_layers:
        raise UserError(f"--layer {layer}: {enc.name} has layers 0…{enc.num_layers}")
    torch.manual_seed(seed)
    clf = Classifier(enc, labels, head=head, level=level, encoder_mode=mode, layer=layer, dropout=dropout,
                     attention_dim=o.attention_dim, n_heads=o.n_heads, max_length=max_length).to(device)
    opts = dict(epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay, warmup=o.warmup, seed=seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    counts = {f"{name}_examples": len(exs) for name, exs in splits.items()}
    if mode == "finetune":
        history, logits, truncated, extract_s = _finetune(clf, splits, y, **opts)
        feats = None
    else:
        t0, c0 = time.perf_counter(), time.process_time()
        feats = {name: _features(clf, exs, cache_dir=o.cache_dir, no_cache=o.no_cache, dtype=o.dtype,
                                 batch_size=batch_size) for name, exs in splits.items()}
        extract_s, extract_cpu = time.perf_counter() - t0, time.process_time() - c0
        truncated = {name: f.truncated for name, f in feats.items()}
        linear = LinearBaseline(feats, y, labels, seed, name=f"{mode}-mean-logreg")
        started = o.linear_start and linear.start(clf.head)
        history = fit_head(clf.head, feats["train"], y["train"], feats["dev"], y["dev"], device=device,
                           keep_start=started, **opts)
        logits = {name: head_logits(clf.head, f, device=device) for name, f in feats.items()}
    train_s = time.perf_counter() - start - extract_s
    train_cpu = time.process_time() - cpu_start - (0.0 if feats is None else extract_cpu)
    counts.update({f"{name}_truncated": n for name, n in truncated.items()})
    rows = []
    for name, lg in logits.items():
        rows += metric_rows(lg, y[name], labels, split=name, probe=head, model=enc.name, layer=clf.layer,
                            encoder=mode, level=level)
    base_info = {}
    if o.baselines:
        base_rows, base_info = baseline_rows(splits, y, labels, seed)
        rows += base_rows
        if feats is not None:
            keys = dict(model=enc.name, layer=clf.layer, encoder=mode, level=level)
            rows += linear.rows(logits, head, **keys)
            base_info.update(linear.info(logits, head, "test" if "test" in splits else "dev"))
    record_extra = {"classifier": {"head": head, "encoder_mode": mode, "level": level, "layer": clf.layer,
                                   "labels": labels, "max_length": clf.max_length},
                    "best_epoch": int(history.loc[history["best"], "epoch"].iloc[0]) if len(history) else None,
                    "timing": {"features_s": round(extract_s, 3), "train_s": round(train_s, 3),
                               "train_cpu_s": round(train_cpu, 3)},
                    "baselines": base_info,
                    "cache": None if feats is None or o.no_cache else feats["train"].cache}
    eval_split = "test" if "test" in splits else "dev"
    return ClassifyResult.build(rows, history=history, classifier=clf, splits=splits, logits=logits,
                                labels=labels, eval_split=eval_split, arguments=arguments, encoder=enc,
                                counts=counts, inputs=_inputs(train, dev, test), extra=record_extra)


def _specs(value) -> bool:
    """A list of file names or set names (several --train files), not a list of Examples."""
    return bool(value) and all(isinstance(v, (str, os.PathLike)) for v in value)


def _inputs(train, dev, test) -> dict:
    def name(spec):
        if isinstance(spec, (list, tuple)) and _specs(spec):
            return [str(s) for s in spec]
        return None if spec is None else (f"{len(spec)} examples" if isinstance(spec, (list, tuple)) else str(spec))

    return {"train": name(train), "dev": name(dev), "test": name(test)}


def _features(clf: Classifier, examples, *, cache_dir, no_cache, dtype, batch_size) -> Features:
    if clf.encoder is not None and clf.level == "word":
        return cached_features(clf, examples, cache_dir=cache_dir, use_cache=not no_cache, dtype=dtype,
                               batch_size=batch_size)
    return live_features(clf, examples, batch_size=batch_size)


# --- training a head on fixed vectors ----------------------------------------------------------------------

def fit_head(head, train: Features, y_train, dev: Features, y_dev, *, epochs: int, lr: float, batch_size: int,
             weight_decay: float, warmup: float, seed: int, device="cpu", keep_start: bool = False):
    """Train ``head`` on fixed unit vectors (AdamW, warm-up + linear decay); keeps the best dev epoch.
    ``keep_start``: the starting weights (a linear baseline's, say) are epoch 0, kept if no epoch beats them on
    dev, so the head is never worse on dev than where it started.

    Returns the learning curve (epoch, train_loss, dev_loss, dev_accuracy, best)."""
    import pandas as pd

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    head.to(device)
    train, dev = train.float().to(device), dev.float().to(device)
    needs_units = getattr(head, "needs_units", True)
    yt = torch.as_tensor(y_train, device=device)
    steps = math.ceil(len(train) / batch_size) * epochs
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    sched = _schedule(opt, steps, warmup)
    loss_fn = torch.nn.CrossEntropyLoss()
    rows, best, best_state = [], None, None
    from probekit.core.progress import progress

    bar = progress(total=epochs, desc="training head", unit="epoch")
    if keep_start:
        dev_loss, dev_acc = _loss_acc(head_logits(head, dev, device=device), y_dev)
        rows.append({"epoch": 0, "train_loss": float("nan"), "dev_loss": dev_loss, "dev_accuracy": dev_acc})
        best, best_state = (dev_acc, -dev_loss), copy.deepcopy(head.state_dict())
    for epoch in range(1, epochs + 1):
        head.train()
        order = torch.randperm(len(train), generator=gen)
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            units, mask, cls = train.batch(idx, units=needs_units)
            logits = head(units, mask, cls)[0]
            loss = loss_fn(logits, yt[idx.to(device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        dev_logits = head_logits(head, dev, device=device)
        dev_loss, dev_acc = _loss_acc(dev_logits, y_dev)
        rows.append({"epoch": epoch, "train_loss": total / len(train), "dev_loss": dev_loss,
                     "dev_accuracy": dev_acc})
        bar.set_postfix_str(f"dev accuracy {dev_acc:.3f}", refresh=False)
        bar.update(1)
        if best is None or (dev_acc, -dev_loss) > best:
            best = (dev_acc, -dev_loss)
            best_state = copy.deepcopy(head.state_dict())
    bar.close()
    head.load_state_dict(best_state)
    head.eval()
    return _history(rows)


@torch.no_grad()
def head_logits(head, feats: Features, *, device="cpu", batch_size: int = 256) -> np.ndarray:
    """[N, C] float64 logits of ``head`` (eval mode) on fixed vectors, in example order."""
    was = head.training
    head.eval()
    feats = feats.to(device)
    needs_units = getattr(head, "needs_units", True)
    out = []
    for i in range(0, len(feats), batch_size):
        idx = torch.arange(i, min(i + batch_size, len(feats)))
        out.append(head(*feats.batch(idx, units=needs_units))[0].double().cpu())
    head.train(was)
    return torch.cat(out).numpy()


# --- fine-tuning -----------------------------------------------------------------------------------------------

def _finetune(clf: Classifier, splits, y, *, epochs, lr, batch_size, weight_decay, warmup, seed):
    from probekit.core.progress import progress

    encoded = {name: clf.tokenize(exs) for name, exs in splits.items()}
    truncated = {name: int(sum(e.truncated for e in enc)) for name, enc in encoded.items()}
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in clf.parameters() if p.requires_grad]
    no_decay = [p for n, p in clf.named_parameters() if p.requires_grad and (p.ndim < 2)]
    decay = [p for p in params if all(p is not q for q in no_decay)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    n_batches = math.ceil(len(encoded["train"]) / batch_size)
    sched = _schedule(opt, n_batches * epochs, warmup)
    yt = torch.as_tensor(y["train"])
    loss_fn = torch.nn.CrossEntropyLoss()
    rows, best, best_state = [], None, None
    for epoch in range(1, epochs + 1):
        clf.train()
        total, t0 = 0.0, time.perf_counter()
        bar = progress(total=n_batches, desc=f"fine-tuning epoch {epoch}", unit="batch")
        for idx in _batches(encoded["train"], batch_size, gen):
            batch = clf.collate([encoded["train"][i] for i in idx])
            batch.pop("words")
            loss = loss_fn(clf(**batch), yt[idx].to(clf.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            bar.update(1)
        bar.close()
        epoch_s = time.perf_counter() - t0
        dev_loss, dev_acc = _loss_acc(live_logits(clf, encoded["dev"]), y["dev"])
        rows.append({"epoch": epoch, "train_loss": total / len(encoded["train"]), "dev_loss": dev_loss,
                     "dev_accuracy": dev_acc, "epoch_s": epoch_s})
        if best is None or (dev_acc, -dev_loss) > best:
            best = (dev_acc, -dev_loss)
            best_state = {k: v.detach().clone() for k, v in clf.state_dict().items()}
    clf.load_state_dict(best_state)
    clf.eval()
    logits = {name: live_logits(clf, enc) for name, enc in encoded.items()}
    history = _history(rows)
    timing_cols = history.pop("epoch_s")
    history.attrs["epoch_s"] = timing_cols.tolist()   # timing stays out of the deterministic tables
    return history, logits, truncated, 0.0


# --- baselines and saved classifiers ---------------------------------------------------------------------------

def _evaluate_saved(folder, *, dev, test, batch_size, device, data_root, arguments) -> ClassifyResult:
    from probekit.classifiers.saved import load_classifier

    clf = load_classifier(folder, device=device)
    if not hasattr(clf, "labels"):
        raise UserError(f"--load {folder} is a multiple-choice model: add --task multiple-choice")
    splits = {}
    if dev is not None:
        splits["dev"] = load_split(dev, what="--dev", data_root=data_root)
    if test is not None:
        splits["test"] = load_split(test, what="--test", data_root=data_root)
    if not splits:
        raise UserError("--load needs --test (or --dev) data to evaluate on")
    labels = clf.labels
    y = {name: label_ids(exs, labels, name) for name, exs in splits.items()}
    encoded = {name: clf.tokenize(exs) for name, exs in splits.items()}
    logits = {name: live_logits(clf, enc, batch_size) for name, enc in encoded.items()}
    rows = []
    for name, lg in logits.items():
        rows += metric_rows(lg, y[name], labels, split=name, probe=clf.head_type, model=clf.source.name,
                            layer=clf.layer, encoder=clf.encoder_mode, level=clf.level)
    counts = {f"{name}_examples": len(exs) for name, exs in splits.items()}
    counts.update({f"{name}_truncated": int(sum(e.truncated for e in enc)) for name, enc in encoded.items()})
    eval_split = "test" if "test" in splits else "dev"
    return ClassifyResult.build(rows, history=None, classifier=clf, splits=splits, logits=logits, labels=labels,
                                eval_split=eval_split, arguments=arguments, encoder=clf.source, counts=counts,
                                inputs={"load": str(folder), "dev": None if dev is None else str(dev),
                                        "test": None if test is None else str(test)},
                                extra={"classifier": {"loaded_from": str(folder), "head": clf.head_type,
                                                      "encoder_mode": clf.encoder_mode, "level": clf.level,
                                                      "layer": clf.layer, "labels": labels}},
                                save=False)
