"""Per layer, dev accuracy (mean over the task keys) of scikit-learn logistic regression vs probekit's linear
selection probe on the same cached word vectors; with --rigor, the time of --control --mdl vs a plain sweep.

    nice python scripts/bench_probe_rigor.py                  # default nth_token data, every layer
    nice python scripts/bench_probe_rigor.py --layers 0 1 --epochs 6 20
"""
from __future__ import annotations

import argparse
import time

from probekit.core.encoder import load_encoder
from probekit.probing.logreg import LogRegProbe
from probekit.probing.registry import build_data
from probekit.probing.selection import SelectionProbe
from probekit.probing.sweep import activations_for, sentences, sweep, unit_targets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="nth_token")
    ap.add_argument("--layers", type=int, nargs="*", default=None)
    ap.add_argument("--epochs", type=int, nargs="+", default=[6], help="linear-probe epochs to compare")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--rigor", action="store_true", help="also time sweep() plain vs control+mdl")
    args = ap.parse_args()
    data = build_data(args.task, seed=0)
    store = activations_for(load_encoder(None), data, dtype=args.dtype)
    T = unit_targets(store, data)
    tr, dv = data.split_indices("train"), data.split_indices("dev")
    layers = args.layers if args.layers is not None else range(store.num_layers + 1)
    print("layer | logreg | " + " | ".join(f"linear ep{e}" for e in args.epochs) + " | seconds (lr, linear)")
    for layer in layers:
        f = store.hidden(layer)
        A, B = sentences(store, f, tr), sentences(store, f, dv)
        t = time.time()
        lr_acc = LogRegProbe().fit(A, T[tr]).score(B, T[dv]).mean()
        times, accs = [time.time() - t], []
        for e in args.epochs:
            t = time.time()
            p = SelectionProbe(kind="linear", epochs=e, lr=args.lr).fit(A, T[tr], dev=(B, T[dv]))
            accs.append(p.score(B, T[dv]).mean())
            times.append(time.time() - t)
        print(f"{layer} | {lr_acc:.4f} | " + " | ".join(f"{a:.4f}" for a in accs) + " | "
              + ", ".join(f"{s:.0f}" for s in times), flush=True)
    if args.rigor:
        for flags in ({}, {"control": True, "mdl": True}):
            t = time.time()
            sweep(store, data, epochs=6, lr=args.lr, hidden=64, **flags)
            print(f"sweep {flags or 'plain'}: {time.time() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
