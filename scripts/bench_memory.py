"""Benchmark: peak memory of ``extract --attention`` at N and 10·N sentences (target ratio ≤ 1.10).

Each size runs ``python -m probekit.extract --attention`` in a fresh process (its own cache folder, so the model
always runs) and reports that process's peak resident memory (``resource.getrusage``). The corpora are the first
N sentences of a CoNLL-U file (EWT train when the shared data is present) and those N sentences ten times over:
the forward pass's own peak is set by the longest batch, which grows with the longest sentence drawn, so the
repetition keeps it equal and the ratio measures corpus size alone. Memory flat in corpus size means the ratio
stays near 1: the store is written by position and the corpus tokenised in windows, so neither the written
arrays nor the tokenised corpus stay in memory.

    python scripts/bench_memory.py [--conllu FILE] [--n 100] [--batch-size 32] [--model NAME]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EWT = [base / "shared" / "data" / "ud-english-ewt" / "en_ewt-ud-train.conllu" for base in ROOT.parents[:2]]

CHILD = """
import resource, sys
from probekit.extract import main
code = main(sys.argv[1:])
print("PEAK_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code)
"""


def first_sentences(conllu: Path, n: int, times: int, out: Path) -> int:
    """Write the first ``n`` sentences of ``conllu``, ``times`` over, to ``out``; returns how many were written."""
    blocks = [b.strip("\n") for b in conllu.read_text(encoding="utf-8").split("\n\n") if b.strip()][:n] * times
    out.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return len(blocks)


def peak_mib(corpus: Path, work: Path, args) -> float:
    cmd = [sys.executable, "-c", CHILD, "--corpus", str(corpus), "--out", str(work / "out"), "--attention",
           "--cache-dir", str(work / "cache"), "--batch-size", str(args.batch_size), "--quiet"]
    if args.model:
        cmd += ["--model", args.model]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)])),
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    line = [l for l in done.stdout.splitlines() if l.startswith("PEAK_KIB")]
    if done.returncode != 0 or not line or line[-1].split()[2] != "0":
        sys.exit(f"extract failed on {corpus}:\n{done.stderr[-2000:]}")
    return int(line[-1].split()[1]) / 1024   # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conllu", type=Path, default=next((p for p in EWT if p.is_file()), None))
    ap.add_argument("--n", type=int, default=100, help="the smaller size (the larger is 10·N; default %(default)s)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--model", default=None, help="default: probekit's default model")
    args = ap.parse_args()
    if args.conllu is None or not args.conllu.is_file():
        sys.exit("no CoNLL-U file: pass --conllu FILE")
    peaks = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        for times in (1, 10):
            n = times * args.n
            work = Path(tmp) / str(n)
            work.mkdir()
            got = first_sentences(args.conllu, args.n, times, work / "corpus.conllu")
            peaks[n] = peak_mib(work / "corpus.conllu", work, args)
            out_mib = sum(p.stat().st_size for p in (work / "out").iterdir()) / 2**20
            print(f"{got:>6} sentences: peak RSS {peaks[n]:7.1f} MiB   (output {out_mib:7.1f} MiB)", flush=True)
    ratio = peaks[10 * args.n] / peaks[args.n]
    print(f"ratio 10·N / N: {ratio:.3f}   (target ≤ 1.10: {'met' if ratio <= 1.10 else 'NOT met'})")


if __name__ == "__main__":
    main()
