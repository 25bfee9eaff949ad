"""Jain & Wallace's Kendall τ table of the RT BiLSTM after every training epoch, not only the selected one.

Trains Jain & Wallace's BiLSTM with tanh attention (``classify --encoder lstm``: embedding 300, hidden 128, Adam
1e-3 with amsgrad, weight decay 1e-5 but none on the attention, no dropout, batches of 32) on ``rt:train`` and,
after each epoch, runs ``pk.faithfulness`` τ (their §4.1 definitions: gradient × input w.r.t. the word
embeddings with the attention detached, leave-one-out TVD with the word deleted, scipy's tau-b per example over
the real words) on the first ``--limit`` ``rt:test`` sentences. Prints one row per epoch: dev loss, accuracy and
ROC-AUC (what Jain & Wallace's trainer selects on), test accuracy, the median probability of the predicted
class on those sentences (how saturated the model is), and the three mean τ with their 95 % bootstrap
intervals; then the epoch ``classify`` keeps (their rule: best dev ROC-AUC after the first epoch). It shows
whether "τ(gradient, LOO) above τ(attention, gradient)" depends on how long the model was trained.

    python scripts/jain_wallace_by_epoch.py [--epochs 8] [--limit 200] [--seed 0] [--data-root DIR]
"""
from __future__ import annotations

import argparse
import time

PAIRS = ("mean τ(attention, gradient)", "mean τ(attention, LOO)", "mean τ(gradient, LOO)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()

    import numpy as np
    import torch

    import probekit as pk
    from probekit.classifiers.batching import live_logits, loss_accuracy
    from probekit.corpora.labelled import load_split
    from probekit.classifiers.metrics import label_ids
    from probekit.classifiers.scratch_train import SCRATCH_DEFAULTS, build_model, dev_auc, train_scratch

    torch.set_num_threads(1)
    splits = {s: load_split(f"rt:{s}", what=s, data_root=args.data_root) for s in ("train", "dev", "test")}
    labels = sorted({ex.meta["label"] for ex in splits["train"]})
    y = {s: label_ids(exs, labels, s) for s, exs in splits.items()}
    clf, _ = build_model(splits["train"], labels, encoder="lstm", head="attention", units="word", min_count=1,
                         max_size=None, vectors=None, embedding_dim=None, hidden_dim=None,
                         dropout=SCRATCH_DEFAULTS["dropout"], attention_dim=128, n_heads=4, max_length=None,
                         seed=args.seed)
    test, dev = clf.tokenize(splits["test"], warn=False), clf.tokenize(splits["dev"], warn=False)
    evaluated = splits["test"][:args.limit]
    print("| epoch | dev loss | dev accuracy | dev ROC-AUC | test accuracy | median p(predicted) | "
          + " | ".join(PAIRS) + " |")
    print("|---" * (6 + len(PAIRS)) + "|")

    def report(epoch, model):
        logits = live_logits(model, test, 128)
        top = logits[:len(evaluated)]                      # the sentences τ is computed on
        p = np.exp(top - top.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        _, test_acc = loss_accuracy(logits, y["test"])
        dev_logits = live_logits(model, dev, 128)
        dev_loss, dev_acc = loss_accuracy(dev_logits, y["dev"])
        f = pk.faithfulness(model, evaluated, experiments=["tau"], quiet=True, seed=args.seed).frame
        cells = []
        for q in PAIRS:
            r = f[f["quantity"] == q].iloc[0]
            cells.append(f"{r['value']:.3f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]")
        auc = dev_auc(dev_logits, y["dev"])
        print(f"| {epoch} | {dev_loss:.3f} | {dev_acc:.3f} | {auc:.4f} | {test_acc:.3f} | "
              f"{np.median(p.max(1)):.4f} | " + " | ".join(cells) + " |", flush=True)
        model.train()

    t = time.process_time()
    history, _, _ = train_scratch(clf, {"train": splits["train"], "dev": splits["dev"]},
                                  {"train": y["train"], "dev": y["dev"]}, epochs=args.epochs,
                                  lr=SCRATCH_DEFAULTS["lr"], batch_size=32,
                                  weight_decay=SCRATCH_DEFAULTS["weight_decay"], seed=args.seed, on_epoch=report)
    kept = int(history.loc[history["best"], "epoch"].iloc[0])
    print(f"\nkept: epoch {kept} (best {history.attrs['selection']} after epoch 1); "
          f"{time.process_time() - t:.0f} s CPU; τ on the first {len(evaluated)} rt:test sentences")


if __name__ == "__main__":
    main()
