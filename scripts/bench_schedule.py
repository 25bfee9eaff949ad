"""Benchmark: the cheapest schedule for integrated gradients and for deletion variants, before/after in one run.

(ig) ``pk.attribute(methods=["integrated-gradients"])`` on ``--sentences`` RT polarity test sentences (seeded
     shuffle), batches of 16, 50 steps: CPU time (``time.process_time``) with IG's rows per pass tied to the
     example batch as before (the padded batch of 16, 16 rows per pass: ``old_schedule``) and with the default (steps × examples packed into passes that
     keep their activations within 512 MiB: ~100 rows of RT sentences); the largest difference between the two runs' scores (they must agree within float rounding).
     Target ≤ 0.8×.
(eraser) the ERASER experiment with every default method on ``--sentences`` examples: CPU time as before
     (``old_eraser``: every deletion variant re-tokenised and run in padded batches of 16 sorted by characters,
     no memo shared with occlusion, the old IG schedule, every bootstrap statistic called once per resample) and
     now (variants from each word's cached token pieces, grouped by token count with no padding, each distinct
     input once across occlusion and ERASER; IG rows by budget; vectorized bootstrap statistics); the tables
     must agree (values within float32 rounding of the logits, the same rows and tiers). Target ≤ 0.5×.
     The bootstrap's cost does not grow with the examples while the passes' does, so the ratio rises with
     ``--sentences``: the new path's passes are at their floor (IG's 50 × (forward + backward), one forward per
     distinct variant), the old one's ~20 % above it (≈ 1.6 against 1.3 s of CPU per RT sentence).

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


def _old_class_distributions(classifier, examples, batch_size, *, desc=None, pieces=None, share=False):
    """Deletion variants as before: every one re-tokenised, padded batches of ``batch_size`` sorted by
    characters, under no_grad, no memo across calls (ERASER's own (example, kept words) cache still applies)."""
    from probekit.attribution.occlusion import by_characters, empty_input
    from probekit.attribution.words import model_inputs

    out = np.zeros((len(examples), classifier.n_classes))
    full, empty = by_characters(examples)
    with torch.no_grad():
        for start in range(0, len(full), batch_size):
            rows = full[start:start + batch_size]
            batch = classifier.encode([examples[j] for j in rows], warn=False)
            out[rows] = torch.softmax(classifier(**model_inputs(batch)).float(), -1).cpu().numpy()
        if empty:
            out[empty] = torch.softmax(classifier(**empty_input(classifier)).float(), -1).cpu().numpy()[0]
    return out


def old_eraser():
    """Context: ERASER as before — the old IG schedule, deletion variants as :func:`_old_class_distributions`,
    and every bootstrap interval with its statistic called once per resample (not vectorized)."""
    import contextlib

    from probekit.attribution import occlusion
    from probekit.core import intervals
    from probekit.evaluation.eraser import experiment

    def unvectorized(fn):
        return lambda *a, **k: fn(*a, **{**k, "vectorized": False})

    @contextlib.contextmanager
    def patched():
        saved = [(m, n, getattr(m, n)) for m, n in ((occlusion, "class_distributions"),
                                                     (experiment, "class_distributions"),
                                                     (intervals, "over_examples"), (intervals, "paired_difference"),
                                                     (intervals, "ranking"))]
        occlusion.class_distributions = experiment.class_distributions = _old_class_distributions
        for name in ("over_examples", "paired_difference", "ranking"):
            setattr(intervals, name, unvectorized(getattr(intervals, name)))
        try:
            with old_schedule():
                yield
        finally:
            for m, n, f in saved:
                setattr(m, n, f)
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

    def eraser(assemble, examples):
        occlusion.ASSEMBLE = assemble
        return run(Context(classifier=clf, examples=examples, source=None, batch_size=16, quiet=True))

    eraser(True, test[:2])                                                     # warm-up
    try:
        with old_eraser():
            t_old, old = cpu(lambda: eraser(False, test))
        t_new, new = cpu(lambda: eraser(True, test))
    finally:
        occlusion.ASSEMBLE = True
    a, b = old.tables["eraser"], new.tables["eraser"]
    num = [c for c in a.select_dtypes("number").columns if c not in ("ci_low", "ci_high")]
    diff = float(np.nanmax(np.abs(a[num].to_numpy(float) - b[num].to_numpy(float))))
    ci = float(np.nanmax(np.abs(a[["ci_low", "ci_high"]].to_numpy(float) - b[["ci_low", "ci_high"]].to_numpy(float))))
    same = (a["tier"].equals(b["tier"]) and a[["example", "method", "k", "metric"]].equals(
        b[["example", "method", "k", "metric"]]))
    print(f"\n(eraser) ERASER, every default method, {len(test)} RT test sentences, batches of 16 "
          f"({new.counts['forward_passes']} distinct inputs)")
    print(f"  before: variants re-tokenised in padded batches of 16, IG rows 16, intervals one resample at a time"
          f"   CPU {t_old:8.2f} s")
    print(f"  after:  variants from cached pieces, by token count, each distinct input once; IG rows by budget; "
          f"vectorized intervals   CPU {t_new:8.2f} s")
    print(f"  ratio {t_new / t_old:.3f}   (target ≤ 0.5: {'met' if t_new <= 0.5 * t_old else 'NOT met'});  "
          f"largest difference: values {diff:.2e}, interval bounds {ci:.2e}; same rows and tiers: {same}")


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
