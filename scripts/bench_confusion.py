"""Benchmark of attention confusion scores: the twelve conditions × 1,000 sentences on the default model.

Prints the wall time of ``python -m probekit.confusion`` end to end (item generation, model loading,
extraction, scoring, writing the run folder) and of extraction alone (model loading and word-level attention
for the same sentences, nothing scored), their ratio (target ≤ 1.2), each one's peak resident memory, and the
Table-2-shaped table the model gives. Each measurement runs in a fresh process (so peaks are its own), the
two alternating, ``--repeats`` times; the best time of each is used, as the machine is shared. Wall time and
CPU time (user + system, all threads) are both reported; on a busy machine the CPU-time ratio is the steadier.

Usage: python scripts/bench_confusion.py [--sentences 1000] [--model M] [--repeats 2] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def phase(kind: str, args) -> dict:
    """One measurement in this process: {"seconds", "cpu", "peak_mb"}."""
    from probekit.cli import set_quiet

    set_quiet(True)
    # Modules are imported before the clock starts in both phases (torch, transformers' BERT, matplotlib are
    # imported once per process, whatever the run), so both clocks time the same kind of work.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import transformers.models.bert.modeling_bert  # noqa: F401

    import probekit.report.confusion_report  # noqa: F401
    import probekit.core.extraction  # noqa: F401
    if kind == "e2e":
        from probekit.confusion import main

        argv = ["--sentences", str(args.sentences), "--out", args.out, "--quiet", "--batch-size",
                str(args.batch_size)] + (["--model", args.model] if args.model else [])
        start, cpu = time.perf_counter(), cpu_seconds()
        if main(argv) != 0:
            raise SystemExit("confusion run failed")
    else:
        from probekit.core.encoder import load_encoder
        from probekit.core.extraction import extract
        from probekit.corpora.conditions import CONDITIONS, generate_items

        examples = [it.to_example() for it in generate_items(list(CONDITIONS), args.sentences, 0)]
        start, cpu = time.perf_counter(), cpu_seconds()
        encoder = load_encoder(args.model, attention=True)
        n = 0
        for act in extract(encoder, examples, hidden=False, attention=True, level="word",
                           batch_size=args.batch_size):
            n += act.attention.shape[-1]
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return {"seconds": seconds, "cpu": cpu, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=1000, help="sentences per condition")
    ap.add_argument("--model", default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", default=None, help="run folder of the end-to-end run (default: a temporary one)")
    ap.add_argument("--phase", choices=["e2e", "extract"], default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args)))
        return 0
    import torch

    out = args.out or tempfile.mkdtemp(prefix="bench_confusion-")
    print(f"torch threads: {torch.get_num_threads()}; 12 conditions × {args.sentences} sentences")
    base = [sys.executable, __file__, "--sentences", str(args.sentences), "--batch-size", str(args.batch_size),
            "--out", out] + (["--model", args.model] if args.model else [])
    runs: dict[str, list[dict]] = {"extract": [], "e2e": []}
    for _ in range(args.repeats):
        for kind in ("extract", "e2e"):
            r = subprocess.run(base + ["--phase", kind], capture_output=True, text=True, check=True)
            runs[kind].append(json.loads(r.stdout.strip().splitlines()[-1]))
    t = {k: min(r["seconds"] for r in v) for k, v in runs.items()}
    c = {k: min(r["cpu"] for r in v) for k, v in runs.items()}
    peak = {k: max(r["peak_mb"] for r in v) for k, v in runs.items()}
    for kind, label in (("extract", "extraction alone"), ("e2e", "end to end")):
        times = ", ".join(f"{r['seconds']:.1f}" for r in runs[kind])
        cpus = ", ".join(f"{r['cpu']:.1f}" for r in runs[kind])
        print(f"{label:17s} wall {t[kind]:6.1f} s (runs: {times}); CPU {c[kind]:6.1f} s (runs: {cpus}); "
              f"peak memory {peak[kind]:.0f} MB")
    print(f"ratio end to end / extraction: wall {t['e2e'] / t['extract']:.2f}, CPU {c['e2e'] / c['extract']:.2f} "
          f"(target <= 1.2; CPU time is the steadier measure on a shared machine)")
    md = (Path(out) / "results.md").read_text(encoding="utf-8")
    start = md.index("## Subject-verb agreement")
    print("\n" + md[start:md.index("## Heads with the lowest confusion")])
    print(md[md.index("## Heads with the lowest confusion"):])
    print(f"run folder: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
