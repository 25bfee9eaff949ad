"""Si et al.'s table for a multiple-choice model: rows = settings, columns = data sets.

Settings: the model on intact data; each un-readable attack (mean ± std over ``draws`` seeded draws); the
random-guess and always-longest-option baselines; and, given training data, the model retrained on each
un-answerable version of it (``P-Shuffle`` … ``PQ-Remove``), evaluated on the *intact* test data. The dev set
used for model selection during a retraining is corrupted the same way (the retrained model sees no intact
passage or question before the test). Each retraining keeps its checkpoints in ``checkpoints/<setting>``, so a
killed run resumes from its last finished epoch.

Si et al.'s per-dataset MCTest numbers are not reproduced here, so no "paper" column is shown.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from probekit.attacks.catalogue import get_attack

BASELINES = ("random guess", "longest baseline")


def _row(dataset, setting, value, *, draw=None, aggregate=None, metric="accuracy", group="attack"):
    return dict(dataset=dataset, setting=setting, group=group, draw=draw, metric=metric, value=float(value),
                aggregate=aggregate)


def evaluate_attacks(model, items, dataset: str, *, attacks, draws: int, seed: int, batch_size: int,
                     resamples: int | None = None):
    """(rows, items of the first draw of every attack, truncation counts) for one data set; the rows end with
    each attack's accuracy drop from intact and its paired interval (:mod:`.drops`)."""
    from probekit.classifiers.multiple_choice.train import evaluate_mc, longest_option_accuracy, random_guess_accuracy
    from probekit.core.progress import progress
    from probekit.attacks.drops import Drops, correct

    gold = np.array([it.answer for it in items])
    intact = evaluate_mc(model, items, batch_size)
    drops = Drops(dataset, correct(intact["predictions"], gold), seed=seed,
                  **({"resamples": resamples} if resamples else {}))
    rows = [{**_row(dataset, "intact", intact["accuracy"], group="model"), **drops.intact_interval()}]
    truncated = {"intact": int(intact.get("truncated", 0))}
    augmented = []
    bar = progress(total=len(attacks) * draws, desc=f"attacks {dataset}", unit="draw")
    for name in attacks:
        accs = []
        for d in range(draws):
            attacked = get_attack(name)().apply(items, seed + d)
            res = evaluate_mc(model, attacked, batch_size)
            accs.append(res["accuracy"])
            drops.add(name, correct(res["predictions"], gold), group="attack")
            rows.append(_row(dataset, name, res["accuracy"], draw=d))
            truncated[f"{name} draw {d}"] = int(res.get("truncated", 0))
            if d == 0:
                augmented += attacked
            bar.update(1)
        rows += _means(dataset, name, accs)
    bar.close()
    rows.append(_row(dataset, "random guess", random_guess_accuracy(items), group="baseline"))
    rows.append(_row(dataset, "longest baseline", longest_option_accuracy(items), group="baseline"))
    return rows + drops.rows(), augmented, truncated


def _means(dataset, setting, values, group="attack"):
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    return [_row(dataset, setting, v.mean(), aggregate=f"mean over {n} draws", group=group),
            _row(dataset, setting, v.std(ddof=1) if n > 1 else 0.0, aggregate=f"std over {n} draws", group=group)]


def retrain(train, dev, tests: dict, *, settings, checkpoints, seed: int, base_model, options: dict,
            batch_size: int, device: str = "cpu", quiet: bool):
    """Rows for the un-answerable retrainings: one model per setting (trained with ``options``, see
    :func:`probekit.attacks.attack.training_options`), evaluated on every intact test set (``batch_size`` items per
    forward pass); and each retraining's seconds. The retrainings are cells of an experiment grid
    (``distributed.grid``): one after another here, Ray tasks under ``--ray`` (a GPU each with ``--device cuda``),
    their rows in the order of ``settings`` either way. A task retried after its worker died resumes from the
    setting's checkpoint (``checkpoints/<setting>``: shared storage on a cluster)."""
    from probekit.core.distributed import grid

    on_ray = grid.WORKERS.get() is not None
    cells = {f"un-answerable retraining {name}": dict(setting=name, attack=get_attack(name)) for name in settings}
    shared = dict(train=train, dev=dev, tests=tests, seed=seed, base_model=_absolute(base_model),
                  options=options, batch_size=batch_size, device=device, quiet=quiet or on_ray,
                  checkpoints=None if checkpoints is None else str(Path(checkpoints).resolve()))
    done = grid.run(retrain_one, cells, shared=shared,
                    num_gpus=1 if on_ray and str(device).startswith("cuda") else 0)
    rows, timing = [], {}
    for name, (cell_rows, seconds) in zip(settings, done.values()):
        rows += cell_rows
        timing[name] = seconds
    return rows, timing


def retrain_one(setting, attack, train, dev, tests, seed, base_model, options, batch_size, device, quiet,
                checkpoints):
    """One un-answerable retraining (a grid cell): the model trained on ``attack``'s version of ``train`` and
    ``dev``, its rows on the intact ``tests``, and its seconds."""
    import time

    from probekit.classifiers.multiple_choice.train import evaluate_mc, train_multiple_choice

    fn = attack().apply
    t0 = time.perf_counter()
    folder = None if checkpoints is None else Path(checkpoints) / setting
    model, _ = train_multiple_choice(fn(train, seed), fn(dev, seed + 1), model=base_model, seed=seed,
                                     checkpoint=folder, device=device, quiet=quiet, **options)
    seconds = round(time.perf_counter() - t0, 1)
    rows = [_row(dataset, f"trained on {setting}", evaluate_mc(model, items, batch_size)["accuracy"],
                 group="un-answerable training") for dataset, items in tests.items()]
    return rows, seconds


def _absolute(model):
    """A model folder as an absolute path (a Ray worker may start elsewhere); a model id or object unchanged."""
    if isinstance(model, (str, Path)) and str(model) and Path(model).exists():
        return str(Path(model).resolve())
    return model


def table(frame: pd.DataFrame) -> pd.DataFrame:
    """The wide table: one row per setting, one column per data set (accuracy; ``mean ± std`` for attacks)."""
    frame = frame[frame["metric"] == "accuracy"] if "metric" in frame.columns else frame
    cells: dict = {}
    order = []
    for (setting, ds), g in frame.groupby(["setting", "dataset"], sort=False):
        if setting not in order:
            order.append(setting)
        agg = g["aggregate"].fillna("")
        mean, std = g[agg.str.startswith("mean")], g[agg.str.startswith("std")]
        if len(mean):
            cells.setdefault(setting, {})[ds] = f"{mean['value'].iloc[0]:.3f} ± {std['value'].iloc[0]:.3f}"
        else:
            cells.setdefault(setting, {})[ds] = f"{g['value'].iloc[0]:.3f}"
    groups = frame.drop_duplicates("setting").set_index("setting")["group"]
    return pd.DataFrame([{"setting": s, "group": groups[s], **cells[s]} for s in order])
