"""Benchmark: peak memory of ``extract --attention`` and of ``attribute`` at N and 10·N sentences (target ≤ 1.10).

Each command runs in a fresh process (its own cache and output folders, so the model always runs) and reports
that process's peak resident memory (``resource.getrusage``). A forward pass's own peak is set by the longest
batch, and would hide what the run keeps as it goes (extract runs its longest batch first, when nothing is kept
yet): so every sentence here has the same number of tokens under the model's tokenizer — the N most common-length
sentences of the corpus, and those N ten times over for 10·N — every batch peaks alike, and the ratio of the two
peaks measures what grows with the corpus alone. Memory flat in corpus size means a ratio near 1.

- extract: ``python -m probekit.extract --attention`` on EWT train sentences (CoNLL-U);
- attribute: ``python -m probekit.attribute`` with ``--methods`` (default: the five that share one forward and
  backward pass per batch — pooling, attention-cls, attention-rollout, gradient, grad-input —, so 10·N stays
  quick; name integrated-gradients, run at ``--steps``, or occlusion to add them) on RT polarity train sentences, with a saved classifier (``--classifier DIR``; default: a frozen attention head
  on the bundled model trained by ``pk.classify`` on 200 RT train sentences).

``--before DIR`` also measures another probekit tree (e.g. a checkout of the previous version) in the same run,
so the two versions' ratios are printed side by side.

    python scripts/bench_memory.py [--n 100] [--part extract attribute] [--before DIR] [--classifier DIR]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = next((p for p in (base / "shared" / "data" for base in ROOT.parents[:2]) if p.is_dir()), None)

CHILD = """
import resource, sys, importlib
code = importlib.import_module(sys.argv[1]).main(sys.argv[2:])
print("PEAK_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code)
"""


def equal_length(texts: list[str], tokenizer, n: int) -> list[int]:
    """Indices of ``n`` texts with the same token count: the most common count among those with at least ``n``
    texts, preferring longer ones (each batch then weighs what a typical sentence does)."""
    counts = [len(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]
    by = collections.defaultdict(list)
    for i, c in enumerate(counts):
        by[c].append(i)
    fits = [c for c, idx in by.items() if len(idx) >= n]
    if not fits:
        sys.exit(f"no {n} sentences of equal token count: lower --n")
    best = max(fits, key=lambda c: (min(len(by[c]), 4 * n), c))
    return by[best][:n]


def run_child(tree: Path, module: str, args: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    done = subprocess.run([sys.executable, "-c", CHILD, module, *args], env=env, capture_output=True, text=True,
                          cwd=tree)
    line = [l for l in done.stdout.splitlines() if l.startswith("PEAK_KIB")]
    if done.returncode != 0 or not line or line[-1].split()[2] != "0":
        sys.exit(f"{module} failed ({tree}):\n{done.stderr[-2000:]}")
    return int(line[-1].split()[1]) / 1024   # ru_maxrss is in KiB on Linux


def extract_inputs(args, tok, work: Path) -> dict[int, Path]:
    conllu = DATA / "ud-english-ewt" / "en_ewt-ud-train.conllu"
    blocks = [b.strip("\n") for b in conllu.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    words = [[l.split("\t")[1] for l in b.splitlines() if l and l[0].isdigit() and "\t" in l
              and l.split("\t")[0].isdigit()] for b in blocks]
    keep = equal_length([" ".join(w) for w in words], tok, args.n)
    out = {}
    for times in (1, 10):
        path = work / f"ewt-{times}.conllu"
        path.write_text("\n\n".join([blocks[i] for i in keep] * times) + "\n\n", encoding="utf-8")
        out[times * args.n] = path
    return out


def attribute_inputs(args, tok, work: Path) -> dict[int, Path]:
    from probekit.corpora.labelled import load_split

    test = load_split("rt:train", what="rt", data_root=str(DATA))   # enough sentences of one length
    keep = equal_length([e.text for e in test], tok, args.n)
    out = {}
    for times in (1, 10):
        path = work / f"rt-{times}.jsonl"
        path.write_text("".join(json.dumps({"text": test[i].text, "label": test[i].meta["label"]}) + "\n"
                                for i in keep) * times, encoding="utf-8")
        out[times * args.n] = path
    return out


def classifier(args, work: Path) -> str:
    if args.classifier:
        return args.classifier
    import probekit as pk
    from probekit.corpora.labelled import load_split
    from probekit.classifiers.saved import save_classifier

    train = load_split("rt:train", what="rt", data_root=str(DATA))
    pick = sorted(range(len(train)), key=lambda i: hash(train[i].text) % 9973)[:200]
    res = pk.classify([train[i] for i in pick], load_split("rt:dev", what="rt", data_root=str(DATA))[:100],
                      head="attention", encoder="frozen", cache_dir=work / "clf-cache", quiet=True, seed=0,
                      baselines=False)
    return str(save_classifier(res.classifier, work / "classifier"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100, help="the smaller size (the larger is 10·N; default %(default)s)")
    ap.add_argument("--part", nargs="+", choices=["extract", "attribute"], default=["extract", "attribute"])
    ap.add_argument("--batch-size", type=int, default=32, help="extract's batch size (attribute: 16)")
    ap.add_argument("--methods", nargs="+", default=["pooling", "attention-cls", "attention-rollout", "gradient",
                                                     "grad-input"], help="attribute's methods")
    ap.add_argument("--steps", type=int, default=4, help="integrated-gradients steps in attribute (default 4)")
    ap.add_argument("--classifier", default=None, help="a saved classifier folder for attribute")
    ap.add_argument("--before", type=Path, default=None, help="also measure this probekit tree (the old version)")
    ap.add_argument("--tree", type=Path, default=ROOT, help="the probekit tree measured (default: this one)")
    args = ap.parse_args()
    if DATA is None:
        sys.exit("no shared data folder (EWT and RT polarity) next to the repository")
    sys.path.insert(0, str(ROOT))
    from probekit.core.encoder import default_model_path

    trees = [("this tree" if args.tree == ROOT else str(args.tree), args.tree.resolve())] + ([("--before", args.before.resolve())] if args.before else [])
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        tmp = Path(tmp)
        from transformers import AutoTokenizer

        model = default_model_path()
        for part in args.part:
            if part == "extract":
                inputs = extract_inputs(args, AutoTokenizer.from_pretrained(model), tmp)

                def cmd(n, out):
                    return "probekit.extract", ["--corpus", str(inputs[n]), "--out", str(out), "--attention",
                                                "--cache-dir", str(out) + "-cache", "--batch-size",
                                                str(args.batch_size), "--quiet"]
            else:
                clf = classifier(args, tmp)
                inputs = attribute_inputs(args, AutoTokenizer.from_pretrained(model), tmp)

                def cmd(n, out):
                    return "probekit.attribute", ["--classifier", clf, "--data", str(inputs[n]), "--out", str(out),
                                                  "--steps", str(args.steps), "--quiet", "--methods", *args.methods]
            print(f"\n{part}: {args.n} and {10 * args.n} sentences of equal token count")
            for name, tree in trees:
                peaks = {}
                for n in (args.n, 10 * args.n):
                    out = tmp / f"{part}-{name.strip('-').replace(' ', '')}-{n}"
                    peaks[n] = run_child(tree, *cmd(n, out))
                    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file()) / 2**20
                    print(f"  {name:<10} {n:>6} sentences: peak RSS {peaks[n]:7.1f} MiB   (output {size:7.1f} MiB)",
                          flush=True)
                ratio = peaks[10 * args.n] / peaks[args.n]
                print(f"  {name:<10} ratio 10·N / N: {ratio:.3f}   (target ≤ 1.10: "
                      f"{'met' if ratio <= 1.10 else 'NOT met'})", flush=True)


if __name__ == "__main__":
    main()
