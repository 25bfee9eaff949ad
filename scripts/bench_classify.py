"""Benchmark: classifier quality and training speed on the seeded RT polarity split and/or HateXplain.

Measured in one run, printed as a table:
- test accuracy of every pooling head on the frozen bundled model, beside TF-IDF + logistic regression and
  logistic regression on the frozen mean-pooled word vectors (the same vectors the heads read; also on the
  max-pooled vectors and on the [CLS] vector, the yardsticks of the max and cls heads);
- time to extract (once, through the activation cache), to train the first head, and to train every further
  head from the cache (the model's forward is patched to raise, so a model call would fail the run);
- optionally (``--finetune N``) fine-tuning on the first N training sentences for ``--finetune-epochs``:
  seconds per epoch (and extrapolated to the full train split) and test accuracy.

    nice python scripts/bench_classify.py [--data-root ../shared/data] [--sets rt hatexplain] [--finetune 1000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def pooled_vectors(feats, how: str):
    """The fixed sentence vectors a linear model gets: mean- or max-pooled words, or the [CLS] vector."""
    import torch

    from probekit.classifiers.pooling import masked_max, masked_mean

    out = []
    for i in range(0, len(feats), 512):
        units, mask, cls = feats.batch(torch.arange(i, min(i + 512, len(feats))))
        out.append({"mean": lambda: masked_mean(units, mask), "max": lambda: masked_max(units, mask)[0],
                    "cls": lambda: cls}[how]().numpy())
    return np.concatenate(out)


def run_set(name, args, cache_dir):
    import probekit as pk
    from probekit.classifiers.baselines import vector_logreg
    from probekit.corpora.labelled import load_split
    from probekit.classifiers.classify import _features, label_ids
    from probekit.classifiers.model import Classifier
    from probekit.core.encoder import load_encoder

    spec = {"rt": ("rt:train", "rt:dev", "rt:test"),
            "hatexplain": ("hatexplain:train", "hatexplain:dev", "hatexplain:test")}[name]
    splits = [load_split(s, what=s, data_root=args.data_root) for s in spec]
    print(f"\n## {name}: train {len(splits[0])}, dev {len(splits[1])}, test {len(splits[2])}")
    if not args.skip_frozen:
        frozen_heads(splits, args, cache_dir)
    if args.finetune and name == "rt":
        finetune(splits, args)


def frozen_heads(splits, args, cache_dir):
    import probekit as pk
    from probekit.classifiers.baselines import vector_logreg
    from probekit.classifiers.classify import _features, label_ids
    from probekit.classifiers.model import Classifier
    from probekit.core.encoder import load_encoder

    rows = []
    common = dict(quiet=True, cache_dir=cache_dir, dtype=args.dtype, seed=0, batch_size=32)
    t0 = time.perf_counter()
    first = pk.classify(*splits, head="attention", **common)
    wall_first = time.perf_counter() - t0
    timing = first.record["timing"]
    print(f"first head (attention): extraction + cache write {timing['features_s']:.1f} s, "
          f"training {timing['train_s']:.1f} s (wall {wall_first:.1f} s)")
    for base in ("tfidf-logreg", "majority"):
        rows.append((base, first.accuracy("test", base), np.nan))
    rows.append(("attention", first.accuracy("test"), timing["train_s"]))
    if args.live_check:
        # the heads train on float16 cached vectors; the saved classifier runs the model in float32
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            folder = first.write(f"{tmp}/run")
            t0 = time.perf_counter()
            live = pk.classify(load=folder, test=splits[2], quiet=True, batch_size=64)
            print(f"saved attention classifier, live float32 forward on test: accuracy "
                  f"{live.accuracy('test', 'attention'):.4f} vs {first.accuracy('test'):.4f} from the "
                  f"{args.dtype} cache ({time.perf_counter() - t0:.0f} s)")
    # every further head: no model call allowed
    import transformers

    def refuse(*a, **k):
        raise RuntimeError("model called although the vectors are cached")

    saved = transformers.PreTrainedModel.__call__
    transformers.PreTrainedModel.__call__ = refuse
    try:
        for head in ("cls", "mean", "max", "attention-multi"):
            t0 = time.perf_counter()
            r = pk.classify(*splits, head=head, baselines=False, **common)
            wall = time.perf_counter() - t0
            rows.append((head, r.accuracy("test"), r.record["timing"]["train_s"]))
            print(f"{head:16s} from the cache: features {r.record['timing']['features_s']:.2f} s, training "
                  f"{r.record['timing']['train_s']:.1f} s (wall incl. loading {wall:.1f} s)")
        # logistic regression on the same frozen mean-pooled vectors
        enc = load_encoder(None)
        clf = Classifier(enc, ["a", "b"], head="mean")
        feats = [_features(clf, s, cache_dir=cache_dir, no_cache=False, dtype=args.dtype, batch_size=32)
                 for s in splits]
        labels = sorted({e.meta["label"] for e in splits[0]})
        y = [label_ids(s, labels, "x") for s in splits]
        for how in ("mean", "max", "cls"):
            t0 = time.perf_counter()
            X = [pooled_vectors(f, how) for f in feats]
            predict, C = vector_logreg(X[0], y[0], X[1], y[1])
            acc = float((predict(X[2]).argmax(1) == y[2]).mean())
            rows.append((f"frozen-{how}-logreg (C={C:g})", acc, time.perf_counter() - t0))
    finally:
        transformers.PreTrainedModel.__call__ = saved
    print("\n| probe | test accuracy | train s |\n|---|---|---|")
    for probe, acc, secs in rows:
        print(f"| {probe} | {acc:.3f} | {'' if np.isnan(secs) else f'{secs:.1f}'} |")


def finetune(splits, args):
    import probekit as pk

    if True:
        n = args.finetune
        for head in args.finetune_heads:
            t0 = time.perf_counter()
            subset = [splits[0][i] for i in np.sort(np.random.default_rng(0).permutation(len(splits[0]))[:n])]
            r = pk.classify(subset, splits[1], splits[2], head=head, finetune=True,
                            epochs=args.finetune_epochs, max_length=64, baselines=False, quiet=True, seed=0)
            wall = time.perf_counter() - t0
            per_epoch = r.record["timing"]["epoch_s"]
            full = np.mean(per_epoch) * len(splits[0]) / n
            print(f"fine-tune {head}: {n} train sentences, {args.finetune_epochs} epoch(s): "
                  f"{', '.join(f'{s:.0f}' for s in per_epoch)} s/epoch → ~{full / 60:.1f} min per full-train epoch "
                  f"({len(splits[0])}); dev acc {r.history['dev_accuracy'].max():.3f}, "
                  f"test acc {r.accuracy('test'):.3f} (wall {wall:.0f} s)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default="../shared/data")
    p.add_argument("--cache-dir", default=None, help="activation cache (default: a fresh temporary folder)")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    p.add_argument("--sets", nargs="+", default=["rt"], choices=["rt", "hatexplain"],
                   help="data sets to run, in order (default: rt)")
    p.add_argument("--live-check", action="store_true",
                   help="also evaluate the saved attention classifier with a live float32 forward pass")
    p.add_argument("--finetune", type=int, default=0, metavar="N", help="fine-tune on the first N train sentences")
    p.add_argument("--finetune-epochs", type=int, default=1)
    p.add_argument("--skip-frozen", action="store_true", help="only the fine-tuning measurement")
    p.add_argument("--finetune-heads", nargs="+", default=["cls", "attention"])
    args = p.parse_args()
    import tempfile

    tmp = tempfile.TemporaryDirectory(prefix="bench-classify-") if args.cache_dir is None else None
    cache_dir = args.cache_dir or tmp.name
    print(f"dtype {args.dtype}; cache {cache_dir}")
    for name in args.sets:
        run_set(name, args, cache_dir)


if __name__ == "__main__":
    main()
