"""Attention statistics: time against extraction alone, peak memory at 1× and 4× the corpus, browser pages.

    python scripts/bench_attention.py [--model PATH] [--pairs] [--repeats 2] [--no-memory] [--no-browse]
                                      [--limit N] [--json out.json]

Corpus: ../shared/data/ud-english-ewt/en_ewt-ud-dev.conllu when present, else 2000 generated sentences.

- time: "extraction" iterates ``extract(..., attention=True)`` and drops the maps; "statistics" does the same
  and accumulates every statistic, the Jensen–Shannon head distances and the MDS map. The two alternate
  ``--repeats`` times and the fastest of each is kept, in wall-clock and in process CPU time (the latter is
  steadier on a shared machine); the ratio is the target (≤ 1.3). The ratio without head distances too.
  "same pass" times the statistics inside the extraction loop, so a busy neighbour slows both alike:
  ratio = pass time / (pass time − statistics time).
- memory: the statistics pass runs in a fresh subprocess on the corpus and on the corpus repeated four
  times; peak resident memory (``ru_maxrss``) of each, and the increase.
- browser: if ``probekit/browser.py`` exists, ``scripts/bench_browse.py`` runs in a subprocess and its table
  (page size and write time at 128 and 512 tokens, next to bertviz's head_view) is printed as well.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EWT = ROOT.parent / "shared" / "data" / "ud-english-ewt" / "en_ewt-ud-dev.conllu"


def corpus_path() -> str | None:
    return str(EWT) if EWT.is_file() else None


def load_inputs(encoder, corpus: str | None, pairs: bool, limit: int | None, factor: int = 1):
    from probekit.corpora.documents import pair_inputs, read_documents, single_inputs

    docs, _ = read_documents(corpus, limit=limit, generated=2000)
    docs = docs * factor
    return pair_inputs(docs, encoder.tokenizer, 128) if pairs else single_inputs(docs)


def statistics_pass(encoder, inputs, similarity: bool, batch_size: int, pairs: bool) -> float:
    """One statistics pass; returns the seconds spent in the statistics themselves (the rest is extraction)."""
    from probekit.heads.statistics import AttentionStatistics, SpecialTokens, mds_map
    from probekit.core.extraction import extract

    acc = AttentionStatistics(encoder.num_layers, encoder.num_heads, SpecialTokens.of(encoder.tokenizer),
                              similarity=similarity)
    spent = 0.0
    for act in extract(encoder, inputs.examples, hidden=False, attention=True, level="token",
                       batch_size=batch_size, max_length=128 if pairs else None):
        t = time.perf_counter()
        acc.add_activations(act)
        spent += time.perf_counter() - t
    t = time.perf_counter()
    acc.frame()
    if similarity:
        mds_map(acc.head_distances())
    return spent + time.perf_counter() - t


def extraction_pass(encoder, inputs, batch_size: int, pairs: bool) -> int:
    from probekit.core.extraction import extract

    n = 0
    for act in extract(encoder, inputs.examples, hidden=False, attention=True, level="token",
                       batch_size=batch_size, max_length=128 if pairs else None):
        n += act.attention.shape[-1]
    return n


def child_memory(args) -> int:
    """Run in a subprocess: one statistics pass on ``factor`` copies of the corpus, then report ru_maxrss."""
    from probekit.cli import set_quiet
    from probekit.core.encoder import load_encoder

    set_quiet(True)
    encoder = load_encoder(args.model, attention=True)
    inputs = load_inputs(encoder, corpus_path(), args.pairs, args.limit, args.factor)
    t = time.perf_counter()
    statistics_pass(encoder, inputs, True, args.batch_size, args.pairs)
    print(json.dumps({"factor": args.factor, "inputs": len(inputs.examples),
                      "seconds": round(time.perf_counter() - t, 1),
                      "peak_rss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
    return 0


def memory(args) -> list[dict]:
    rows = []
    for factor in (1, 4):
        cmd = [sys.executable, __file__, "--child-memory", "--factor", str(factor), "--batch-size",
               str(args.batch_size)]
        cmd += (["--model", args.model] if args.model else []) + (["--pairs"] if args.pairs else [])
        cmd += ["--limit", str(args.limit)] if args.limit else []
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def timing(args) -> dict:
    from probekit.cli import set_quiet
    from probekit.core.encoder import load_encoder

    set_quiet(True)
    encoder = load_encoder(args.model, attention=True)
    inputs = load_inputs(encoder, corpus_path(), args.pairs, args.limit)
    names = ("extraction", "statistics", "statistics_no_similarity")
    wall = {k: float("inf") for k in names}
    cpu = {k: float("inf") for k in names}
    interleaved = {k: float("inf") for k in names[1:]}
    tokens = 0
    for _ in range(args.repeats):
        for name in names:
            t, c = time.perf_counter(), time.process_time()
            if name == "extraction":
                tokens = extraction_pass(encoder, inputs, args.batch_size, args.pairs)
            else:
                spent = statistics_pass(encoder, inputs, name == "statistics", args.batch_size, args.pairs)
                total = time.perf_counter() - t
                interleaved[name] = min(interleaved[name], total / (total - spent))
            wall[name] = min(wall[name], time.perf_counter() - t)
            cpu[name] = min(cpu[name], time.process_time() - c)
            print(f"{name}: {time.perf_counter() - t:.1f} s wall, {time.process_time() - c:.1f} s CPU", file=sys.stderr)
    out = {"model": encoder.name, "inputs": len(inputs.examples), "tokens": tokens,
           "layers": encoder.num_layers, "heads": encoder.num_heads}
    for label, d in (("wall", wall), ("cpu", cpu)):
        out.update({f"{k}_{label}_s": round(v, 2) for k, v in d.items()})
        out[f"ratio_{label}"] = round(d["statistics"] / d["extraction"], 3)
        out[f"ratio_no_similarity_{label}"] = round(d["statistics_no_similarity"] / d["extraction"], 3)
    out["ratio_same_pass"] = round(interleaved["statistics"], 3)
    out["ratio_no_similarity_same_pass"] = round(interleaved["statistics_no_similarity"], 3)
    return out


def browse(args) -> str | None:
    if not (ROOT / "probekit" / "browser.py").is_file() or not (ROOT / "scripts" / "bench_browse.py").is_file():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, str(ROOT / "scripts" / "bench_browse.py"), "--json", f"{tmp}/b.json"]
        cmd += ["--model", args.model] if args.model else []
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if out.returncode != 0:
            return f"bench_browse.py failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
        return out.stdout.strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--pairs", action="store_true", help="[CLS] A [SEP] B [SEP] inputs of up to 128 tokens")
    ap.add_argument("--limit", type=int, default=None, help="first N sentences of the corpus")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-browse", action="store_true")
    ap.add_argument("--json", help="write the figures here as JSON")
    ap.add_argument("--child-memory", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--factor", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_memory:
        return child_memory(args)

    corpus = corpus_path() or "2000 generated sentences"
    result = {"corpus": corpus, "pairs": args.pairs, "limit": args.limit, "cpus": os.cpu_count(),
              "load_average": os.getloadavg()[0]}
    result["time"] = timing(args)
    t = result["time"]
    print(f"corpus: {corpus}{' (first %d sentences)' % args.limit if args.limit else ''}; "
          f"{'pairs ≤ 128 tokens' if args.pairs else 'single sentences'}; model {t['model']}; "
          f"{t['inputs']} inputs, {t['tokens']} tokens; load average at start {result['load_average']:.1f}")
    print()
    print("| clock | extraction only (s) | statistics (s) | ratio | statistics without head distances (s) | ratio |")
    print("|---|---|---|---|---|---|")
    for label in ("wall", "cpu"):
        print(f"| {label} | {t[f'extraction_{label}_s']} | {t[f'statistics_{label}_s']} | {t[f'ratio_{label}']} | "
              f"{t[f'statistics_no_similarity_{label}_s']} | {t[f'ratio_no_similarity_{label}']} |")
    print(f"| same pass (statistics timed inside the extraction loop) | | | {t['ratio_same_pass']} | | "
          f"{t['ratio_no_similarity_same_pass']} |")
    if not args.no_memory:
        rows = memory(args)
        result["memory"] = rows
        one, four = rows
        result["memory_increase"] = round(four["peak_rss_MB"] / one["peak_rss_MB"] - 1, 4)
        print()
        print("| corpus | inputs | statistics pass (s) | peak RSS (MB) |")
        print("|---|---|---|---|")
        for r in rows:
            print(f"| {r['factor']}× | {r['inputs']} | {r['seconds']} | {r['peak_rss_MB']} |")
        print(f"\npeak memory at 4× vs 1×: {result['memory_increase']:+.1%} (target ≤ +10%)")
    if not args.no_browse:
        table = browse(args)
        if table is not None:
            result["browse"] = table
            print("\nHead browser (scripts/bench_browse.py):\n" + table)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
