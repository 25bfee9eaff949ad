"""Benchmark: ferret's default benchmark and probekit's ERASER side by side, on one model and one set of sentences.

``nice python scripts/bench_ferret.py [--sentences 20]`` prints, in one run:

(a) the model: a frozen-encoder ``--head cls`` classifier on the bundled all-MiniLM-L6-v2, trained by
    ``pk.classify`` on ``--train`` RT polarity train sentences (seeded shuffle) and exported with
    ``pk.export_hf`` as a standard ``BertForSequenceClassification`` folder; ferret gets that folder through
    ``AutoModelForSequenceClassification``/``AutoTokenizer``, probekit through ``pk.faithfulness(folder, …)``
    (or ``--classifier FOLDER``: any Hugging Face sequence classifier folder);
(b) ferret's default benchmark (``Benchmark(model, tokenizer)``: its six explainers, L1-normalised scores,
    then ``evaluate_explanation``: AOPC comprehensiveness and sufficiency over 10 … 100 % of the *tokens*,
    only positively scored tokens counted as rationale, tokens deleted and the text decoded again; Kendall τ
    with leave-one-out) on ``--sentences`` RT polarity test sentences (seeded shuffle), each explained for the
    model's predicted class; with ``--rationales`` data that carry rationales (HateXplain) its plausibility
    measures too;
(c) probekit's ERASER (``pk.faithfulness(experiments=["eraser"])``: comprehensiveness and sufficiency AOPC over
    the same bins 10 … 100 %, but of *words*, every word ranked (signed methods by score, so words against ŷ
    rank last), words deleted; decision-flip fraction; plausibility with rationales) with the probekit method
    that matches each ferret explainer where there is one:

    ======================================  ======================  ==================================
    ferret                                  probekit                same computation?
    ======================================  ======================  ==================================
    Partition SHAP (shap's Partition)       kernel-shap (Captum)    no: another Shapley estimator
    LIME (lime's LimeTextExplainer)         lime (Captum Lime)      LIME, over words, [PAD] when off
    Gradient (Captum Saliency, summed)      saliency                yes (Σ_d |∂F/∂e_d|)
    Gradient (x Input)                      input-x-gradient        yes (Captum InputXGradient)
    Integrated Gradient (no × input)        —                       not in probekit
    Integrated Gradient (x Input)           integrated-gradients    yes (same [CLS] [PAD]… [SEP] baseline)
    ======================================  ======================  ==================================

    and the CPU time (``time.process_time``, whole process) of each tool: per explainer (explanation alone —
    for probekit one ``pk.attribute`` call per method, loading the classifier included — and ferret's
    evaluation of it), and in total over the paired explainers (ferret: explain + evaluate;
    probekit: one ``pk.faithfulness`` ERASER run, which also ranks a random baseline and searches the
    decision flip), with the ratio ferret ÷ probekit.

The two tables are not the same numbers under two names: ferret scores sub-tokens and probekit words, and
ferret's rationale keeps only positive scores. They are printed side by side to compare rankings of explainers
and cost, not to check one against the other.

ferret is an optional dependency of this script only (not of probekit). ferret-xai 0.4.2 pins numpy < 2,
transformers 4 and captum 0.7, so install it without its dependencies and add the ones it imports:
``pip install --no-deps ferret-xai==0.4.2 thermostat-datasets`` then
``pip install datasets lime shap seaborn pytreebank scikit-image opencv-python-headless overrides jsonnet spacy``
(check first with ``pip install --dry-run`` that nothing you rely on changes). Without ferret the script says
so in one line and exits with status 2.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

#: ferret explainer → the probekit method that matches it (None: no counterpart)
PAIRS = {"Partition SHAP": "kernel-shap", "LIME": "lime", "Gradient": "saliency",
         "Gradient (x Input)": "input-x-gradient", "Integrated Gradient": None,
         "Integrated Gradient (x Input)": "integrated-gradients"}
BINS = tuple(range(10, 101, 10))          # ferret's default thresholds: 10 % … 100 %


def shuffled(examples, seed=0):
    return [examples[i] for i in np.random.default_rng(seed).permutation(len(examples))]


def make_model(args, workdir: Path) -> tuple[Path, str]:
    """(a standard Hugging Face classifier folder, what it is)."""
    import probekit as pk
    from probekit.corpora.labelled import load_split

    if args.classifier:
        return Path(args.classifier), f"the Hugging Face classifier {args.classifier}"
    train = shuffled(load_split("rt:train", what="--train", data_root=args.data_root))[: args.train]
    dev = shuffled(load_split("rt:dev", what="--dev", data_root=args.data_root))[:300]
    t0 = time.process_time()
    res = pk.classify(train, dev, head="cls", encoder="frozen", cache_dir=workdir / "cache", quiet=True, seed=0,
                      baselines=False)
    acc = float(res.frame.query("split == 'dev' and metric == 'accuracy'")["value"].iloc[0])
    folder = pk.export_hf(res.classifier, args.save_classifier or workdir / "hf", overwrite=True)
    return folder, (f"frozen all-MiniLM-L6-v2 + cls head trained on {len(train)} RT sentences "
                    f"(dev accuracy {acc:.3f}, {time.process_time() - t0:.0f} CPU s), exported with pk.export_hf")


def sentences(args):
    from probekit.corpora.labelled import load_split
    from probekit.core.examples import Example

    split = load_split(args.data, what="--data", data_root=args.data_root)
    out = []
    for ex in shuffled(split)[: args.sentences]:
        text = ex.text if ex.text is not None else " ".join(ex.words)
        meta = dict(ex.meta)
        out.append(Example(words=list(ex.words) if ex.words is not None else None,
                           text=None if ex.words is not None else text, meta=meta))
    return out


def text_of(ex) -> str:
    return ex.text if ex.text is not None else " ".join(ex.words)


def run_ferret(folder: Path, examples, rationales: bool):
    """Per explainer: mean of each ferret measure, explanation CPU s, evaluation CPU s."""
    import torch
    from ferret import Benchmark
    from ferret.benchmark import lp_normalize
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    bench = Benchmark(model, tok)
    scores, explain_s, eval_s = defaultdict(lambda: defaultdict(list)), defaultdict(float), defaultdict(float)
    for ex in examples:
        text = text_of(ex)
        with torch.no_grad():
            target = int(model(**tok(text, return_tensors="pt")).logits.argmax(-1))
        exps = []
        for explainer in bench.explainers:
            t0 = time.process_time()
            exps.append(explainer(text, target))
            explain_s[explainer.NAME] += time.process_time() - t0
        exps = lp_normalize(exps, 1)                  # what Benchmark.explain does by default
        human = None
        if rationales and ex.meta.get("rationale") is not None and ex.words is not None:
            human = token_rationale(tok, ex.words, ex.meta["rationale"])
        for e in exps:
            t0 = time.process_time()
            ev = bench.evaluate_explanation(e, target, human_rationale=human, show_progress=False)
            eval_s[e.explainer] += time.process_time() - t0
            for s in ev.evaluation_scores:
                scores[e.explainer][s.name].append(float(s.score))
    means = {name: {m: float(np.nanmean(v)) for m, v in ms.items()} for name, ms in scores.items()}
    return means, dict(explain_s), dict(eval_s)


def token_rationale(tok, words, rationale) -> list[int]:
    """A word rationale as ferret's one-hot over the sentence's sub-tokens (special tokens left out)."""
    text, spans, pos = " ".join(words), [], 0
    for word in words:
        pos = text.index(word, pos)
        spans.append((pos, pos + len(word)))
        pos += len(word)
    out = []
    for a, b in tok(text, return_offsets_mapping=True)["offset_mapping"]:
        if a == b:                                     # a special token
            continue
        w = next((j for j, (s, e) in enumerate(spans) if s <= a < e), None)
        out.append(int(w is not None and bool(rationale[w])))
    return out


def run_probekit(folder: Path, examples, methods, rationales: bool):
    import probekit as pk

    explain_s = {}
    for m in methods:                                 # each method's explanation alone
        t0 = time.process_time()
        pk.attribute(str(folder), data=examples, methods=[m], quiet=True)
        explain_s[m] = time.process_time() - t0
    t0 = time.process_time()
    res = pk.faithfulness(str(folder), examples, experiments=["eraser"], methods=list(methods), ks=BINS,
                          rationales=rationales, quiet=True)
    total = time.process_time() - t0
    import pandas as pd

    shown = ("aopc_comprehensiveness", "aopc_sufficiency", "flip_fraction", "auprc", "token_f1", "iou_f1")
    rows = res.outcomes[0].ranking                    # per method: each metric's mean over the sentences
    means = pd.DataFrame([{k: r[k] for k in ("method", *shown) if k in r} for r in rows]).set_index("method")
    return means, explain_s, total


def table(ferret_means, ferret_explain, ferret_eval, pk_means, pk_explain) -> str:
    f_cols = sorted({m for v in ferret_means.values() for m in v})
    p_cols = list(pk_means.columns)
    head = (["ferret explainer", *f_cols, "CPU s (expl+eval)", "|", "probekit method", *p_cols, "CPU s (expl)"])
    rows = [head]
    for name, method in PAIRS.items():
        f = ferret_means.get(name, {})
        left = [name, *(f"{f.get(c, float('nan')):.3f}" for c in f_cols),
                f"{ferret_explain.get(name, 0):.1f}+{ferret_eval.get(name, 0):.1f}"]
        if method is None or method not in pk_means.index:
            right = ["—", *("" for _ in p_cols), ""]
        else:
            right = [method, *(f"{pk_means.loc[method, c]:.3f}" for c in p_cols), f"{pk_explain[method]:.1f}"]
        rows.append([*left, "|", *right])
    rows.append(["random (probekit's baseline)", *("" for _ in f_cols), "", "|", "random",
                 *(f"{pk_means.loc['random', c]:.3f}" if "random" in pk_means.index else "" for c in p_cols), ""])
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sentences", type=int, default=20)
    p.add_argument("--train", type=int, default=1000, help="RT training sentences for the classifier")
    p.add_argument("--data", default="rt:test", help="the sentences (a named split or a file; hatexplain:val "
                                                     "with --rationales for plausibility)")
    p.add_argument("--rationales", action="store_true", help="evaluate plausibility against meta rationales")
    p.add_argument("--classifier", help="a Hugging Face sequence classifier folder instead of training one")
    p.add_argument("--save-classifier", type=Path, help="keep the exported classifier in this folder")
    p.add_argument("--data-root", default=None, help="the data folder (default: $PROBEKIT_DATA)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time is per-core work)")
    args = p.parse_args(argv)
    try:
        import ferret  # noqa: F401
    except ImportError as exc:
        print(f"bench_ferret: ferret-xai is not installed ({exc}); see this script's docstring to install it",
              file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        folder, what = make_model(args, Path(tmp))
        examples = sentences(args)
        print(f"model: {what}")
        print(f"sentences: {len(examples)} of {args.data} (seeded shuffle), each explained for its predicted "
              f"class; torch threads {args.threads}")
        methods = [m for m in PAIRS.values() if m]
        w0 = time.perf_counter()
        p_means, p_explain, p_total = run_probekit(folder, examples, methods, args.rationales)
        p_wall = time.perf_counter() - w0
        t0, w0 = time.process_time(), time.perf_counter()
        f_means, f_explain, f_eval = run_ferret(folder, examples, args.rationales)
        f_cpu, f_wall = time.process_time() - t0, time.perf_counter() - w0
    print()
    print(table(f_means, f_explain, f_eval, p_means, p_explain))
    paired = [n for n, m in PAIRS.items() if m]
    f_paired = sum(f_explain[n] + f_eval[n] for n in paired)
    print()
    print(f"ferret, all six explainers: {f_cpu:.1f} CPU s ({f_wall:.1f} s wall); the five paired ones, explain + "
          f"evaluate: {f_paired:.1f} CPU s")
    print(f"probekit ERASER run with the five paired methods (attributions, comprehensiveness, sufficiency, "
          f"decision flip, random baseline): {p_total:.1f} CPU s; the methods' explanations alone "
          f"{sum(p_explain.values()):.1f} CPU s (whole probekit part {p_wall:.1f} s wall)")
    print(f"CPU ratio ferret ÷ probekit (paired explainers, explain + evaluate): {f_paired / max(p_total, 1e-9):.2f}")
    for n, m in PAIRS.items():
        if m:
            print(f"  {n:31s} explanation CPU: ferret {f_explain[n]:7.2f} s, probekit {m} {p_explain[m]:7.2f} s, "
                  f"ratio {f_explain[n] / max(p_explain[m], 1e-9):.2f}")
    return 0


if __name__ == "__main__":
    from probekit.core.errors import UserError

    try:
        sys.exit(main())
    except UserError as err:
        print(f"bench_ferret: {err}", file=sys.stderr)
        sys.exit(2)
