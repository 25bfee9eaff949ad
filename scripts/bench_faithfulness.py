"""Benchmark: the whole faithfulness suite on RT polarity dev examples, frozen bundled model, attention head.

Trains (or reuses, with ``--classifier DIR``) a frozen attention-pooling classifier on RT train, then runs
every experiment of ``pk.faithfulness`` on the first ``--limit`` (default 500) RT dev examples and prints, from
one run: the total wall time, the time of each experiment and its share of the total, and the CPU time.
Adversary and permutation are batched over examples (no Python loop over examples inside the optimisation).

    nice python scripts/bench_faithfulness.py [--limit 500] [--classifier runs/rt-attention] [--out DIR]
"""
from __future__ import annotations

import argparse
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--classifier", default=None, help="a trained classifier folder (default: train one)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--experiments", nargs="+", default=None)
    ap.add_argument("--out", default=None, help="also write the run folder here")
    args = ap.parse_args()

    import probekit as pk

    folder = args.classifier
    if folder is None:
        folder = tempfile.mkdtemp(prefix="bench-faith-")
        t = time.perf_counter()
        pk.classify(train="rt:train", dev="rt:dev", head="attention", quiet=True, baselines=False,
                    data_root=args.data_root).write(folder, overwrite=True)
        print(f"trained the frozen attention classifier in {time.perf_counter() - t:.1f} s → {folder}")
    wall, cpu = time.perf_counter(), time.process_time()
    result = pk.faithfulness(folder, "rt:dev", limit=args.limit, experiments=args.experiments, quiet=True,
                             data_root=args.data_root)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    seconds = result.record["seconds"]
    print(f"\n{result.record['counts']['examples']} RT dev examples; total {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"(CPU/wall {cpu / wall:.2f})\n")
    print(f"{'step':<16}{'seconds':>10}{'share':>8}")
    for name, s in seconds.items():
        print(f"{name:<16}{s:>10.1f}{s / wall:>8.1%}")
    skipped = result.record.get("skipped") or {}
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    if args.out:
        print(f"\nwrote {result.write(args.out, overwrite=True)}")


if __name__ == "__main__":
    main()
