"""Training an encoder from scratch with its pooling head (``classify --encoder lstm|cnn|average``).

Jain & Wallace's recipe (§3 and their code, successar/AttentionExplanation ``Trainer``): Adam with amsgrad,
learning rate 1e-3, L2 weight decay 1e-5 except on the attention parameters (none there), no dropout, 8 epochs,
batches of 32; the weights kept are those of the best dev epoch after the first: for two classes by dev ROC-AUC
(their binary trainer), for more by dev accuracy (their NLI/QA trainer), dev loss breaking ties. No warm-up, no
decay, no clipping. Batches group inputs of similar length (``batching.length_batches``), seeded. Same seed →
same numbers.
"""
from __future__ import annotations

import math
import time

import torch

from probekit.core.errors import UserError
from probekit.classifiers.batching import history as _history, length_batches, live_logits, loss_accuracy, threads
from probekit.classifiers.scratch import ENCODERS, SIZES, ScratchClassifier
from probekit.classifiers.vocab import Vocabulary, vector_table

#: Jain & Wallace's BiLSTM recipe, used for every encoder trained from scratch
SCRATCH_DEFAULTS = {"epochs": 8, "lr": 1e-3, "weight_decay": 1e-5, "max_length": 512, "dropout": 0.0}


def jw_optimizer(model, *, weight_decay: float | None = None, attention_decay: bool = False,
                 lr: float | None = None) -> torch.optim.Adam:
    """Jain & Wallace's optimiser: Adam with amsgrad, weight decay on every parameter but the attention scorer's
    (the head's W and v), which gets none unless ``attention_decay``. torch's fused Adam: the same update in one
    kernel (parameters equal to float rounding, ≤ 5e-7 after an RT epoch), where the per-parameter loop spent
    over half of a BiLSTM epoch updating the 6-million-weight embedding table (``scripts/bench_scratch.py``)."""
    wd = SCRATCH_DEFAULTS["weight_decay"] if weight_decay is None else float(weight_decay)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    att = [p for n, p in named if n.startswith(("head.W.", "head.v."))]
    rest = [p for n, p in named if not n.startswith(("head.W.", "head.v."))]
    groups = [{"params": rest, "weight_decay": wd}]
    if att:
        groups.append({"params": att, "weight_decay": wd if attention_decay else 0.0})
    fused = all(p.dtype in (torch.float32, torch.float64) and p.device.type in ("cpu", "cuda") for n, p in named)
    return torch.optim.Adam(groups, lr=SCRATCH_DEFAULTS["lr"] if lr is None else lr, amsgrad=True, fused=fused)


def selection(n_classes: int, y_dev) -> str:
    """The dev measure the kept epoch maximises: ``dev_auc`` for two classes (Jain & Wallace's binary trainer
    keeps the best dev ROC-AUC), ``dev_accuracy`` otherwise or when the dev split holds one class only."""
    return "dev_auc" if n_classes == 2 and len(set(map(int, y_dev))) == 2 else "dev_accuracy"


def dev_auc(logits, y) -> float:
    """ROC-AUC of the class-1 score (logit difference, monotone in p(class 1)) against the labels; NaN when a
    logit is not finite (a diverged epoch, never kept over a finite one)."""
    from sklearn.metrics import roc_auc_score
    import numpy as np

    lg = np.asarray(logits, dtype=np.float64)
    score = lg[:, 1] - lg[:, 0]
    return float(roc_auc_score(np.asarray(y), score)) if np.isfinite(score).all() else math.nan


def better(score: tuple, best: tuple | None) -> bool:
    """Whether an epoch's (dev measure, −dev loss) beats the kept epoch's; a NaN measure (a diverged epoch) never
    beats a finite one, and a finite one always beats NaN."""
    return best is None or score > best or (math.isnan(best[0]) and not math.isnan(score[0]))


class KeptEpoch:
    """Which epoch of an ``epochs``-long training a from-scratch model keeps: the :func:`better` (dev measure,
    −dev loss) from the second epoch on (Jain & Wallace save from their second epoch), the first only when it is
    the only one. ``epoch`` is the one kept so far (None before any)."""

    def __init__(self, epochs: int):
        self.epochs, self.best, self.epoch = epochs, None, None

    def offer(self, epoch: int, measure: float, dev_loss: float) -> bool:
        """Whether ``epoch`` is now the kept one (the caller then saves its weights)."""
        score = (measure, -dev_loss)
        if (epoch == 1 and self.epochs > 1) or not better(score, self.best):
            return False
        self.best, self.epoch = score, epoch
        return True


def build_model(train_examples, labels, *, encoder: str, head: str, units: str, min_count: int,
                max_size: int | None, vectors, embedding_dim: int | None, hidden_dim: int | None, dropout: float,
                attention_dim: int, n_heads: int, max_length: int | None, seed: int) -> tuple[ScratchClassifier, dict]:
    """(an untrained model with its vocabulary built from ``train_examples``, facts for the run record)."""
    if encoder not in ENCODERS:
        raise ValueError(encoder)
    vocab = Vocabulary.build(train_examples, unit=units, min_count=min_count, max_size=max_size)
    if len(vocab) <= 2:
        raise UserError(f"--train: no unit is seen {min_count} times or more; lower --min-count")
    pairs = any(ex.words_b is not None for ex in train_examples)
    torch.manual_seed(seed)
    clf = ScratchClassifier(vocab, labels, encoder=encoder, head=head, embedding_dim=embedding_dim,
                            hidden_dim=hidden_dim, dropout=dropout, attention_dim=attention_dim, n_heads=n_heads,
                            max_length=max_length or SCRATCH_DEFAULTS["max_length"], pairs=pairs)
    info = {"vocabulary": len(vocab), "units": units, "min_count": min_count, "max_size": max_size,
            "embedding_dim": clf.embedding_dim, "hidden_dim": clf.hidden_dim, "pairs": pairs}
    if vectors is not None:
        table, coverage = vector_table(vocab, vectors, clf.embedding_dim, seed=seed)
        clf.load_embeddings(table)
        info.update(vectors=str(vectors), vectors_coverage=round(coverage, 4))
        import sys

        print(f"probekit: --vectors cover {coverage:.1%} of the {len(vocab) - 2} units of the vocabulary",
              file=sys.stderr)
    return clf, info


def train_scratch(clf: ScratchClassifier, splits: dict, y: dict, *, epochs: int, lr: float, batch_size: int,
                  weight_decay: float, seed: int, n_threads: int | None = 1, on_epoch=None):
    """Train ``clf`` on ``splits["train"]``, keep its best ``splits["dev"]`` epoch (:func:`selection`; the first
    epoch only when it is the only one, as Jain & Wallace save from their second epoch on).

    Returns (learning curve, logits per split, truncated inputs per split); the curve's ``attrs["epoch_s"]``
    holds each epoch's training seconds, ``attrs["selection"]`` the dev measure. ``n_threads``: torch threads
    while training (``batching.threads``). ``on_epoch(epoch, clf)`` is called after each epoch's dev evaluation,
    the model in eval mode (analyses of the model as training goes on)."""
    with threads(n_threads):
        return _train(clf, splits, y, epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay,
                      seed=seed, on_epoch=on_epoch)


def _train(clf, splits, y, *, epochs, lr, batch_size, weight_decay, seed, on_epoch=None):
    from probekit.core.progress import progress

    encoded = {name: clf.tokenize(exs) for name, exs in splits.items()}
    truncated = {name: int(sum(e.truncated for e in enc)) for name, enc in encoded.items()}
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = jw_optimizer(clf, weight_decay=weight_decay, lr=lr)
    yt = torch.as_tensor(y["train"])
    loss_fn = torch.nn.CrossEntropyLoss()
    criterion = selection(clf.n_classes, y["dev"])
    rows, kept, best_state, times = [], KeptEpoch(epochs), None, []
    for epoch in range(1, epochs + 1):
        clf.train()
        total, t0 = 0.0, time.perf_counter()
        batches = length_batches(encoded["train"], batch_size, gen)
        bar = progress(total=len(batches), desc=f"{clf.encoder_mode} epoch {epoch}", unit="batch")
        for idx in batches:
            batch = clf.collate([encoded["train"][i] for i in idx])
            batch.pop("words")
            loss = loss_fn(clf(**batch), yt[idx].to(clf.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            bar.update(1)
        bar.close()
        times.append(time.perf_counter() - t0)
        dev_logits = live_logits(clf, encoded["dev"], 128)
        dev_loss, dev_acc = loss_accuracy(dev_logits, y["dev"])
        row = {"epoch": epoch, "train_loss": total / len(encoded["train"]), "dev_loss": dev_loss,
               "dev_accuracy": dev_acc}
        if criterion == "dev_auc":
            row["dev_auc"] = dev_auc(dev_logits, y["dev"])
        rows.append(row)
        if kept.offer(epoch, row[criterion], dev_loss):
            best_state = {k: v.detach().clone() for k, v in clf.state_dict().items()}
        if on_epoch is not None:
            clf.eval()
            on_epoch(epoch, clf)
    if best_state is not None:                   # else: no epoch to choose from, the last one stays
        clf.load_state_dict(best_state)
    clf.eval()
    logits = {name: live_logits(clf, enc, 128) for name, enc in encoded.items()}
    history = _history(rows)
    history["best"] = history["epoch"] == (kept.epoch or epochs)
    history.attrs["epoch_s"], history.attrs["selection"] = times, criterion
    return history, logits, truncated


def check_options(*, encoder: str, finetune: bool, layer, level: str, model, units: str) -> None:
    """One-line refusals of options that do not apply to an encoder trained from scratch (or to a transformer)."""
    if encoder in ENCODERS:
        if finetune:
            raise UserError(f"--finetune fine-tunes a pre-trained encoder; --encoder {encoder} is trained from "
                            f"scratch (every weight is trained anyway)")
        if layer is not None:
            raise UserError(f"--layer picks a transformer layer; --encoder {encoder} has none")
        if level != "word":
            raise UserError(f"--level {level}: --encoder {encoder} has no sub-tokens; its units are set by "
                            f"--units (word, char or auto)")
        if model is not None:
            raise UserError(f"--model names a pre-trained encoder; --encoder {encoder} trains its own")
    elif units != "word":
        raise UserError(f"--units {units} applies to --encoder {'/'.join(ENCODERS)}; a pre-trained encoder's "
                        f"tokenizer sets its units (BERT-family tokenizers make every CJK character a word)")


def sizes_help() -> str:
    return ", ".join(f"{e} {s[0]}/{s[1]}" for e, s in SIZES.items())


def classify_scratch(splits, y, labels, *, arguments, inputs, baselines: bool, seed: int, device: str,
                     encoder: str, head: str, units: str, min_count: int, max_size, vectors, embedding_dim,
                     hidden_dim, dropout, attention_dim, n_heads, max_length, epochs, lr, batch_size,
                     weight_decay):
    """The ``encoder in ENCODERS`` branch of :func:`probekit.classifiers.classify.classify` (splits loaded, labels
    checked): build the vocabulary and model, train, evaluate beside the baselines."""
    from probekit.classifiers.report import ClassifyResult
    from probekit.classifiers.baselines import baseline_rows
    from probekit.classifiers.metrics import metric_rows

    clf, info = build_model(splits["train"], labels, encoder=encoder, head=head, units=units, min_count=min_count,
                            max_size=max_size, vectors=vectors, embedding_dim=embedding_dim, hidden_dim=hidden_dim,
                            dropout=dropout, attention_dim=attention_dim, n_heads=n_heads, max_length=max_length,
                            seed=seed)
    if info["pairs"] != all(ex.words_b is not None for exs in splits.values() for ex in exs):
        raise UserError("--train/--dev/--test mix pairs (text_b) and single texts; an encoder from scratch reads "
                        "one or the other")
    clf.to(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    history, logits, truncated = train_scratch(clf, splits, y, epochs=epochs, lr=lr, batch_size=batch_size,
                                               weight_decay=weight_decay, seed=seed)
    rows = []
    for name, lg in logits.items():
        rows += metric_rows(lg, y[name], labels, split=name, probe=head, model=clf.source.name, layer=None,
                            encoder=encoder, level=units)
    base_info = {}
    if baselines:
        base_rows, base_info = baseline_rows(splits, y, labels, seed)
        rows += base_rows
    counts = {f"{name}_examples": len(exs) for name, exs in splits.items()}
    counts.update({f"{name}_truncated": n for name, n in truncated.items()})
    extra = {"classifier": {"head": head, "encoder_mode": encoder, "level": "word", "units": units, "layer": None,
                            "labels": labels, "max_length": clf.max_length, **info},
             "best_epoch": int(history.loc[history["best"], "epoch"].iloc[0]),
             "selection": {"measure": history.attrs["selection"], "from_epoch": 2 if epochs > 1 else 1},
             "timing": {"train_s": round(time.perf_counter() - start, 3),
                        "train_cpu_s": round(time.process_time() - cpu_start, 3)},
             "baselines": base_info}
    eval_split = "test" if "test" in splits else "dev"
    return ClassifyResult.build(rows, history=history, classifier=clf, splits=splits, logits=logits, labels=labels,
                                eval_split=eval_split, arguments=arguments, encoder=clf.source, counts=counts,
                                inputs=inputs, extra=extra)


def retrain(clf: ScratchClassifier, head, train, dev, *, seed: int, batch_size: int = 32,
            epochs: int | None = None) -> ScratchClassifier:
    """A fresh model of ``clf``'s configuration and vocabulary with ``head`` as its pooling head, trained end to
    end on ``train`` (best ``dev`` epoch) by Jain & Wallace's recipe (``SCRATCH_DEFAULTS``; ``epochs``
    overrides): Wiegreffe & Pinter retrain the whole BiLSTM for their uniform and seed baselines. Starts from
    random embeddings, as the papers' models do."""
    from probekit.classifiers.metrics import label_ids

    torch.manual_seed(seed)
    model = ScratchClassifier(clf.vocab, clf.labels, **clf.config()).to(clf.device)
    model.head = head.to(clf.device)
    y = {"train": label_ids(train, clf.labels, "train"), "dev": label_ids(dev, clf.labels, "dev")}
    train_scratch(model, {"train": train, "dev": dev}, y, epochs=int(epochs or SCRATCH_DEFAULTS["epochs"]),
                  lr=SCRATCH_DEFAULTS["lr"], batch_size=batch_size, weight_decay=SCRATCH_DEFAULTS["weight_decay"],
                  seed=seed)
    return model.eval()
