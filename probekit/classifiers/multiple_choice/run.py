"""``pk.classify(task="multiple-choice")``: train a multiple-choice reading-comprehension model, evaluate it
beside the random-guess and longest-option baselines, save it.

Resuming: with ``out=DIR`` (``--out DIR``) every finished epoch is checkpointed into the sibling folder
``DIR.checkpoint/`` (or ``checkpoint=``/``--checkpoint``); running the same command again continues after the
last finished epoch, and different options are refused. The checkpoint is removed once the run folder is
written. Without an output folder or checkpoint folder nothing is checkpointed.
"""
from __future__ import annotations

import time
from pathlib import Path

from probekit.core.progress import quiet_option
from probekit.core import checks
from probekit.core.errors import UserError
from probekit.classifiers.multiple_choice.baselines import longest_option_accuracy, random_guess_accuracy
from probekit.classifiers.multiple_choice.train import MC_DEFAULTS, evaluate_mc, train_multiple_choice
from probekit.corpora.multiple_choice import read_mc

#: classify options that only the classification task reads (given with multiple-choice they are refused)
_CLASSIFICATION_ONLY = {"head": "attention", "encoder": "frozen", "finetune": False, "level": "word", "layer": None,
                        "attention_dim": 128, "n_heads": 4, "dropout": 0.1}


def checkpoint_folder(out) -> Path:
    """Where a run into ``out`` keeps its checkpoints: ``<out>.checkpoint`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".checkpoint")


@quiet_option
def classify_multiple_choice(train=None, dev=None, test=None, *, model=None, epochs=None, lr=None,
                             head_lr=None, batch_size=None, max_length=None, device="cpu", seed=0, quiet=False,
                             load=None, data_root=None, baselines=True, weight_decay=0.01, warmup=0.1,
                             micro_batch=MC_DEFAULTS["micro_batch"], checkpoint=None, out=None, overwrite=False,
                             **options):
    """The multiple-choice branch of :func:`probekit.classifiers.classify.classify` (same options; ``epochs``,
    ``lr`` (the encoder's), ``head_lr`` (the scoring head's and the pooler's), ``batch_size`` (questions per
    step) and ``max_length`` default to :data:`MC_DEFAULTS`)."""
    from probekit.classifiers.multiple_choice.report import MCResult

    for name, default in _CLASSIFICATION_ONLY.items():
        if name in options and options[name] != default:
            raise UserError(f"{checks.flag(name)} applies to --task classification only")
    epochs = checks.positive("epochs", MC_DEFAULTS["epochs"] if epochs is None else epochs)
    lr = checks.number("lr", MC_DEFAULTS["lr"] if lr is None else lr, above=0)
    head_lr = checks.number("head_lr", MC_DEFAULTS["head_lr"] if head_lr is None else head_lr, above=0)
    batch_size = checks.positive("batch_size", MC_DEFAULTS["batch_size"] if batch_size is None else batch_size)
    max_length = checks.max_length(MC_DEFAULTS["max_length"] if max_length is None else max_length)
    checks.device(device)
    checks.integer("seed", seed)
    arguments = {"task": "multiple-choice", "train": _name(train), "dev": _name(dev), "test": _name(test),
                 "model": model, "epochs": epochs, "lr": lr, "head_lr": head_lr,
                 "batch_size": batch_size, "max_length": max_length,
                 "micro_batch": micro_batch, "weight_decay": weight_decay, "warmup": warmup, "device": device,
                 "seed": seed, "load": None if load is None else str(load), "data_root": data_root}
    if out is not None and Path(out).is_dir() and any(Path(out).iterdir()) and not overwrite:
        raise UserError(f"--out {out} already exists and is not empty (pass --overwrite to replace it)")
    if load is None and (train is None or dev is None):
        raise UserError("--train and --dev are required (or --load DIR with --test to evaluate a saved model)")
    splits = {}
    for name, spec in (("train", train), ("dev", dev), ("test", test)):
        if spec is not None:
            splits[name] = read_mc(spec, what=f"--{name}", data_root=data_root)
    counts = {f"{name}_items": len(items) for name, items in splits.items()}
    history, timing, resumed = None, {}, 0
    t0, c0 = time.perf_counter(), time.process_time()
    if load is not None:
        from probekit.classifiers.saved import load_classifier

        mc = load_classifier(load, device=device)
        if not hasattr(mc, "encode") or not hasattr(mc, "scores"):
            raise UserError(f"--load {load} is a classification model, not a multiple-choice one "
                            f"(drop --task multiple-choice)")
        splits.pop("train", None)
        if not splits:
            raise UserError("--load needs --test (or --dev) data to evaluate on")
    else:
        if checkpoint is None and out is not None:
            checkpoint = checkpoint_folder(out)
        mc, history = train_multiple_choice(splits["train"], splits["dev"], model=model, epochs=epochs, lr=lr,
                                            head_lr=head_lr, batch_size=batch_size, max_length=max_length,
                                            device=device, seed=seed, checkpoint=checkpoint, quiet=quiet,
                                            micro_batch=micro_batch, weight_decay=weight_decay, warmup=warmup)
        resumed = history.attrs["resumed_from"]
        timing.update(epoch_s=history.attrs["epoch_s"], epoch_cpu_s=history.attrs["epoch_cpu_s"],
                      train_s=round(time.perf_counter() - t0, 3), train_cpu_s=round(time.process_time() - c0, 3))
    t1, c1 = time.perf_counter(), time.process_time()
    # dev and test only: scoring the training split again would cost a third of an epoch (its loss is in history)
    # the kept epoch's dev scores are reused (the same weights): one dev pass less
    known = {"dev": history.attrs.get("dev_scores")} if history is not None else {}
    evals = {name: evaluate_mc(mc, items, micro_batch, scores=known.get(name)) for name, items in splits.items()
             if name != "train"}
    timing.update(eval_s=round(time.perf_counter() - t1, 3), eval_cpu_s=round(time.process_time() - c1, 3))
    counts.update({f"{name}_truncated": ev["truncated"] for name, ev in evals.items()})
    if history is not None:
        counts["train_truncated"] = history.attrs["truncated"]["train"]
    rows = []
    for name, ev in evals.items():
        rows.append(_row(name, "multiple-choice", mc.source_name, ev["accuracy"]))
        if baselines:
            rows.append(_row(name, "random guess", "random guess", random_guess_accuracy(splits[name])))
            rows.append(_row(name, "longest option", "longest option", longest_option_accuracy(splits[name])))
    extra = {"multiple_choice": {"hf_multiple_choice": mc.hf, "max_length": mc.max_length,
                                 "architecture": type(mc.net).__name__ if mc.hf else "encoder + ScoreHead"},
             "timing": timing, "resumed_from_epoch": resumed,
             "best_epoch": None if history is None else int(history.loc[history["best"], "epoch"].iloc[0]),
             "checkpoint": None if checkpoint is None else str(checkpoint)}
    eval_split = "test" if "test" in splits else "dev"
    return MCResult.build(rows, history=history, model=mc, splits=splits, evals=evals, eval_split=eval_split,
                          arguments=arguments, counts=counts, extra=extra, save=load is None,
                          checkpoint=None if load is not None else checkpoint)


def _row(split, probe, model, value):
    return {"split": split, "probe": probe, "model": model, "metric": "accuracy",
            "value": float("nan") if value is None else float(value)}


def _name(spec):
    if spec is None:
        return None
    return f"{len(spec)} items" if isinstance(spec, (list, tuple)) else str(spec)
