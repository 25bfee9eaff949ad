"""Benchmark: the cheapest schedule for integrated gradients and for deletion variants, before/after in one run.

(ig) ``pk.attribute(methods=["integrated-gradients"])`` on ``--sentences`` RT polarity test sentences (seeded
     shuffle), batches of 16, 50 steps: CPU time (``time.process_time``) with IG's rows per pass tied to the
     example batch as before (the padded batch of 16, 16 rows per pass: ``old_schedule``) and with the default (steps × examples packed into passes that
     keep their activations within 512 MiB: ~100 rows of RT sentences); the largest difference between the two runs' scores (they must agree within float rounding).
     Target ≤ 0.8×.
(eraser) the ERASER experiment with every default method on ``--sentences`` examples: CPU time with every
     deletion variant re-tokenised (as before: ``occlusion.ASSEMBLE = False``, and the old IG schedule) and with variants assembled from each word's cached token pieces (and the default IG
     schedule); the tables must be equal. Target ≤ 0.5×.

The classifier is a frozen attention-pooling head on the bundled all-MiniLM-L6-v2 trained by ``pk.classify``
on ``--train`` RT train sentences (``--classifier DIR`` loads a saved one; ``--save-classifier DIR`` saves it).

    nice python scripts/bench_schedule.py [--part ig eraser] [--sentences 100] [--threads 1]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_attribute import shuffled, train_classifier  # noqa: E402


def cpu(fn):
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def old_schedule():
    """Context: integrated gradients as before — the padded example batch, rows per pass = the batch (16)."""
    import contextlib

    from probekit.attribution import gradients

    @contextlib.contextmanager
    def patched():
        packed = gradients._packed
        gradients._packed = lambda clf, batch, target, steps, rows, fx: gradients._lig(
            clf, batch, target, steps, max(16, len(target)), fx)
        try:
            yield
        finally:
            gradients._packed = packed
    return patched()


def part_ig(clf, test, args):
    import probekit as pk

    kw = dict(methods=["integrated-gradients"], steps=50, batch_size=16, quiet=True)
    pk.attribute(clf, data=test[:16], **kw)                                   # warm-up
    with old_schedule():
        t_old, old = cpu(lambda: pk.attribute(clf, data=test, **kw))
    t_new, new = cpu(lambda: pk.attribute(clf, data=test, **kw))
    diff = np.abs(old.frame["score"].to_numpy() - new.frame["score"].to_numpy()).max()
    print(f"\n(ig) integrated gradients, {len(test)} RT test sentences, batches of 16, 50 steps")
    print(f"  padded batch, 16 rows (before)     CPU {t_old:8.2f} s")
    print(f"  rows per pass by the default budget CPU {t_new:8.2f} s")
    print(f"  ratio {t_new / t_old:.3f}   (target ≤ 0.8: {'met' if t_new <= 0.8 * t_old else 'NOT met'});  "
          f"largest score difference {diff:.2e}")


def part_eraser(clf, test, args):
    from probekit.attribution import occlusion
    from probekit.evaluation.base import Context
    from probekit.evaluation.eraser.experiment import run

    def eraser(assemble):
        occlusion.ASSEMBLE = assemble
        return run(Context(classifier=clf, examples=test, source=None, batch_size=16, quiet=True))

    try:
        with old_schedule():
            t_old, old = cpu(lambda: eraser(False))
        t_new, new = cpu(lambda: eraser(True))
    finally:
        occlusion.ASSEMBLE = True
    a, b = old.tables["eraser"], new.tables["eraser"]
    num = a.select_dtypes("number").columns
    diff = float(np.nanmax(np.abs(a[num].to_numpy(float) - b[num].to_numpy(float))))
    print(f"\n(eraser) ERASER, every default method, {len(test)} RT test sentences, batches of 16 "
          f"({new.counts['forward_passes']} distinct inputs)")
    print(f"  variants re-tokenised, IG rows 16 (before)   CPU {t_old:8.2f} s")
    print(f"  variants from cached pieces (after)          CPU {t_new:8.2f} s")
    print(f"  ratio {t_new / t_old:.3f}   (target ≤ 0.5: {'met' if t_new <= 0.5 * t_old else 'NOT met'});  "
          f"largest table difference {diff:.2e}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", nargs="+", choices=["ig", "eraser"], default=["ig", "eraser"])
    p.add_argument("--classifier", default=None, help="a saved classifier folder (default: train one)")
    p.add_argument("--save-classifier", default=None, help="save the trained classifier here")
    p.add_argument("--data-root", default=None, help="folder holding rt-sentence-polarity/ (default ../shared/data)")
    p.add_argument("--train", type=int, default=500, help="training sentences for the head (default 500)")
    p.add_argument("--sentences", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared machine)")
    args = p.parse_args()

    import probekit as pk
    from probekit.corpora.labelled import load_split

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.classifier:
            clf = pk.load_classifier(args.classifier).eval()
        else:
            clf, secs, acc = train_classifier(args, Path(tmp) / "cache")
            print(f"classifier trained on {args.train} RT sentences in {secs:.0f} s (dev accuracy {acc:.3f})")
            if args.save_classifier:
                from probekit.classifiers.saved import save_classifier

                save_classifier(clf, args.save_classifier)
    test = shuffled(load_split("rt:test", what="--test", data_root=args.data_root))[: args.sentences]
    print(f"torch threads {torch.get_num_threads()}; CPU times from time.process_time, one run")
    if "ig" in args.part:
        part_ig(clf, test, args)
    if "eraser" in args.part:
        part_eraser(clf, test, args)


if __name__ == "__main__":
    main()
