"""Per layer, dev accuracy (mean over the task keys) of scikit-learn logistic regression vs probekit's linear
probe on the same cached word vectors, measured in one run and printed with their ratio; also the earlier
gradient-trained linear probe (Adam, input dropout) and the MLP probe with and without input dropout. With
--rigor, the wall time of ``sweep`` with --control --mdl vs a plain sweep.

    nice python scripts/bench_probe_rigor.py                  # default nth_token data, every layer
    nice python scripts/bench_probe_rigor.py --layers 0 1 --rigor
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from probekit.core.encoder import load_encoder
from probekit.probing.linear import LinearProbe
from probekit.probing.logreg import LogRegProbe
from probekit.probing.registry import build_data
from probekit.probing.selection import SelectionProbe
from probekit.probing.sweep import activations_for, sentences, sweep, unit_targets


class FirstLayers:
    """The store seen through its first layers only (the timing ratio is per layer; all layers take long)."""

    def __init__(self, store, num_layers: int):
        self._store, self.num_layers = store, num_layers

    def __getattr__(self, name):
        return getattr(self._store, name)


def timed(make, A, yA, B, yB, dev=True):
    t = time.time()
    probe = make().fit(A, yA, dev=(B, yB) if dev else None)
    return float(np.nanmean(probe.accuracies(B, yB))), time.time() - t, probe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="nth_token")
    ap.add_argument("--layers", type=int, nargs="*", default=None)
    ap.add_argument("--epochs", type=int, default=6, help="epochs of the Adam-trained probes (the sweep default)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--no-extra", action="store_true", help="only logreg vs linear (skip Adam linear and MLPs)")
    ap.add_argument("--rigor", action="store_true", help="also time sweep() plain vs --control --mdl")
    ap.add_argument("--rigor-layers", type=int, default=None,
                    help="time the sweeps on layers 0…N only (and 0 without positions); default every layer")
    args = ap.parse_args()
    data = build_data(args.task, seed=0)
    store = activations_for(load_encoder(None), data, dtype=args.dtype)
    T = unit_targets(store, data)
    tr, dv = data.split_indices("train"), data.split_indices("dev")
    layers = args.layers if args.layers is not None else range(store.num_layers + 1)
    head = "layer | logreg | linear | linear/logreg | λ chosen (per key) | s logreg, linear"
    if not args.no_extra:
        head += " | adam-linear | mlp dropout 0.1 | mlp dropout 0 | s adam, mlp .1, mlp 0"
    print(head)
    for layer in layers:
        f = store.hidden(layer)
        A, B = sentences(store, f, tr), sentences(store, f, dv)
        lr_acc, lr_s, _ = timed(LogRegProbe, A, T[tr], B, T[dv])
        lin_acc, lin_s, lin = timed(LinearProbe, A, T[tr], B, T[dv])
        line = (f"{layer} | {lr_acc:.4f} | {lin_acc:.4f} | {lin_acc / lr_acc:.4f} | "
                f"{' '.join(f'{v:g}' for v in lin.l2_)} | {lr_s:.0f}, {lin_s:.0f}")
        if not args.no_extra:
            extra = [timed(lambda: SelectionProbe("linear", epochs=args.epochs, lr=args.lr), A, T[tr], B, T[dv])]
            for dropout in (0.1, 0.0):
                extra.append(timed(lambda: SelectionProbe("mlp", hidden=64, epochs=args.epochs, lr=args.lr,
                                                          dropout=dropout), A, T[tr], B, T[dv]))
            line += " | " + " | ".join(f"{a:.4f}" for a, _, _ in extra) + " | " + \
                ", ".join(f"{s:.0f}" for _, s, _ in extra)
        print(line, flush=True)
    if args.rigor:
        if args.rigor_layers is not None:
            store = FirstLayers(store, args.rigor_layers)
        seconds, cpu = {}, {}
        for name, flags in (("plain", {}), ("control+mdl", {"control": True, "mdl": True})):
            t, c = time.time(), time.process_time()
            sweep(store, data, epochs=args.epochs, lr=args.lr, hidden=64, **flags)
            seconds[name], cpu[name] = time.time() - t, time.process_time() - c
            print(f"sweep {name}: {seconds[name]:.0f} s wall, {cpu[name]:.0f} s CPU", flush=True)
        print(f"--control --mdl / plain: {seconds['control+mdl'] / seconds['plain']:.2f}x wall, "
              f"{cpu['control+mdl'] / cpu['plain']:.2f}x CPU")


if __name__ == "__main__":
    main()
