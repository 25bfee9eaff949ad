"""``pk.attribute``: which words mattered to a classifier's decisions, by every method that applies.

Checks the options, reads the input, runs :func:`~.explain.explain` and returns an :class:`AttributionResult`:
``.attributions`` (the explanation object), ``.frame`` (one row per example, word and method:
``attributions.csv``), ``.agreement`` (mean Kendall τ between every pair of methods), and ``write(out)`` for the
run folder (CSV tables, the coloured-text page ``attributions.html`` and a figure of the first example).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import torch

from probekit.core import checks
from probekit.core.errors import UserError
from probekit.core.options import SampleOptions, option, optional_device, positive, takes
from probekit.core.result import Result
from probekit.core.rundir import RunDir, run_record, write_tidy
from probekit.attribution import registry
from probekit.attribution.attributions import FRAME_COLUMNS, Attributions  # noqa: F401 (FRAME_COLUMNS: the table's columns)
from probekit.attribution.base import refuse_unknown
from probekit.attribution.explain import LEVELS, explain, target_index_of

class AttributionResult(Result):
    """``.attributions`` (the :class:`~.attributions.Attributions` object), ``.frame`` (its long table,
    ``attributions.csv``), ``.agreement`` (mean Kendall τ between every pair of methods), ``.record``."""

    command = "attribute"
    main_table = "attributions.csv"

    def __init__(self, attributions: Attributions, record: dict):
        self.record = record
        self.attributions = attributions
        self.agreement = attributions.agreement()
        self._frame = None

    @property
    def frame(self):
        """The long table, built on first use (writing the run never builds it whole)."""
        if self._frame is None:
            self._frame = self.attributions.to_frame()
        return self._frame

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.command}: {self.record['counts']['rows']} rows; "
                f"tables agreement>")

    def html(self, **kwargs) -> str:
        return self.attributions.html(**kwargs)

    def ansi(self, color: bool | None = None) -> str:
        return self.attributions.ansi(color=color)

    def figure(self, example: int = 0):
        return self.attributions.figure(example)

    def _repr_html_(self) -> str:
        return self.attributions._repr_html_()

    def write_files(self, run: RunDir) -> None:
        """The tables and pages a piece at a time (``Attributions.write_csv``, ``.pages``): memory stays flat."""
        self.attributions.write_csv(run.file("attributions.csv"))
        write_tidy(run, self.agreement, "agreement.csv")
        title = f"attributions — {self.record.get('classifier', {}).get('path') or self.model}"
        for name, page in self.attributions.pages(title=title):
            run.write_text(name, page)
        first = self.first_example()
        if first is not None and self.attributions.methods:
            run.save_figure(self.figure(first), "example")

    def first_example(self) -> int | None:
        """The index of the first example with a unit to show (the one ``example.png`` draws), found without
        building the whole table."""
        return next((i for i, e in enumerate(self.attributions) if len(e.units)), None)

    def files(self) -> list[str]:
        return ["attributions.csv", "agreement.csv", "attributions.html"]


def _load(classifier):
    from probekit.classifiers.hf_model import as_classifier   # (model, tokenizer) of a Hugging Face classifier

    classifier = as_classifier(classifier)
    if isinstance(classifier, (str, os.PathLike)):
        from probekit.classifiers.saved import load_classifier

        return load_classifier(classifier), str(classifier)
    if not isinstance(classifier, torch.nn.Module) or not hasattr(classifier, "encode"):
        raise UserError(f"--classifier must be a classifier folder or a loaded Classifier (got "
                        f"{type(classifier).__name__})")
    return classifier, None


def _texts(name, texts):
    """``--text``: one string or several, each a non-empty string."""
    if texts is None:
        return None
    texts = (texts,) if isinstance(texts, str) else tuple(texts)
    if not texts:
        raise UserError("--text: no text given")
    for i, t in enumerate(texts, 1):
        if not isinstance(t, str):
            raise UserError(f"--text number {i} is a {type(t).__name__} ({t!r:.40}), not a string of text")
        if not t.strip():
            raise UserError(f"--text number {i} is empty")
    return texts


def _examples(o: "AttributeOptions") -> list:
    from probekit.core.examples import Example
    from probekit.corpora.text import drop_invisible

    if o.texts is not None:
        examples = drop_invisible([Example(words=None, text=t, meta={"source": f"--text {i}"})
                                   for i, t in enumerate(o.texts, 1)], "--text")
    elif isinstance(o.data, (list, tuple)):            # Examples from Python: labels are optional here
        examples = list(o.data)
        bad = next((i for i, ex in enumerate(examples) if not isinstance(ex, Example)), None)
        if bad is not None:
            raise UserError(f"data[{bad}] is not an Example")
        examples = drop_invisible(examples, "data")
    else:
        from probekit.corpora.labelled import load_split

        examples = load_split(o.data, what="--data")
    return o.sample(examples)


def _methods_help() -> str:
    names = ", ".join(registry.method_names())
    return (f"any of {names} (default: every one that applies to the classifier, except the sampling ones: see "
            f"pk.list_methods())")


@dataclass(frozen=True, kw_only=True)
class AttributeOptions(SampleOptions):
    """The options of :func:`attribute` (and ``python -m probekit.attribute``), besides each method's own
    (:func:`probekit.attribution.registry.all_options`)."""

    required_groups = ("input",)
    classifier: Any = option(help="a classifier folder (probekit.classify --out), a Hugging Face "
                                  "…ForSequenceClassification folder, or a model id in the local Hugging Face cache",
                             metavar="DIR")
    texts: tuple | None = option(None, "a text to explain (repeatable)", flag="--text", action="append",
                                 metavar="TEXT", exclusive="input", check=_texts)
    data: Any = option(None, "examples with labels: JSON Lines, TSV/CSV, or a named set such as rt:test",
                       metavar="FILE", exclusive="input")
    methods: tuple | None = option(None, _methods_help, nargs="+", choices=registry.method_names,
                                   metavar="METHOD")
    target: str | None = option(None, "the label to explain (default: each example's predicted label)",
                                metavar="LABEL")
    batch_size: int = option(16, "examples per batch, and rows per forward pass of occlusion (integrated "
                                 "gradients: --ig-rows) (default %(default)s)", type=int, check=positive)
    device: str | None = option(None, "cpu, cuda, cuda:N or mps (default: where the classifier is; a folder loads "
                                      "on the CPU)", check=optional_device)
    level: str = option("word", "words or sub-tokens (default %(default)s)", choices=LEVELS)


@takes(AttributeOptions, args=("classifier", "texts"), extra=lambda: registry.all_options())
def attribute(o: AttributeOptions, **method_options) -> AttributionResult:
    """Attribute the classifier's decision on ``texts`` (or the examples of ``data``) to their words.

    ``classifier`` is a loaded Classifier or its folder (a Hugging Face sequence classifier too: its folder, a
    cached model id or ``(model, tokenizer)``); ``data`` a file (JSON Lines, TSV/CSV), a named set (``rt:test``)
    or a list of Examples, read as ``pk.classify`` reads them; ``methods`` default to every default method that
    applies (``pk.list_methods()``; ``pooling`` needs an attention or max head, ``attention-*`` an encoder);
    ``target`` is a label to explain (default: each example's predicted class); ``batch_size`` examples per
    batch (batches sorted by token count), also the rows per forward pass of occlusion and the sampling methods
    (integrated gradients packs its steps × examples into passes of ``ig_rows`` rows, by default as many as
    keep a pass within 512 MiB of activations); ``device`` moves the classifier there first (default: where it
    is; a folder loads on the CPU). ``level="token"`` reports sub-tokens instead of words; ``limit`` a seeded
    random sample of ``data``. Every other keyword is a method's own option: ``steps`` (integrated gradients,
    default 50), ``retry_steps`` (retry flagged IG examples with more steps), ``ig_rows``, ``samples``/``stdev``
    (SmoothGrad, GradientSHAP) … as ``pk.list_methods()`` lists them. Options: :class:`AttributeOptions`.
    """
    classifier, texts, data, batch_size, level, seed = o.classifier, o.texts, o.data, o.batch_size, o.level, o.seed
    model, path = _load(classifier)
    names = registry.resolve(o.methods, model)
    classes = [registry.get_method(n) for n in names]
    refuse_unknown(method_options, classes, [registry.get_method(n) for n in registry.method_names()])
    options = {n: asdict(c.build(**method_options)) for n, c in zip(names, classes)}   # checked before any work
    if "integrated-gradients" in options:        # refuse, before any work, what cannot fit in memory
        from probekit.attribution.gradients import default_rows, model_size

        ig, (hidden, layers) = options["integrated-gradients"], model_size(model)
        checks.memory_fits("integrated gradients", checks.ig_memory(
            steps=max(ig["steps"], ig["retry_steps"] or 0), length=model.max_length, hidden=hidden, layers=layers,
            rows=ig["ig_rows"] or default_rows(model, model.max_length)), device=str(model.device),
            advice="lower --ig-rows or --steps")
    target_index = target_index_of(model, o.target)
    examples = _examples(o)
    if not examples:
        raise UserError(f"--data {data}: no examples")
    attributions = explain(model, examples, names, target=target_index, batch_size=batch_size, level=level,
                           seed=seed, device=o.device, **method_options)
    truncated = int(sum(attributions.truncated))
    if truncated:
        import sys

        print(f"probekit: warning: {truncated} of {len(examples)} inputs were longer than the classifier's "
              f"{model.max_length} tokens; the words cut off are left out", file=sys.stderr)
    given = None if data is None else str(data) if isinstance(data, (str, os.PathLike)) else \
        f"{len(examples)} Examples"
    arguments = {**o.record(), "classifier": path, "texts": len(texts or ()), "data": given, "methods": names,
                 **method_options}
    record = run_record("attribute", arguments,
                        encoder=getattr(model, "encoder", None),
                        inputs={"data": given, "texts": len(texts or ())},
                        counts={"examples": len(examples),
                                "rows": int(sum(len(e.units) for e in attributions) * len(names)),
                                "truncated": truncated, "ig_flagged": attributions.flagged_count()},
                        classifier={"path": path, "head": model.head_type, "level": model.level,
                                    "encoder": model.encoder_mode, "labels": list(model.labels)},
                        methods={n: registry.get_method(n).summary for n in names}, method_options=options)
    return AttributionResult(attributions, record)
