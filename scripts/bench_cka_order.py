"""CKA on corpus-ordered words: the minibatch mean taken in corpus order against the full-batch value.

    python scripts/bench_cka_order.py [--model PATH] [--limit 600] [--batch 1024] [--pairs 0:6 2:6 5:6]

Corpus: ud-english-ewt/en_ewt-ud-dev.conllu under $PROBEKIT_DATA (default ../shared/data) in its own order (neighbouring sentences come from
the same document). For pairs of layers of one model it prints the full-batch linear CKA (biased, and with
the unbiased HSIC₁), Nguyen et al.'s minibatch mean over minibatches taken in corpus order (the estimator
``compare`` used before) and :class:`probekit.finetuned.cka.StreamingCKA` (what ``compare`` uses now), with
its interval from minibatches of sentences in a seeded shuffle.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probekit.core.cache import get_activations  # noqa: E402
from probekit.core.encoder import load_encoder  # noqa: E402
from probekit.corpora.conllu import read_conllu  # noqa: E402
from probekit.finetuned.cka import StreamingCKA, hsic1, linear_cka  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud-english-ewt" / "en_ewt-ud-dev.conllu"
DATA = Path(os.environ.get("PROBEKIT_DATA", DATA.parents[1])) / "ud-english-ewt" / "en_ewt-ud-dev.conllu"


def corpus_order_minibatch(X, Y, batch: int) -> float:
    """Mean HSIC₁ over consecutive minibatches (the last weighted by its size), as a ratio."""
    sums, weight = np.zeros(3), 0.0
    for s in range(0, len(X), batch):
        x, y = X[s:s + batch], Y[s:s + batch]
        if len(x) < 4:
            break
        w = len(x) / batch
        sums += w * np.array([hsic1(x, y), hsic1(x, x), hsic1(y, y)])
        weight += w
    xy, xx, yy = sums / weight
    return xy / math.sqrt(xx * yy)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--limit", type=int, default=600)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--pairs", nargs="+", default=["0:6", "2:6", "5:6"])
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    examples = read_conllu(DATA, skip_bad=True, limit=args.limit)
    enc = load_encoder(args.model)
    store = get_activations(enc, examples, cache_dir=args.cache_dir, hidden=True, batch_size=32)
    words = ~np.asarray(store.special, dtype=bool)
    ends = np.concatenate([[0], np.cumsum([words[a:b].sum() for a, b in zip(store.offsets[:-1], store.offsets[1:])])])
    print(f"{int(words.sum())} words of {len(examples)} EWT dev sentences in corpus order, minibatches of "
          f"{args.batch}, {enc.name}")
    for pair in args.pairs:
        a, b = (int(v) for v in pair.split(":"))
        X = np.asarray(store.hidden(a), dtype=np.float64)[words]
        Y = np.asarray(store.hidden(b), dtype=np.float64)[words]
        full_b, full_u = linear_cka(X, Y), linear_cka(X, Y, unbiased=True)
        old = corpus_order_minibatch(X, Y, args.batch)
        acc = StreamingCKA(1, args.batch)
        for i in np.random.default_rng(0).permutation(len(ends) - 1):
            acc.add(X[None, ends[i]:ends[i + 1]], Y[None, ends[i]:ends[i + 1]])
        (ci,) = acc.intervals(resamples=1999)
        print(f"layer {a} vs {b}: full batch {full_b:.4f} (unbiased HSIC1 {full_u:.4f}); corpus-order minibatch "
              f"{old:.4f} ({old - full_u:+.4f}); StreamingCKA {ci.estimate:.4f} ({ci.estimate - full_u:+.1e}), "
              f"95% CI {ci.ci_low:.4f}…{ci.ci_high:.4f}")


if __name__ == "__main__":
    main()
