"""``pk.probe(task, …)``: selection probes on every layer of an encoder, as ``python -m probekit.probe`` runs them.

The task's data (:func:`~probekit.probing.registry.build_data`) is extracted once through the activation cache,
then a linear and an MLP selection probe are trained on every layer (:mod:`probekit.probing.sweep`). Returns a
:class:`ProbeResult`: ``.frame`` is ``results.csv`` (one row per layer × probe × split × task key)::

    import probekit as pk
    result = pk.probe("nth_token", n=[1, 2, 3], epochs=2, quiet=True)
    result.frame.query("split == 'dev'")
    result.write("runs/nth")          # results.csv, results.md, accuracy_by_layer.png, config.json
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from probekit.core.errors import UserError
from probekit.core.result import Result, tidy
from probekit.core.options import CacheOptions, ModelOptions, RunOptions, above_zero, option, positive, takes
from probekit.probing.registry import SIZE_NAMES, Task, build_data, get_task

#: the built-in selection probes (``pk.list_probes()`` lists them with a user's: ``probing/kinds.py``)
PROBES = ("linear", "mlp", "logreg")
#: The probes trained when ``probes`` is not given (``logreg`` is scikit-learn's solver, on request).
DEFAULT_PROBES = ("linear", "mlp")
POOLINGS = ("first", "mean", "last")

#: A split with fewer sentences than this gets a warning: its accuracy moves by ≥ 1 point per sentence.
TINY_SPLIT = 100


class ProbeResult(Result):
    """Accuracy of every probe on every layer and split. ``.frame``: task, [task keys], model, layer, head
    (empty), probe, split, metric (``accuracy``), value, n_sentences, ci_low, ci_high (95 % bootstrap interval
    over the n_sentences sentences). ``.key_names``: the task's keys. ``.correctness``: per (layer, probe, split,
    seed) each sentence's 0/1 correctness per key (NaN: no target), for paired comparisons."""

    command = "probe"

    def __init__(self, frame: pd.DataFrame, record: dict, key_names: Sequence[str] = (),
                 warning: str | None = None, correctness: dict | None = None):
        super().__init__(frame, record)
        self.key_names = tuple(key_names)
        self.warning = warning
        self.correctness = correctness or {}

    def write_files(self, run) -> None:
        from probekit.report.probe_report import accuracy_figure, markdown_report
        from probekit.core.rundir import write_tidy

        write_tidy(run, self.frame)
        run.write_text("results.md", markdown_report(self.frame, self.key_names, warning=self.warning,
                                                     correctness=self.correctness))
        run.save_figure(accuracy_figure(self.frame, self.key_names), "accuracy_by_layer")

    def files(self) -> list[str]:
        return ["results.csv", "results.md", "accuracy_by_layer.png"]


def tiny_split_warning(counts: dict[str, int], threshold: int = TINY_SPLIT) -> str | None:
    """One sentence naming every split under ``threshold`` sentences, or None."""
    small = [f"{name} {n}" for name, n in counts.items() if n < threshold]
    if not small:
        return None
    return (f"small split{'s' if len(small) > 1 else ''} ({', '.join(small)} sentences; fewer than {threshold}): "
            f"{'their' if len(small) > 1 else 'its'} accuracy will be noisy")


def _task(name, value):
    task = get_task(value) if isinstance(value, str) else value
    if not isinstance(task, Task):
        raise UserError(f"--task must be a task name or a probekit Task (got {type(value).__name__})")
    return task


def _task_help() -> str:
    from probekit.probing.registry import available_tasks

    return f"probing task: {', '.join(sorted(available_tasks()))}, or a task file my_task.py"


def _probe_kinds() -> list[str]:
    from probekit.probing.kinds import probe_names

    return probe_names("sentences")


def _load_plugins(name, value) -> tuple:
    from probekit.core.plugins import load_plugin

    value = tuple(value or ())
    for path in value:
        load_plugin(path)
    return value


@dataclass(frozen=True, kw_only=True)
class ProbeOptions(ModelOptions, CacheOptions, RunOptions):
    """The options of :func:`probe` (and ``python -m probekit.probe``); a task's own options come on top."""

    task: Any = option("nth_token", _task_help, check=_task)
    plugin: tuple = option((), "a Python file that registers probes (repeatable; none by default); its probes "
                               "become --probes choices", action="append", metavar="FILE", check=_load_plugins)
    probes: tuple = option(DEFAULT_PROBES, "probe kinds to train on every layer (pk.list_probes())", nargs="+",
                           choices=_probe_kinds)
    pooling: str = option("mean", "how a word's vector is pooled from its sub-tokens", choices=POOLINGS)
    size: str = option("quick", "generated data size: quick, or the paper's 40k/10k/10k", choices=SIZE_NAMES)
    epochs: int = option(6, "training epochs of the MLP probe (the linear probe is fitted to convergence, its L2 "
                            "chosen on the training split)", check=positive)
    lr: float = option(2e-3, "Adam learning rate of the MLP probe", check=above_zero)
    seeds: int = option(1, "train every probe with this many seeds (seed … seed+N-1); tables show mean ± std",
                        check=positive)
    control: bool = option(False, "also train on a control task (Hewitt & Liang) and report selectivity")
    mdl: bool = option(False, "online codelength (Voita & Titov MDL) per layer, and for the control task")
    mlp_hidden: int = option(64, "hidden units of the MLP probe", check=positive)


@takes(ProbeOptions, args=("task",), extra=True)
def probe(o: ProbeOptions, **task_options) -> ProbeResult:
    """Train selection probes on every layer for ``task``; returns a :class:`ProbeResult`.

    Options: :class:`ProbeOptions` (``probes``, ``pooling``, ``size``, ``epochs``, ``lr``, ``mlp_hidden``,
    ``seeds``, ``control``, ``mdl``, the model, cache and run options). ``task_options`` are the task's own
    (``n=[1, 2]``, ``corpus="s.txt"`` for ``nth_token``; ``split_sizes=(200, 50, 50)`` for ``auxiliary``/
    ``subject``). Every bad value is a one-line ``UserError``. ``model``: a model id or folder (None: the bundled
    model), or an already loaded :class:`Encoder`.
    """
    from probekit.core.encoder import Encoder, load_encoder
    from probekit.core.rundir import ordered, run_record
    from probekit.probing.sweep import activations_for, sweep

    task, model = o.task, o.model
    data = build_data(task, seed=o.seed, size=o.size, **task_options)
    counts = {s: len(data.split_indices(s)) for s in data.splits}
    warning = tiny_split_warning(counts)
    if warning:
        print(f"probekit: warning: {warning}", file=sys.stderr)
    if isinstance(model, Encoder):
        encoder = model
    else:
        encoder = load_encoder(model, device=o.device)
    store = activations_for(encoder, data, pooling=o.pooling, max_length=o.max_length, batch_size=o.batch_size,
                            dtype=o.dtype, cache_dir=o.cache_dir, no_cache=o.no_cache)
    df = sweep(store, data, probes=tuple(o.probes), hidden=o.mlp_hidden, epochs=o.epochs, lr=o.lr, seed=o.seed,
               seeds=o.seeds, control=bool(o.control), mdl=bool(o.mdl))
    kept = df.attrs.pop("correctness", {})
    df.insert(0, "task", task.name)
    df.insert(1, "model", encoder.name)
    df = tidy(ordered(df, task.key_names), task=task.name, model=encoder.name, keys=task.key_names)
    record = run_record("probe", {**o.record(), **data.options}, encoder=encoder,
                        inputs={"corpus": data.options.get("corpus")},
                        counts={"splits": counts, "truncated": store.meta["n_truncated"]},
                        task=task.name, data={"splits": counts, "truncated": store.meta["n_truncated"], **data.notes},
                        cache=None if o.no_cache else str(store.path))
    return ProbeResult(df, record, key_names=task.key_names, warning=warning, correctness=kept)
