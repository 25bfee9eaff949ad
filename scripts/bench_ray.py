"""Benchmark: ``extract`` sharded over 1 and 2 Ray workers (a local cluster) against one process, in one run,
and where the single-node path stops for bert-large on 1M sentences, scaled from the figures measured here.

RT polarity sentences (``--limit``, default 400), the bundled MiniLM, hidden states of every layer (float16).
Prints wall time of one process, of 1 and of 2 Ray workers (the speed-up of 2 over 1), checks that the three
cache entries are byte-identical, and the per-sentence figures the estimate is built from. The machine may be
shared with other work (its load average is printed): the speed-up is this machine's at this moment.

Estimate for bert-large (24 layers, hidden 1024, 16 heads, 335M parameters) on 1,000,000 sentences, scaled from
the measured MiniLM figures (6 layers, hidden 384, 12 heads, 22.7M parameters):

- disk: bytes per unit × units per sentence; hidden states (25 layers × 1024 × 2 bytes per unit) and, with
  ``--attention``, 24 × 16 × U² × 2 bytes per sentence: both are exact from the measured units per sentence.
- time: measured CPU seconds per sentence × (bert-large's non-embedding parameters / MiniLM's), the ratio of
  the matrix products per token (attention's U² term is small at these lengths).
- memory: the driver holds one window (16 batches) of Activations at a time, so memory does not grow with
  the corpus; a worker holds the model (1.3 GB float32) and one batch.

Measured on the 2-core development machine with little else running (load average 1.5; 8,000 RT sentences,
MiniLM): one process 90.0 s wall (two torch threads), 1 Ray worker 66.6 s, 2 Ray workers 36.6 s (1.82×), the
three cache entries byte-identical; 24.8 units, 133.6 kB of cache and 14.9 ms CPU per sentence. Scaled to
bert-large on 1M sentences: 1.27 TB of hidden states (+0.47 TB with attention), about 59 CPU-hours (29 h of wall
on 2 cores). The single node stops at disk first (a laptop's or a small VM's disk holds no 1.3 TB entry; a
shared file system for ``--cache-dir`` does), then at time; memory does not stop it (flat in corpus size: the
driver holds one window, a worker the 1.3 GB model and one batch). With few windows (1,000 sentences: two) each
worker's start-up dominates and 2 workers are slower than 1 (11.9 s against 9.1 s); under heavy load (30 on 2
cores) a second worker only adds contention.

    nice python scripts/bench_ray.py --data-root /work/shared/data [--limit 400] [--batch-size 32]
"""
from __future__ import annotations

import argparse
import filecmp
import os
import tempfile
import time
from pathlib import Path

MINILM = dict(layers=6, hidden=384, heads=12, params=22.7e6, non_embedding=21.3e6)
LARGE = dict(layers=24, hidden=1024, heads=16, params=335e6, non_embedding=302e6)
SENTENCES = 1_000_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()

    import numpy as np
    import ray

    from probekit.corpora.labelled import load_split
    from probekit.core.cache import get_activations
    from probekit.core.encoder import load_encoder
    from probekit.core.examples import seeded_sample
    from probekit.core.progress import quiet
    from probekit.core.distributed.session import session

    examples = seeded_sample(load_split("rt:train", what="rt:train", data_root=args.data_root), args.limit, 0)
    encoder = load_encoder(None)
    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"{len(examples)} RT sentences, {encoder.name}, batch size {args.batch_size}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (shared machine)\n")
    timings, entries = {}, {}
    with quiet(True):
        with session("auto", workers=1):      # warm-up: start the worker processes and load the model there
            get_activations(encoder, examples[:64], cache_dir=root / "warm", batch_size=args.batch_size)
        for name, workers in (("one process", None), ("1 Ray worker", 1), ("2 Ray workers", 2)):
            wall, cpu = time.perf_counter(), time.process_time()
            with session(None if workers is None else "auto", workers=workers):
                store = get_activations(encoder, examples, cache_dir=root / name.replace(" ", "-"),
                                        batch_size=args.batch_size)
            timings[name] = (time.perf_counter() - wall, time.process_time() - cpu)
            entries[name] = Path(store.path)
    ray.shutdown()
    print(f"{'run':<16}{'wall s':>9}{'driver CPU s':>14}")
    for name, (wall, cpu) in timings.items():
        print(f"{name:<16}{wall:>9.1f}{cpu:>14.1f}")
    one, two = timings["1 Ray worker"][0], timings["2 Ray workers"][0]
    print(f"\nspeed-up of 2 Ray workers over 1: {one / two:.2f}× (wall time of 1 worker / of 2 workers, "
          f"{one:.1f} s / {two:.1f} s; above 1: 2 workers are faster)")
    files = sorted(p.name for p in entries["one process"].iterdir())
    same = all(not filecmp.cmpfiles(entries["one process"], entries[n], files, shallow=False)[1]
               for n in ("1 Ray worker", "2 Ray workers"))
    print(f"cache entries byte-identical across 1 process, 1 and 2 workers: {same}")

    units = float(np.diff(store.offsets).mean())
    entry_bytes = sum(p.stat().st_size for p in entries["one process"].iterdir())
    cpu_per_sentence = timings["one process"][1] / len(examples)
    print(f"\nmeasured: {units:.1f} units per sentence, {entry_bytes / len(examples) / 1e3:.1f} kB of cache per "
          f"sentence (hidden states, float16), {cpu_per_sentence * 1e3:.1f} ms CPU per sentence (one process)")
    hidden_b = (LARGE["layers"] + 1) * LARGE["hidden"] * 2 * units
    attention_b = LARGE["layers"] * LARGE["heads"] * 2 * units ** 2
    hours = cpu_per_sentence * LARGE["non_embedding"] / MINILM["non_embedding"] * SENTENCES / 3600
    print(f"\nbert-large on {SENTENCES:,} such sentences, scaled from these figures:")
    print(f"  disk: {hidden_b * SENTENCES / 1e12:.2f} TB of hidden states; with --attention "
          f"+{attention_b * SENTENCES / 1e12:.2f} TB")
    print(f"  time: {hours:.0f} CPU-hours on this machine's cores (one process: {hours / 2:.0f} h on 2 cores); "
          f"n GPUs as Ray workers divide the model time by about n")
    print("  memory: flat in corpus size (one window in the driver; the model plus one batch per worker)")


if __name__ == "__main__":
    main()
