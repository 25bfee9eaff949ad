"""Benchmark of the dependency-head analysis and the attention probe on UD English EWT (when present).

Prints:
1. per-head dependency accuracy over every head, end to end (extraction + scoring), against extraction alone
   (ratio; target ≤ 1.3), best of ``--repeats`` runs each, on the dev treebank;
2. the Table-1-shaped table of the default model on dev;
3. the Attn probe's training time per epoch on the training treebank (``--train-limit`` sentences) and its
   dev UAS (optionally the Attn + word-vector probe too).

Usage: python scripts/bench_deps.py [--data DIR] [--train-limit N] [--dev-limit N] [--model M] [--words]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probekit.syntax.parsing_probes import ParsingProbe, evaluate_probe, evaluate_right_branching, train_probe  # noqa: E402
from probekit.cli import set_quiet  # noqa: E402
from probekit.corpora.conllu import read_conllu  # noqa: E402
from probekit.syntax.dependency_heads import DependencyHeads  # noqa: E402
from probekit.syntax.deps import table1  # noqa: E402
from probekit.core.encoder import load_encoder  # noqa: E402
from probekit.core.extraction import extract  # noqa: E402
from probekit.core.rundir import markdown_table  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data/ud-english-ewt")


def timed(fn):
    """(wall seconds, result); the process CPU seconds of the last call are kept in ``timed.cpu``."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    timed.cpu = time.process_time() - cpu
    return time.perf_counter() - start, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default=None)
    ap.add_argument("--dev-limit", type=int, default=None)
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--words", action="store_true", help="also train the Attn + word-vector probe")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--skip-probes", action="store_true", help="only the head-accuracy timings and table")
    args = ap.parse_args()
    dev_path, train_path = args.data / "en_ewt-ud-dev.conllu", args.data / "en_ewt-ud-train.conllu"
    if not dev_path.is_file():
        print(f"no EWT dev treebank at {dev_path}; nothing to benchmark")
        return 0
    set_quiet(True)
    print(f"torch threads: {torch.get_num_threads()}")
    dev = read_conllu(dev_path, limit=args.dev_limit)
    encoder = load_encoder(args.model, attention=True)
    print(f"model {encoder.name}: {encoder.num_layers} layers × {encoder.num_heads} heads; dev {len(dev)} sentences")

    def extraction_only():
        n = 0
        for act in extract(encoder, dev, hidden=False, attention=True, level="word", batch_size=args.batch_size):
            n += act.attention.shape[-1]
        return n

    def end_to_end():   # what pk.deps runs: DependencyHeads fed one extraction pass (no tidy table built)
        heads = DependencyHeads(encoder)
        for act in extract(encoder, dev, hidden=False, attention=True, level="word", batch_size=args.batch_size):
            heads.update(act, dev[act.index])
        return heads.scores, heads.truncated

    t_ext, t_e2e, c_ext, c_e2e = [], [], [], []
    for _ in range(args.repeats):      # interleaved, best of each: the box is shared and its load varies
        t_ext.append(timed(extraction_only)[0])
        c_ext.append(timed.cpu)
        t, (scores, truncated) = timed(end_to_end)
        t_e2e.append(t)
        c_e2e.append(timed.cpu)
    runs = lambda ts: ", ".join(f"{t:.1f}" for t in ts)  # noqa: E731
    print(f"\n1. head accuracy, all {encoder.num_layers * encoder.num_heads} heads × 2 directions, EWT dev")
    print(f"   extraction alone: wall {min(t_ext):.1f} s (runs {runs(t_ext)}), CPU {min(c_ext):.1f} s (runs {runs(c_ext)})")
    print(f"   end to end:       wall {min(t_e2e):.1f} s (runs {runs(t_e2e)}), CPU {min(c_e2e):.1f} s (runs {runs(c_e2e)})")
    print(f"   ratio: wall {min(t_e2e) / min(t_ext):.2f}, CPU {min(c_e2e) / min(c_ext):.2f} (target <= 1.3); "
          f"{truncated} sentences too long")

    print("\n2. Table 1 shape, EWT dev\n")
    print(markdown_table(table1(scores.best(min_count=100)), floatfmt=".1f"))

    if args.skip_probes:
        return 0
    if not train_path.is_file():
        print(f"no EWT train treebank at {train_path}; probe benchmark skipped")
        return 0
    from probekit.core.cache import get_activations
    from probekit.syntax.parse import StoredAttention, trees_for
    from probekit.syntax.word_vectors import model_vectors, vocabulary

    train = read_conllu(train_path, limit=args.train_limit)
    t_store = {}
    stores = {}
    for name, ex in (("train", train), ("dev", dev)):
        t_store[name], stores[name] = timed(lambda ex=ex: get_activations(
            encoder, ex, cache_dir=args.cache_dir, hidden=False, attention=True, batch_size=args.batch_size))
    keep = {k: [i for i in range(len(s.offsets) - 1) if i not in set(s.meta["truncated"])] for k, s in stores.items()}
    vocab = vocabulary((w for ex in (train, dev) for e in ex for w in e.words), lowercase=False)
    trees = {"train": trees_for(train, keep["train"], vocab, False), "dev": trees_for(dev, keep["dev"], vocab, False)}
    att = {k: StoredAttention(stores[k], keep[k]) for k in stores}
    print(f"\n3. attention probes: train {len(trees['train'])} sentences, dev {len(trees['dev'])} "
          f"(attention extraction/cache: train {t_store['train']:.0f} s, dev {t_store['dev']:.0f} s)")
    print(f"   right-branching dev UAS {100 * evaluate_right_branching(trees['dev']):.1f}")
    kinds = ["attn"] + (["attn-words"] if args.words else [])
    vectors = model_vectors(encoder, vocab) if args.words else None
    for kind in kinds:
        torch.manual_seed(0)
        probe = ParsingProbe(kind, 2 * encoder.num_layers * encoder.num_heads,
                             word_dim=0 if vectors is None else vectors.shape[1])
        secs = train_probe(probe, trees["train"], att["train"], vectors, epochs=1)
        uas = evaluate_probe(probe, trees["dev"], att["dev"], vectors)
        print(f"   {kind}: {np.mean(secs):.1f} s per epoch ({1000 * np.mean(secs) / len(trees['train']):.2f} ms "
              f"per sentence), dev UAS {100 * uas:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
