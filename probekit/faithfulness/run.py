"""``pk.faithfulness``: run the faithfulness experiments on a classifier and data, and say which explanation is
most faithful for this model.

The experiments (``experiments.py``) share one :class:`~probekit.faithfulness.base.Context`: the classifier, the
evaluation examples, and the attention source — the hidden states below the pooling head computed once and
held fixed, as the papers hold the encoder fixed. The source is built by the first experiment that reads it,
so ERASER alone never computes it; where it cannot be built (``--attention cls`` on a DistilBERT classifier),
the experiments that need it are reported as not run, with the reason, and the others run. Wiegreffe & Pinter's tests retrain heads on ``train`` and
select on ``dev``; by default those are the data the classifier itself was trained on (its ``config.json``).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

from ..core.progress import quiet_option
from ..core import checks
from ..core.errors import UserError
from ..core.examples import Example
from .base import Context, Outcome
from .experiments import DEFAULTS, WITHOUT_SOURCE, get, names
from ..report.faithfulness import FaithfulnessResult

#: experiments that retrain heads (Wiegreffe & Pinter) and so need train and dev data
RETRAINING = ("uniform", "seeds", "diagnostic", "e2e-adversary")


def _load(classifier):
    from ..classify.hf_model import as_classifier   # (model, tokenizer) of a Hugging Face classifier

    classifier = as_classifier(classifier)
    if isinstance(classifier, (str, os.PathLike)):
        from ..classify.saved import load_classifier

        return load_classifier(classifier), Path(classifier)
    if not hasattr(classifier, "encode") or not hasattr(classifier, "head"):
        raise UserError(f"--classifier must be a classifier folder or a loaded Classifier "
                        f"(got {type(classifier).__name__})")
    return classifier, None


def _split(spec, what: str, data_root):
    from ..classify.datasets import load_split

    if spec is None:
        return None
    return load_split(spec, what=what, data_root=data_root)


def _recorded_split(folder: Path | None, name: str):
    """The ``train``/``dev`` the classifier in ``folder`` was trained with, if its run record names a file or set."""
    from ..classify.saved import recorded_split

    return recorded_split(folder, name)


@quiet_option
def faithfulness(classifier, data=None, *, experiments: Sequence[str] | None = None, attention: str = "pooling",
                 limit: int | None = None, train=None, dev=None, rationales: bool = False,
                 methods: Sequence[str] | None = None, batch_size: int = 32, device: str = "cpu", seed: int = 0,
                 data_root=None, cache_dir=None, no_cache: bool = False, quiet: bool = False, ray: str | None = None,
                 **options) -> FaithfulnessResult:
    """Run ``experiments`` (default: all of them) on ``classifier`` (a folder or a loaded Classifier) and
    ``data`` (a file or a named set such as ``rt:dev``, or a list of Examples with ``meta["label"]``).

    ``attention="cls"`` tests the last layer's [CLS] attention instead of the pooling head's α (always, for a
    Hugging Face classifier: it has no pooling head); ``limit`` keeps a seeded random sample of N examples in
    file order (as attribute and attack do: the first N of a file sorted by class would be one class);
    ``train``/``dev`` (default: the classifier's own, from its run record) feed the
    retraining experiments; ``rationales`` adds ERASER plausibility against each example's ``rationale``;
    ``methods`` are the attribution methods ERASER ranks (default: every one that applies); ``ray`` (``auto`` or
    a cluster address) runs the retrained seeds and λ, and extraction, on Ray workers (:mod:`probekit.distributed`,
    the same numbers). ``options`` are the
    experiments' own (``permutations``, ``epsilon``, ``seeds``, ``ks`` …; see ``experiments.DEFAULTS``).
    """

    unknown = [k for k in options if k not in DEFAULTS and k not in ("out", "overwrite", "figures", "command")]
    if unknown:
        raise UserError(f"unknown option {unknown[0]!r} for faithfulness (experiment options: "
                        f"{', '.join(sorted(DEFAULTS))})")
    options = {k: v for k, v in options.items() if k in DEFAULTS and v is not None}
    experiments = checks.choices("experiments", list(experiments) if experiments else names(), names())
    attention = checks.choice("attention", attention, ("pooling", "cls"))
    limit = checks.positive("limit", limit, optional=True)
    batch_size = checks.positive("batch_size", batch_size)
    seed = checks.integer("seed", seed)
    checks.device(device)
    for name in ("permutations", "candidates", "adversary_steps", "random_draws", "seeds", "epochs",
                 "adversary_epochs"):
        if name in options:
            options[name] = checks.positive(name, options[name])
    for name in ("epsilon", "accept", "adversary_lr"):
        if name in options:
            options[name] = checks.number(name, options[name], above=0)
    if "flip_max_words" in options:
        options["flip_max_words"] = checks.integer("flip_max_words", options["flip_max_words"], minimum=0)
    if "resamples" in options:
        from .stats import RESAMPLES_RANGE

        options["resamples"] = checks.integer("resamples", options["resamples"], minimum=RESAMPLES_RANGE[0],
                                              maximum=RESAMPLES_RANGE[1])
    if "lambdas" in options:
        options["lambdas"] = tuple(checks.number("lambdas", v, minimum=0) for v in options["lambdas"])
    if "ks" in options:
        ks = [checks.number("ks", k, above=0) for k in options["ks"]]
        if any(k > 100 for k in ks):
            raise UserError(f"--ks are percentages of the words, 0 < k ≤ 100 (got {max(ks):g})")
        options["ks"] = tuple(ks)
    if data is None:
        raise UserError("--data is required: the examples to test the explanations on")

    clf, folder = _load(classifier)
    if getattr(clf, "attention_source", None) == "cls":   # a Hugging Face classifier has no pooling head
        attention = "cls"
    clf.to(device).eval()
    examples = _split(data, "--data", data_root)
    bad = next((i for i, ex in enumerate(examples) if not isinstance(ex, Example)), None)
    if bad is not None:
        raise UserError(f"data[{bad}] is not an Example")
    if limit is not None:
        from ..core.examples import seeded_sample

        examples = seeded_sample(examples, limit, seed)
    if rationales:
        missing = sum("rationale" not in ex.meta for ex in examples)
        if missing:
            raise UserError(f"--rationales: {missing} of {len(examples)} examples of --data have no 'rationale' "
                            f"field (0/1 per word, as HateXplain's)")
    needs_train = [e for e in experiments if e in RETRAINING]
    train = train if train is not None else (_recorded_split(folder, "train") if needs_train else None)
    dev = dev if dev is not None else (_recorded_split(folder, "dev") if needs_train else None)
    train_x, dev_x = _split(train, "--train", data_root), _split(dev, "--dev", data_root)

    unavailable = source_problem(clf, attention)
    if unavailable and all(e not in WITHOUT_SOURCE for e in experiments):
        raise UserError(unavailable)              # nothing asked for could run: one line, nothing written
    ctx = Context(classifier=clf, examples=examples, source=None, seed=seed, batch_size=batch_size,
                  device=device, quiet=quiet, train=train_x, dev=dev_x, rationales=rationales,
                  methods=list(methods) if methods else None, options=dict(options), cache_dir=cache_dir,
                  no_cache=no_cache)
    from ..distributed.session import session

    with session(ray):
        outcomes, setup_s = _run_all(ctx, experiments, unavailable, clf, examples, attention, batch_size,
                                     cache_dir, no_cache)

    from ..report.rundir import run_record

    arguments = dict(experiments=experiments, attention=attention, limit=limit, train=_spec(train),
                     dev=_spec(dev), rationales=rationales, methods=list(methods) if methods else None,
                     batch_size=batch_size, device=device, seed=seed, ray=ray,
                     options={k: (list(v) if isinstance(v, tuple) else v)
                              for k, v in {**DEFAULTS, **options}.items()})
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
        from .source import check_pooling_classifier as check
    else:
        from .source_cls import check_cls_classifier as check
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
        from .source import PoolingSource

        return PoolingSource(classifier, examples, batch_size=batch_size, cache_dir=cache_dir, no_cache=no_cache)
    from .source_cls import ClsSource

    return ClsSource(classifier, examples, batch_size=batch_size)


def _spec(value):
    if value is None or isinstance(value, (str, os.PathLike)):
        return None if value is None else str(value)
    if all(isinstance(v, (str, os.PathLike)) for v in value):
        return [str(v) for v in value]
    return f"{len(value)} examples"


def _run_all(ctx, experiments, unavailable, clf, examples, attention, batch_size, cache_dir, no_cache):
    """Every experiment in turn on one Context (the source built once, by the first that needs it)."""
    from ..core.progress import progress

    outcomes: list[Outcome] = []
    setup_s = 0.0
    bar = progress(total=len(experiments), desc="experiments", unit="experiment")
    for name in experiments:
        needs_source = name not in WITHOUT_SOURCE
        if needs_source and ctx.source is None and not unavailable:   # built once, by the first that needs it
            t0 = time.perf_counter()
            ctx.source = make_source(clf, examples, attention=attention, batch_size=batch_size,
                                     cache_dir=cache_dir, no_cache=no_cache)
            setup_s = time.perf_counter() - t0
        t = time.perf_counter()
        out = Outcome(name, skipped=unavailable) if needs_source and unavailable else get(name)(ctx)
        out.name = name
        out.seconds = time.perf_counter() - t
        outcomes.append(out)
        bar.update(1)
    bar.close()
    return outcomes, setup_s
