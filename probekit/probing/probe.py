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
from typing import Sequence

import pandas as pd

from ..core.progress import quiet_option
from ..core import checks
from ..core.errors import UserError
from ..report.result import Result, tidy
from .registry import Task, build_data, get_task

PROBES = ("linear", "mlp", "logreg")
#: The probes trained when ``probes`` is not given (``logreg`` is scikit-learn's solver, on request).
DEFAULT_PROBES = ("linear", "mlp")
POOLINGS = ("first", "mean", "last")
DTYPES = ("float16", "float32")

#: A split with fewer sentences than this gets a warning: its accuracy moves by ≥ 1 point per sentence.
TINY_SPLIT = 100


class ProbeResult(Result):
    """Accuracy of every probe on every layer and split. ``.frame``: task, [task keys], model, layer, head
    (empty), probe, split, metric (``accuracy``), value, n_sentences. ``.key_names``: the task's keys."""

    command = "probe"

    def __init__(self, frame: pd.DataFrame, record: dict, key_names: Sequence[str] = (),
                 warning: str | None = None):
        super().__init__(frame, record)
        self.key_names = tuple(key_names)
        self.warning = warning

    def write_files(self, run) -> None:
        from ..report.probe import accuracy_figure, markdown_report
        from ..report.rundir import write_tidy

        write_tidy(run, self.frame)
        run.write_text("results.md", markdown_report(self.frame, self.key_names, warning=self.warning))
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


@quiet_option
def probe(task: str | Task = "nth_token", *, probes: Sequence[str] = DEFAULT_PROBES, pooling: str = "mean",
          size: str = "quick", epochs: int = 6, lr: float = 2e-3, mlp_hidden: int = 64, model=None,
          batch_size: int = 32, max_length: int | None = None, device: str = "cpu", cache_dir: str | None = None,
          no_cache: bool = False, dtype: str = "float16", seed: int = 0, seeds: int = 1, control: bool = False,
          mdl: bool = False, quiet: bool = False,
          **task_options) -> ProbeResult:
    """Train selection probes on every layer for ``task``; returns a :class:`ProbeResult`.

    ``task_options`` are the task's own (``n=[1, 2]``, ``corpus="s.txt"`` for ``nth_token``;
    ``split_sizes=(200, 50, 50)`` for ``auxiliary``/``subject``). Every bad value is a one-line ``UserError``.
    ``model``: a model id or folder (None: the bundled model), or an already loaded :class:`Encoder`.
    """
    from ..core.encoder import Encoder, load_encoder
    from ..report.rundir import ordered, run_record
    from .sweep import activations_for, sweep

    probes = checks.choices("probes", probes, PROBES)
    checks.choice("pooling", pooling, POOLINGS)
    checks.choice("dtype", dtype, DTYPES)
    epochs = checks.positive("epochs", epochs)
    lr = checks.number("lr", lr, above=0)
    mlp_hidden = checks.positive("mlp_hidden", mlp_hidden)
    batch_size = checks.positive("batch_size", batch_size)
    max_length = checks.max_length(max_length)
    device = checks.device(device)
    seed = checks.integer("seed", seed)
    seeds = checks.positive("seeds", seeds)
    task = get_task(task) if isinstance(task, str) else task
    if not isinstance(task, Task):
        raise UserError(f"--task must be a task name or a probekit Task (got {type(task).__name__})")
    data = build_data(task, seed=seed, size=size, **task_options)
    counts = {s: len(data.split_indices(s)) for s in data.splits}
    warning = tiny_split_warning(counts)
    if warning:
        print(f"probekit: warning: {warning}", file=sys.stderr)
    if isinstance(model, Encoder):
        encoder = model
    else:
        encoder = load_encoder(model, device=device)
    store = activations_for(encoder, data, pooling=pooling, max_length=max_length, batch_size=batch_size,
                            dtype=dtype, cache_dir=cache_dir, no_cache=no_cache)
    df = sweep(store, data, probes=tuple(probes), hidden=mlp_hidden, epochs=epochs, lr=lr, seed=seed,
               seeds=seeds, control=bool(control), mdl=bool(mdl))
    df.insert(0, "task", task.name)
    df.insert(1, "model", encoder.name)
    df = tidy(ordered(df, task.key_names), task=task.name, model=encoder.name, keys=task.key_names)
    arguments = {"task": task.name, "probes": list(probes), "pooling": pooling, "epochs": epochs, "lr": lr,
                 "mlp_hidden": mlp_hidden, "model": getattr(model, "name", model), "batch_size": batch_size, "max_length": max_length,
                 "device": device, "cache_dir": cache_dir, "no_cache": no_cache, "dtype": dtype, "seeds": seeds, "control": bool(control), "mdl": bool(mdl), **data.options}
    record = run_record("probe", arguments, encoder=encoder, inputs={"corpus": data.options.get("corpus")},
                        counts={"splits": counts, "truncated": store.meta["n_truncated"]},
                        task=task.name, data={"splits": counts, "truncated": store.meta["n_truncated"], **data.notes},
                        cache=None if no_cache else str(store.path))
    return ProbeResult(df, record, key_names=task.key_names, warning=warning)
