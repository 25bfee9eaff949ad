"""Benchmark: Wiegreffe & Pinter's ``seeds`` and ``e2e-adversary`` with their heads trained one after another
(before) and stacked into one model (after, ``probekit.classifiers.stacked``), CPU time of each, in one run.

RT polarity, the bundled frozen MiniLM: a frozen attention classifier is trained on a seeded sample of
``--train-limit`` RT train sentences, and both experiments retrain on that sample, select on ``--dev-limit`` RT
dev sentences and report on ``--limit`` RT test sentences (the features come from the activation cache after
the first pass, so the timings are the retrainings and their reports). Also checks that both ways give the same
tables (largest absolute difference of the values).

    nice python scripts/bench_stacked.py --data-root /path/to/data [--train-limit 1500] [--dev-limit 300] [--limit 200]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-limit", type=int, default=1500)
    ap.add_argument("--dev-limit", type=int, default=300)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()

    import probekit as pk
    from probekit.corpora.labelled import load_split
    from probekit.core.examples import seeded_sample
    from probekit.evaluation.wiegreffe_pinter import common as wp_common

    train = seeded_sample(load_split("rt:train", what="rt:train", data_root=args.data_root), args.train_limit, 0)
    dev = seeded_sample(load_split("rt:dev", what="rt:dev", data_root=args.data_root), args.dev_limit, 0)
    folder = tempfile.mkdtemp(prefix="bench-stacked-")
    t = time.perf_counter()
    pk.classify(train=train, dev=dev, head="attention", quiet=True, baselines=False).write(folder, overwrite=True)
    print(f"frozen attention classifier on {len(train)} RT train sentences: {time.perf_counter() - t:.1f} s")

    def run(experiment, stack):
        wp_common.STACK = wp_common.STACK_ADVERSARY = stack
        cpu, wall = time.process_time(), time.perf_counter()
        result = pk.faithfulness(folder, "rt:test", experiments=[experiment], train=train, dev=dev,
                                 limit=args.limit, quiet=True, data_root=args.data_root)
        return time.process_time() - cpu, time.perf_counter() - wall, result.tables[experiment]

    run("seeds", True)                  # warm-up: the activation cache of train, dev and test
    print(f"\n{'experiment':<16}{'before CPU s':>14}{'after CPU s':>13}{'ratio':>8}{'wall ratio':>12}"
          f"{'max |Δ value|':>15}")
    for experiment in ("seeds", "e2e-adversary"):
        c0, w0, t0 = run(experiment, False)
        c1, w1, t1 = run(experiment, True)
        diff = np.nanmax(np.abs(t0["value"].to_numpy(float) - t1["value"].to_numpy(float)))
        print(f"{experiment:<16}{c0:>14.1f}{c1:>13.1f}{c1 / c0:>8.2f}{w1 / w0:>12.2f}{diff:>15.2e}", flush=True)
    print("\n(one thread per training, as the experiments run; the machine may be shared: CPU time is the figure)")


if __name__ == "__main__":
    main()
