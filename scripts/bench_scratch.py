"""Benchmark: BiLSTM trained from scratch on the RT polarity training split, seconds per epoch; then (optional)
the whole faithfulness suite on RT examples with that BiLSTM, wall and CPU time.

Jain & Wallace's BiLSTM (embedding 300, hidden 128 per direction, attention pooling, Adam 1e-3 with amsgrad,
batch 32) on ``rt:train`` (8,529 sentences) selecting on ``rt:dev``; ``--threads`` is torch's intra-op thread
count while training (default 1: on a busy machine extra threads spin). Prints each epoch's training seconds
(wall), the CPU seconds per epoch, and the dev/test accuracy. Targets: ≤ 60 s per epoch; the faithfulness suite
on 500 examples ≤ 10 CPU minutes. ``--before`` first trains the same epochs as the code did before it was made
faster (torch's per-parameter Adam loop instead of the fused Adam, the BiLSTM over a packed sequence instead of
padded rows; same numbers to float rounding) and prints the ratio of the two, measured in one run.

    nice python scripts/bench_scratch.py [--epochs 2] [--threads 1] [--before] [--faithfulness 500]
        [--out DIR] [--classifier DIR] [--experiments tau permutation …] [--wp-epochs 8] [--adversary-epochs 80]
        [--seeds 5] [--lambdas …]

CPU time (``time.process_time``) is the figure to compare on a shared machine; wall time is printed beside it.
"""
from __future__ import annotations

import argparse
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--encoder", default="lstm", choices=["lstm", "cnn", "average"])
    ap.add_argument("--faithfulness", type=int, default=0, metavar="N",
                    help="also time the whole faithfulness suite on N rt:test examples (0: skip)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--out", default=None, help="keep the classifier here (default: a temporary folder)")
    ap.add_argument("--classifier", default=None, metavar="DIR",
                    help="time the faithfulness suite on this saved classifier instead of training one")
    ap.add_argument("--experiments", nargs="+", default=None,
                    help="faithfulness experiments to time (default: every one)")
    ap.add_argument("--wp-epochs", type=int, default=None,
                    help="epochs of each Wiegreffe & Pinter retraining (default: the paper's 8)")
    ap.add_argument("--adversary-epochs", type=int, default=None,
                    help="most epochs of each end-to-end adversary (default: the paper's 80)")
    ap.add_argument("--seeds", type=int, default=None, help="Wiegreffe & Pinter's retrained seeds (default 5)")
    ap.add_argument("--lambdas", type=float, nargs="+", default=None,
                    help="end-to-end adversary's λ (default: the paper's five)")
    ap.add_argument("--before", action="store_true",
                    help="also train as before (per-parameter Adam loop, packed BiLSTM); print the CPU ratio")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    before = train(args, fast=False)[1] if args.before and not args.classifier else None
    folder, now = (args.classifier, None) if args.classifier else train(args)
    if before is not None:
        print(f"CPU per epoch (training and dev evaluation): before {before / args.epochs:.1f} s, now "
              f"{now / args.epochs:.1f} s: {before / now:.2f}× less")
    if args.faithfulness:
        suite(folder, args)


def packed_bilstm(self, x, lengths):
    """The BiLSTM over a packed sequence: what ``ScratchClassifier._bilstm`` replaced."""
    import torch
    from torch import nn

    packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, (h, _) = self.rnn(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, torch.cat([h[0], h[1]], -1)


def train(args, fast: bool = True):
    """Train the BiLSTM and print its timings; (the saved folder, the training's CPU seconds). ``fast=False``:
    as the code trained before (per-parameter Adam loop, packed BiLSTM)."""
    import probekit as pk
    from probekit.classifiers import scratch_train
    from probekit.classifiers.scratch import ScratchClassifier

    real, real_opt, real_lstm = scratch_train.train_scratch, scratch_train.jw_optimizer, ScratchClassifier._bilstm

    def timed(*a, **kw):                       # the thread count asked for, not the single-thread default
        return real(*a, **{**kw, "n_threads": args.threads})

    def optimizer(*a, **kw):
        opt = real_opt(*a, **kw)
        for group in opt.param_groups:         # torch's default CPU Adam: one parameter at a time
            group["fused"] = fast
        return opt

    scratch_train.train_scratch, scratch_train.jw_optimizer = timed, optimizer
    ScratchClassifier._bilstm = real_lstm if fast else packed_bilstm
    t = time.perf_counter()
    res = pk.classify(train="rt:train", dev="rt:dev", test="rt:test", encoder=args.encoder, head="attention",
                      epochs=args.epochs, quiet=True, baselines=False, data_root=args.data_root)
    total = time.perf_counter() - t
    scratch_train.train_scratch, scratch_train.jw_optimizer, ScratchClassifier._bilstm = real, real_opt, real_lstm
    epochs = res.record["timing"]["epoch_s"]
    n = res.record["counts"]["train_examples"]
    print(f"{'now' if fast else 'before'}: {args.encoder} on rt:train ({n} examples), "
          f"{args.threads} thread(s): epochs {', '.join(f'{s:.1f}' for s in epochs)} s; mean {sum(epochs) / len(epochs):.1f} s "
          f"per epoch (target ≤ 60); whole run {total:.1f} s")
    cpu = res.record["timing"]["train_cpu_s"]
    print(f"CPU time of the training (epochs and dev evaluations): {cpu:.1f} s, {cpu / len(epochs):.1f} s per epoch "
          f"(wall time per epoch exceeds this only while other processes hold the cores)")
    print(f"dev accuracy {res.accuracy('dev'):.3f}, test accuracy {res.accuracy('test'):.3f} after "
          f"{args.epochs} epoch(s)")
    folder = args.out or tempfile.mkdtemp(prefix="bench-scratch-")
    res.write(folder, overwrite=True)
    return folder, cpu


def epochs_run(result) -> str:
    """The epochs each early-stopped training ran (the end-to-end adversary's, one per λ), if any."""
    runs = [int(v) for t in result.tables.values() if "metric" in t for v in t.loc[t["metric"] == "epochs", "value"]]
    return f"; epochs trained: {', '.join(map(str, runs))}" if runs else ""


def suite(folder, args) -> None:
    """Each experiment in its own run, so each gets its own CPU time (the Wiegreffe & Pinter ones then do not
    share the base model's outputs, which costs one forward pass over the splits each)."""
    import probekit as pk
    from probekit.evaluation.experiments import names

    options = {k: v for k, v in (("epochs", args.wp_epochs), ("adversary_epochs", args.adversary_epochs),
                                 ("seeds", args.seeds), ("lambdas", args.lambdas)) if v}
    total_cpu, total_wall = 0.0, 0.0
    for name in args.experiments or names():
        wall, cpu = time.perf_counter(), time.process_time()
        res = pk.faithfulness(folder, "rt:test", limit=args.faithfulness, train="rt:train", dev="rt:dev",
                              quiet=True, data_root=args.data_root, experiments=[name], **options)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        total_cpu, total_wall = total_cpu + cpu, total_wall + wall
        print(f"  {name:<14} {cpu:8.1f} s CPU {wall:8.1f} s wall{epochs_run(res)}", flush=True)
    print(f"faithfulness on {args.faithfulness} rt:test examples: {total_cpu:.1f} s CPU, {total_wall:.1f} s wall "
          f"(target ≤ 600 s CPU)")


if __name__ == "__main__":
    main()
