"""``python -m probekit.probe --task TASK``: selection probes on every layer of an encoder.

Writes ``results.csv`` (tidy), ``results.md``, ``accuracy_by_layer.png`` and ``config.json`` into a run
directory. :func:`run_probe` does the same from Python and returns the results as a DataFrame.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

import pandas as pd

from .cli import (Parser, add_cache_options, add_common_options, add_model_options, main_wrapper, peek_task,
                  set_quiet)
from .core.errors import UserError
from .report.rundir import RunDir, config_record, default_run_dir, markdown_table, ordered, write_tidy
from .probing.registry import available_tasks, get_task

DEFAULT_TASK = "nth_token"


def build_parser(task_name: str | None = DEFAULT_TASK) -> Parser:
    tasks = available_tasks()
    parser = Parser(prog="python -m probekit.probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default=DEFAULT_TASK,
                        help=f"probing task: {', '.join(sorted(tasks))}")
    parser.add_argument("--out", default=None, help="run directory (default runs/<task>-<model>-<time>)")
    parser.add_argument("--probes", nargs="+", choices=["linear", "mlp"], default=["linear", "mlp"],
                        help="probe kinds to train on every layer")
    parser.add_argument("--pooling", choices=["first", "mean", "last"], default="mean",
                        help="how a word's vector is pooled from its sub-tokens")
    parser.add_argument("--size", choices=["quick", "paper"], default="quick",
                        help="generated data size: quick, or the paper's 40k/10k/10k")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs per probe")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    parser.add_argument("--mlp-hidden", type=int, default=64, help="hidden units of the MLP probe")
    add_model_options(parser)
    add_cache_options(parser)
    add_common_options(parser)
    if task_name in tasks:
        group = parser.add_argument_group(f"options of --task {task_name}")
        tasks[task_name].add_arguments(group)
    return parser


def run_job(options: argparse.Namespace) -> tuple[pd.DataFrame, dict]:
    """Build the task's data, extract (cached), sweep every layer; (tidy results, run record)."""
    from .core.encoder import load_encoder
    from .probing.sweep import activations_for, sweep

    task = get_task(options.task)
    if options.batch_size < 1 or options.epochs < 1:
        raise UserError("--batch-size and --epochs must be at least 1")
    from .probing.registry import build_data, task_options
    data = build_data(task, **{k: getattr(options, k) for k in task_options(task) if hasattr(options, k)})
    encoder = load_encoder(options.model, device=options.device)
    store = activations_for(encoder, data, options)
    df = sweep(store, data, probes=tuple(options.probes), hidden=options.mlp_hidden, epochs=options.epochs,
               lr=options.lr, seed=options.seed)
    df.insert(0, "task", task.name)
    df.insert(1, "model", encoder.name)
    df = ordered(df, task.key_names)
    record = {"model": {"name": encoder.name, "source": encoder.source, "fingerprint": encoder.fingerprint(),
                        "layers": encoder.num_layers, "heads": encoder.num_heads, "hidden": encoder.hidden_size},
              "data": {"splits": {s: len(data.split_indices(s)) for s in data.splits},
                       "truncated": store.meta["n_truncated"], **data.notes},
              "cache": str(store.path) if not options.no_cache else None}
    return df, record


def run_probe(task: str = DEFAULT_TASK, out: str | None = None, **options) -> pd.DataFrame:
    """The command's job from Python: ``run_probe("nth_token", n=[1, 2], quiet=True)`` → tidy DataFrame.

    Options are the command-line options with underscores (``batch_size=16``); with ``out`` the run
    directory is written too.
    """
    parser = build_parser(task)
    args = parser.parse_args(["--task", task])
    for key, value in options.items():
        if not hasattr(args, key):
            raise UserError(f"unknown option {key!r} for task {task}")
        setattr(args, key, value)
    args.out = out
    set_quiet(args.quiet)
    df, record = run_job(args)
    if out is not None:
        write_run(args, df, record)
    return df


def markdown_report(df: pd.DataFrame, key_names: Sequence[str]) -> str:
    """Pivot: one row per probe × split, one column per layer (task keys averaged), then per key."""
    title = f"# {df['task'].iloc[0]} probes on {df['model'].iloc[0]}\n\n"
    keys = [k for k in key_names if k in df.columns]
    mean = df.groupby(["probe", "split", "layer"], sort=False)["value"].mean().unstack("layer")
    mean.columns = [f"layer {c}" for c in mean.columns]
    text = title + "Accuracy by layer" + (f" (averaged over {', '.join(keys)})" if keys else "") + ":\n\n"
    text += markdown_table(mean.reset_index()) + "\n"
    text += ("Probes `*-nopos` read layer 0 with the position embeddings removed.\n\n")
    for key in keys:
        for split in df["split"].unique():
            sub = df[(df["split"] == split) & ~df["probe"].str.endswith("-nopos")]
            piv = sub.pivot_table(index=["probe", key], columns="layer", values="value", sort=False)
            piv.columns = [f"layer {c}" for c in piv.columns]
            text += f"## {split}, by {key}\n\n" + markdown_table(piv.reset_index()) + "\n"
    return text


def plot_by_layer(df: pd.DataFrame, path, key_names: Sequence[str]) -> None:
    """Layers on x; one line per probe × split (task keys averaged); no-position probes as markers at 0.

    Colour is the split, line style and marker the probe, so a split reads the same across probes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    mean = df.groupby(["probe", "split", "layer"])["value"].mean().reset_index()
    palette = plt.get_cmap("tab10").colors
    colour = {s: palette[i % 10] for i, s in enumerate(dict.fromkeys(mean["split"]))}
    line = {"linear": ("-", "o"), "mlp": ("--", "s")}
    cross = {"linear-nopos": "x", "mlp-nopos": "+"}
    for (probe, split), g in mean.groupby(["probe", "split"], sort=False):
        if probe.endswith("-nopos"):
            ax.scatter(g["layer"], g["value"], marker=cross.get(probe, "x"), s=45, color=colour[split],
                       label=f"{probe} / {split}")
        else:
            style, marker = line.get(probe, (":", "^"))
            ax.plot(g["layer"], g["value"], linestyle=style, marker=marker, markersize=4, color=colour[split],
                    alpha=0.6 if split == "train" else 1.0, label=f"{probe} / {split}")
    keys = [k for k in key_names if k in df.columns]
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("accuracy" + (f" (mean over {', '.join(keys)})" if keys else ""))
    ax.set_title(f"{df['task'].iloc[0]} — {df['model'].iloc[0]}")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(sorted(mean["layer"].unique()))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_run(args: argparse.Namespace, df: pd.DataFrame, record: dict):
    task = get_task(args.task)
    out = args.out or default_run_dir(args.task, df["model"].iloc[0])
    with RunDir(out, overwrite=getattr(args, "overwrite", False)) as run:
        write_tidy(run, df)
        run.write_text("results.md", markdown_report(df, task.key_names))
        plot_by_layer(df, run.file("accuracy_by_layer.png"), task.key_names)
        run.write_json("config.json", config_record({**vars(args), "out": str(out)}, seed=args.seed, **record))
        return run.commit()


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(peek_task(argv, DEFAULT_TASK)).parse_args(argv)
    set_quiet(args.quiet)
    df, record = run_job(args)
    path = write_run(args, df, record)
    print(f"results: {path}/results.csv, {path}/results.md, {path}/accuracy_by_layer.png")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
