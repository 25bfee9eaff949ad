"""Benchmark: probekit's extraction against a plain transformers forward pass, on the same sentences.

Prints, for the same sentences and batch size (EWT dev when ../shared is present, else generated sentences):
a plain ``model(..., output_hidden_states=True, output_attentions=True)`` pass over length-sorted batches;
probekit's extraction with word alignment and cache writes; their ratio (target ≤ 1.15); a cached rerun as
a fraction of the first run (target ≤ 10%); and each phase's peak memory. Each phase runs in its own process
so peak memory is its own; the phases alternate ``--repeats`` times and the best time of each is used, as a
shared machine (CPU steal) slows single runs at random. CPU time (user + system, all threads) is printed
beside wall time; on a busy machine its ratio is the steadier.

    python scripts/bench_extract.py [--conllu FILE] [--limit N] [--batch-size 32] [--repeats 3] [--no-attention]
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EWT_DEV = ROOT.parent / "shared" / "data" / "ud-english-ewt" / "en_ewt-ud-dev.conllu"


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load_examples(conllu: str | None, limit: int | None):
    from probekit.core.examples import Example

    path = Path(conllu) if conllu else EWT_DEV
    if path.is_file():
        words, out = [], []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                if words:
                    out.append(Example(words=words))
                words = []
            elif not line.startswith("#"):
                cols = line.split("\t")
                if cols[0].isdigit():
                    words.append(cols[1].replace(" ", "_"))
        if words:
            out.append(Example(words=words))
        source = str(path)
    else:
        from probekit.corpora.grammar import Grammar, generate

        out = [Example(words=s.words) for s in generate(Grammar.load("english"), 2000, seed=0)]
        source = "generated (english.gr)"
    return out[:limit] if limit else out, source


def phase(name: str, args) -> dict:
    import torch

    from probekit.core.cache import get_activations
    from probekit.cli import set_quiet
    from probekit.core.encoder import load_encoder
    from probekit.core.extraction import encode_examples, length_batches, model_inputs

    set_quiet(True)
    torch.set_grad_enabled(False)
    examples, source = load_examples(args.conllu, args.limit)
    enc = load_encoder(args.model, attention=args.attention)
    result = {"phase": name, "sentences": len(examples), "source": source}
    if name == "plain":
        encoded = encode_examples(enc, examples, warn=False)
        batches = length_batches(encoded, args.batch_size)
        t, c = time.perf_counter(), cpu_seconds()
        for batch in batches:          # tokenising is included: the plain call starts from words too
            words = [examples[e.index].words for e in batch]
            inputs = enc.tokenizer(words, is_split_into_words=True, padding=True, truncation=True,
                                   max_length=enc.max_length, return_tensors="pt")
            inputs = {k: v for k, v in inputs.items() if k in model_inputs(enc, batch)}
            out = enc.model(**inputs, output_hidden_states=True, output_attentions=args.attention)
            _ = [h.numpy() for h in out.hidden_states]
        result["seconds"], result["cpu"] = time.perf_counter() - t, cpu_seconds() - c
    else:
        t, c = time.perf_counter(), cpu_seconds()
        store = get_activations(enc, examples, cache_dir=args.cache_dir, attention=args.attention,
                                batch_size=args.batch_size)
        result["seconds"], result["cpu"] = time.perf_counter() - t, cpu_seconds() - c
        result["store_mb"] = sum(p.stat().st_size for p in store.path.iterdir()) / 2**20
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--conllu", default=None)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--model", default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-attention", dest="attention", action="store_false")
    p.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as cache:
        base = [sys.executable, __file__, "--batch-size", str(args.batch_size), "--cache-dir", cache]
        for flag, value in (("--conllu", args.conllu), ("--limit", args.limit), ("--model", args.model)):
            if value is not None:
                base += [flag, str(value)]
        if not args.attention:
            base.append("--no-attention")
        runs: dict[str, list[dict]] = {"plain": [], "probekit": [], "cached": []}
        for r in range(max(1, args.repeats)):
            # each round starts from an empty cache, so "probekit" always extracts and writes
            for entry in Path(cache).iterdir():
                shutil.rmtree(entry)
            for name in runs:
                out = subprocess.run(base + ["--phase", name], capture_output=True, text=True, check=True)
                runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    plain, first, cached = (min(rs, key=lambda x: x["seconds"]) for rs in runs.values())
    cpu = {name: min(x["cpu"] for x in rs) for name, rs in runs.items()}
    for name, rs in runs.items():
        print(f"{name:>9} runs, wall (CPU) s: " + ", ".join(f"{x['seconds']:.2f} ({x['cpu']:.1f})" for x in rs))
    what = "hidden states + attention" if args.attention else "hidden states"
    print(f"sentences: {plain['sentences']} from {plain['source']}; batch size {args.batch_size}; {what}")
    print(f"plain transformers forward:           {plain['seconds']:8.2f} s   peak {plain['peak_rss_mb']:7.0f} MB")
    print(f"probekit extract + align + cache:     {first['seconds']:8.2f} s   peak {first['peak_rss_mb']:7.0f} MB"
          f"   (store {first['store_mb']:.0f} MB)")
    print(f"cached rerun:                         {cached['seconds']:8.2f} s   peak {cached['peak_rss_mb']:7.0f} MB")
    print(f"ratio probekit / plain:               {first['seconds'] / plain['seconds']:8.3f}   (target <= 1.15)"
          f"   CPU time: {cpu['probekit'] / cpu['plain']:.3f}")
    print(f"cached rerun / first run:             {cached['seconds'] / first['seconds']:8.3f}   (target <= 0.10)")


if __name__ == "__main__":
    main()
