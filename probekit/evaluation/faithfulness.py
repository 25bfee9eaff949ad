"""``pk.faithfulness``: run the faithfulness experiments on a classifier and data, and say which explanation is
most faithful for this model.

The experiments (registered classes, ``experiments.py``) share one :class:`~probekit.evaluation.base.Context`: the classifier, the
evaluation examples, and the attention source — the hidden states below the pooling head computed once and
held fixed, as the papers hold the encoder fixed. The source is built by the first experiment that reads it,
so ERASER alone never computes it; where it cannot be built (``--attention cls`` on a DistilBERT classifier),
the experiments that need it are reported as not run, with the reason, and the others run. Wiegreffe & Pinter's tests retrain heads on ``train`` and
select on ``dev``; by default those are the data the classifier itself was trained on (its ``config.json``).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probekit.core.errors import UserError
from probekit.core.options import (DeviceOptions, SampleOptions, data_root_option, option, ray_option, takes,
                                   validate)
from probekit.core.examples import Example
from probekit.evaluation.base import Context, Outcome
from probekit.evaluation.experiments import defaults, get, in_order, names, option_fields
from probekit.report.faithfulness_report import FaithfulnessResult


def _load(classifier):
    from probekit.classifiers.hf_model import as_classifier   # (model, tokenizer) of a Hugging Face classifier

    classifier = as_classifier(classifier)
    if isinstance(classifier, (str, os.PathLike)):
        from probekit.classifiers.saved import load_classifier

        return load_classifier(classifier), Path(classifier)
    if not hasattr(classifier, "encode") or not hasattr(classifier, "head"):
        raise UserError(f"--classifier must be a classifier folder or a loaded Classifier "
                        f"(got {type(classifier).__name__})")
    return classifier, None


def _split(spec, what: str, data_root):
    from probekit.corpora.labelled import load_split

    if spec is None:
        return None
    return load_split(spec, what=what, data_root=data_root)


def _recorded_split(folder: Path | None, name: str):
    """The ``train``/``dev`` the classifier in ``folder`` was trained with, if its run record names a file or set."""
    from probekit.classifiers.saved import recorded_split

    return recorded_split(folder, name)


def _methods_help() -> str:
    from probekit.attribution.registry import method_names

    return f"attribution methods ERASER ranks, any of {', '.join(method_names())} (default: all that apply)"


def _method_names():
    from probekit.attribution.registry import method_names

    return method_names()


@dataclass(frozen=True, kw_only=True)
class FaithfulnessOptions(DeviceOptions, SampleOptions):
    """The options of :func:`faithfulness` (and ``python -m probekit.faithfulness``) other than the experiments'
    own, which each registered experiment declares (``pk.list_experiments()`` lists them with their defaults)."""

    classifier: Any = option(help="a classifier folder (probekit.classify --out), a Hugging Face "
                                  "…ForSequenceClassification folder, or a model id in the local Hugging Face cache",
                             metavar="DIR")
    data: Any = option(help="examples with labels: JSON Lines, TSV/CSV, or a named set such as rt:dev",
                       metavar="FILE")
    experiments: tuple | None = option(None, lambda: f"any of {', '.join(names())} (default: all)", nargs="+",
                                       choices=names, metavar="NAME")
    attention: str = option("pooling", "the attention under test: the pooling head's weights, or the last layer's "
                                       "[CLS] attention (default %(default)s)", choices=("pooling", "cls"))
    train: Any = option(None, "training data of the retraining experiments (default: the classifier's own, from "
                              "its config.json)")
    dev: Any = option(None, "dev data they select on (default: the classifier's own)")
    rationales: bool = option(False, "ERASER plausibility against each example's 'rationale' field (0/1 per word)")
    methods: tuple | None = option(None, _methods_help, nargs="+", choices=_method_names, metavar="METHOD")
    data_root: Any = data_root_option()
    cache_dir: Any = option(None, "activation cache folder (default: the user's cache directory)")
    no_cache: bool = option(False, "neither read nor write the activation cache")
    ray: str | None = ray_option("the retrained seeds and λ, and extraction,")


@takes(FaithfulnessOptions, args=("classifier", "data"), extra=lambda: option_fields())
def faithfulness(o: FaithfulnessOptions, **options) -> FaithfulnessResult:
    """Run ``experiments`` (default: all of them) on ``classifier`` (a folder or a loaded Classifier) and
    ``data`` (a file or a named set such as ``rt:dev``, or a list of Examples with ``meta["label"]``).

    ``attention="cls"`` tests the last layer's [CLS] attention instead of the pooling head's α (always, for a
    Hugging Face classifier: it has no pooling head); ``limit`` keeps a seeded random sample of N examples in
    file order (as attribute and attack do: the first N of a file sorted by class would be one class);
    ``train``/``dev`` (default: the classifier's own, from its run record) feed the
    retraining experiments; ``rationales`` adds ERASER plausibility against each example's ``rationale``;
    ``methods`` are the attribution methods ERASER ranks (default: every one that applies). ``options`` are the
    experiments' own (``permutations``, ``epsilon``, ``seeds``, ``ks`` …; ``pk.list_experiments()`` lists them
    with their defaults). Experiments run in the order given, each after those it depends on. ``ray`` (``auto``
    or a cluster address) runs the retrained seeds and λ, and extraction, on Ray workers
    (:mod:`probekit.core.distributed`, the same numbers). Options: :class:`FaithfulnessOptions`.
    """

    known = option_fields()
    options = {k: validate(known[k], v) for k, v in options.items() if v is not None}
    experiments = in_order(list(o.experiments or names()))
    chosen = {name: get(name).build(options) for name in experiments}   # each checks its own options
    attention, batch_size, device, seed, quiet = o.attention, o.batch_size, o.device, o.seed, o.quiet
    classifier, data, train, dev, methods, data_root = o.classifier, o.data, o.train, o.dev, o.methods, o.data_root
    cache_dir, no_cache = o.cache_dir, o.no_cache
    clf, folder = _load(classifier)
    if getattr(clf, "attention_source", None) == "cls":   # a Hugging Face classifier has no pooling head
        attention = "cls"
    clf.to(device).eval()
    examples = _split(data, "--data", data_root)
    bad = next((i for i, ex in enumerate(examples) if not isinstance(ex, Example)), None)
    if bad is not None:
        raise UserError(f"data[{bad}] is not an Example")
    examples = o.sample(examples)
    if o.rationales:
        missing = sum("rationale" not in ex.meta for ex in examples)
        if missing:
            raise UserError(f"--rationales: {missing} of {len(examples)} examples of --data have no 'rationale' "
                            f"field (0/1 per word, as HateXplain's)")
    needs_train = [e for e, x in chosen.items() if x.needs_training]
    train = train if train is not None else (_recorded_split(folder, "train") if needs_train else None)
    dev = dev if dev is not None else (_recorded_split(folder, "dev") if needs_train else None)
    train_x, dev_x = _split(train, "--train", data_root), _split(dev, "--dev", data_root)

    unavailable = source_problem(clf, attention)
    if unavailable and all(x.needs_source for x in chosen.values()):
        raise UserError(unavailable)              # nothing asked for could run: one line, nothing written
    ctx = Context(classifier=clf, examples=examples, source=None, seed=seed, batch_size=batch_size,
                  device=device, quiet=quiet, train=train_x, dev=dev_x, rationales=o.rationales,
                  methods=list(methods) if methods else None, options=dict(options), cache_dir=cache_dir,
                  no_cache=no_cache)
    outcomes, setup_s = _run_all(ctx, chosen, unavailable, clf, examples, attention, batch_size, cache_dir,
                                 no_cache)

    from probekit.core.rundir import run_record

    arguments = {**o.record(), "classifier": _spec(folder),
                 "data": _spec(data), "experiments": experiments, "attention": attention, "train": _spec(train),
                 "dev": _spec(dev), "options": {k: (list(v) if isinstance(v, tuple) else v)
                                                for k, v in {**defaults(), **options}.items()}}
    record = run_record(
        "faithfulness", arguments, encoder=clf.source,
        inputs={"data": _spec(data), "classifier": str(folder) if folder else None},
        counts={"examples": len(examples), "train_examples": len(train_x or []), "dev_examples": len(dev_x or []),
                **{f"{o.name}.{k}": int(v) for o in outcomes for k, v in o.counts.items()}},
        classifier={"path": str(folder) if folder else None, "head": clf.head_type, "level": clf.level,
                    "encoder": clf.encoder_mode, "labels": list(clf.labels)},
        seconds={"setup": round(setup_s, 3), **{o.name: round(o.seconds, 3) for o in outcomes}},
        skipped={o.name: o.skipped for o in outcomes if o.skipped})
    return FaithfulnessResult(outcomes, record)


def source_problem(classifier, attention: str) -> str:
    """Why the attention source cannot be built for this classifier ("" when it can): the same one line the
    source would raise, found without computing anything."""
    if attention == "pooling":
        from probekit.evaluation.source import check_pooling_classifier as check
    else:
        from probekit.evaluation.source_cls import check_cls_classifier as check
    try:
        check(classifier)
    except UserError as e:
        return str(e)
    return ""


def make_source(classifier, examples, *, attention: str = "pooling", batch_size: int = 32, cache_dir=None,
                no_cache: bool = False):
    """``attention="pooling"``: the head's own α (source.py); ``"cls"``: the last layer's [CLS] attention
    (source_cls.py)."""
    if attention == "pooling":
        from probekit.evaluation.source import PoolingSource

        return PoolingSource(classifier, examples, batch_size=batch_size, cache_dir=cache_dir, no_cache=no_cache)
    from probekit.evaluation.source_cls import ClsSource

    return ClsSource(classifier, examples, batch_size=batch_size)


def _spec(value):
    if value is None or isinstance(value, (str, os.PathLike)):
        return None if value is None else str(value)
    if all(isinstance(v, (str, os.PathLike)) for v in value):
        return [str(v) for v in value]
    return f"{len(value)} examples"


def _run_all(ctx, chosen, unavailable, clf, examples, attention, batch_size, cache_dir, no_cache):
    """Every chosen experiment in turn on one Context (the source built once, by the first that needs it)."""
    from probekit.core.progress import progress

    outcomes: list[Outcome] = []
    setup_s = 0.0
    bar = progress(total=len(chosen), desc="experiments", unit="experiment")
    for name, experiment in chosen.items():
        needs_source = experiment.needs_source
        if needs_source and ctx.source is None and not unavailable:   # built once, by the first that needs it
            t0 = time.perf_counter()
            ctx.source = make_source(clf, examples, attention=attention, batch_size=batch_size,
                                     cache_dir=cache_dir, no_cache=no_cache)
            setup_s = time.perf_counter() - t0
        t = time.perf_counter()
        out = Outcome(name, skipped=unavailable) if needs_source and unavailable else experiment.run(ctx)
        out.name, out.paper = name, experiment.paper
        if experiment.ranks_methods:
            out.metrics = dict(experiment.metrics)
        out.seconds = time.perf_counter() - t
        outcomes.append(out)
        bar.update(1)
    bar.close()
    return outcomes, setup_s
