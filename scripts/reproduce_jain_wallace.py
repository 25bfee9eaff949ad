"""Reproduction: the attention-faithfulness papers' own models beside probekit's numbers, in one table.

Trains the papers' architectures from scratch (Jain & Wallace §3: BiLSTM, CNN and the non-contextual "average"
encoder, each with additive tanh attention pooling, 8 epochs, Adam 1e-3 with amsgrad, no dropout, the epoch of
best dev ROC-AUC after the first, or of best dev accuracy for SNLI's three classes, as their trainers keep) on RT
sentence polarity (``rt:train``/``rt:dev``; the source sentences of SST, but not SST's split or its phrase
labels) and on SNLI pairs (``snli:*``: seeded 80/10/10 parts of SNLI's *dev* set, since that is the SNLI data
at hand; the paper trained on the 550k training pairs), then runs ``pk.faithfulness`` on the first ``--limit`` test
examples and writes one table: setup, quantity, our value, the paper's value (data set named), the
difference, and where our data differ from the paper's. ``--transformer`` adds the bundled pre-trained
encoder (frozen, attention pooling) on RT in the same table.

Paper values: Jain & Wallace's τ table (tanh attention, Overall mean) and ε-max JSD histograms (per predicted
class, averaged here over the classes), their test accuracies; Wiegreffe & Pinter Table 2 (SST F1: reproduced
0.831, uniform 0.822). Serrano & Smith report no single number for these summaries (their claims are shown
as text). Every number is one run of one seed; τ's spread over examples is in the faithfulness run folders.

    nice python scripts/reproduce_jain_wallace.py --out runs/reproduce [--limit 500] [--encoders lstm cnn average]
        [--no-snli] [--transformer] [--experiments tau permutation adversary single-weight sets uniform seeds]
        [--reuse runs/earlier] [--wp-epochs 8] [--seeds 5]
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

RT_NOTE = "RT polarity (10,662 sentences, seeded 80/10/10) vs SST's sentence split"
SNLI_NOTE = "SNLI dev set only (9,842 pairs, seeded 80/10/10) vs the 550k training pairs"

#: (data, encoder) → quantity → (paper value, what it is)
PAPER = {
    ("rt", "lstm"): {"test accuracy": (0.81, "J&W SST BiLSTM+tanh accuracy"),
                     "mean τ(attention, gradient)": (0.35, "J&W SST BiLSTM"),
                     "mean τ(attention, LOO)": (0.29, "J&W SST BiLSTM"),
                     "mean τ(gradient, LOO)": (0.66, "J&W SST BiLSTM"),
                     "median ε-max JSD (nats)": (0.50, "J&W SST BiLSTM, per class 0.50 / 0.50"),
                     "share of examples with ε-max JSD ≥ 0.5": (0.455, "J&W SST BiLSTM, per class 0.44 / 0.47"),
                     "macro-F1, trained attention head": (0.831, "W&P Table 2 SST F1, reproduced (J&W 0.81)"),
                     "macro-F1, uniform attention": (0.822, "W&P Table 2 SST F1, uniform"),
                     "macro-F1 drop with uniform attention": (0.009, "W&P Table 2 SST")},
    ("rt", "average"): {"mean τ(attention, gradient)": (0.61, "J&W SST average encoder")},
    ("rt", "cnn"): {"mean τ(attention, gradient)": (0.48, "J&W SST CNN")},
    ("snli", "lstm"): {"test accuracy": (0.78, "J&W SNLI BiLSTM accuracy"),
                       "mean τ(attention, gradient)": (0.31, "J&W SNLI BiLSTM"),
                       "mean τ(attention, LOO)": (0.29, "J&W SNLI BiLSTM"),
                       "mean τ(gradient, LOO)": (0.24, "J&W SNLI BiLSTM"),
                       "median ε-max JSD (nats)": (0.447, "J&W SNLI BiLSTM, per class 0.50 / 0.39 / 0.45"),
                       "share of examples with ε-max JSD ≥ 0.5": (0.33, "J&W SNLI, per class 0.49 / 0.20 / 0.30")},
    ("snli", "average"): {"mean τ(attention, gradient)": (0.58, "J&W SNLI average encoder")},
    ("snli", "cnn"): {"mean τ(attention, gradient)": (0.23, "J&W SNLI CNN")},
}
#: findings shown in the table (others stay in each run folder)
SHOWN = ("mean τ(attention, gradient)", "mean τ(attention, LOO)", "mean τ(gradient, LOO)",
         "τ(gradient, LOO) − τ(attention, gradient)", "τ(gradient, LOO) − τ(attention, LOO)",
         "mean median TVD under 100 shuffles of α", "median ε-max JSD (nats)",
         "share of examples with ε-max JSD ≥ 0.5", "share of examples whose decision flips when the top word is zeroed",
         "flip share, top word minus random word (paired)",
         "median fraction removed before a flip: attention (paired)",
         "median fraction removed before a flip: gradient (paired)",
         "median fraction removed before a flip: random (paired)",
         "share of examples where gradient order flips sooner than attention order",
         "macro-F1, trained attention head", "macro-F1, uniform attention", "macro-F1 drop with uniform attention",
         "median JSD(α_base, α_seed) (median over seeds, then examples)")
#: Jain & Wallace's τ gaps on SST (0.66 − 0.35, 0.66 − 0.29): the direction of their finding
PAPER[("rt", "lstm")].update({"τ(gradient, LOO) − τ(attention, gradient)": (0.31, "J&W SST BiLSTM, 0.66 − 0.35"),
                              "τ(gradient, LOO) − τ(attention, LOO)": (0.37, "J&W SST BiLSTM, 0.66 − 0.29")})
PAPER[("snli", "lstm")].update({
    "τ(gradient, LOO) − τ(attention, gradient)": (-0.07, "J&W SNLI BiLSTM, 0.24 − 0.31"),
    "τ(gradient, LOO) − τ(attention, LOO)": (-0.05, "J&W SNLI BiLSTM, 0.24 − 0.29")})


def run_setup(data: str, encoder: str, args, out: Path) -> list[dict]:
    import probekit as pk

    folder = out / f"{data}-{encoder}"
    t = time.perf_counter()
    kwargs = {"encoder": encoder} if encoder != "transformer" else {"encoder": "frozen"}
    reused = Path(args.reuse) / f"{data}-{encoder}" / "classifier" if args.reuse else None
    if reused is not None and (reused / "classifier.json").exists():
        clf_dir = reused
        accuracy = _test_accuracy(clf_dir)
    else:
        res = pk.classify(train=f"{data}:train", dev=f"{data}:dev", test=f"{data}:test", head="attention",
                          quiet=True, baselines=False, data_root=args.data_root, seed=args.seed,
                          limit=args.train_limit, epochs=args.epochs, **kwargs)
        clf_dir = folder / "classifier"
        res.write(clf_dir, overwrite=True)
        accuracy = res.accuracy("test")
    trained = time.perf_counter() - t
    experiments = [e for e in args.experiments if not (data == "snli" and e in ("uniform", "seeds"))]
    options = {k: v for k, v in (("epochs", args.wp_epochs), ("seeds", args.seeds)) if v}
    f = pk.faithfulness(clf_dir, f"{data}:test", limit=args.limit, experiments=experiments,
                        train=f"{data}:train", dev=f"{data}:dev", quiet=True, data_root=args.data_root,
                        seed=args.seed, **options)
    f.write(folder / "faithfulness", overwrite=True)
    print(f"{data}-{encoder}: trained in {trained:.0f} s, faithfulness {time.perf_counter() - t - trained:.0f} s",
          flush=True)
    name = "bundled transformer (frozen)" if encoder == "transformer" else encoder
    setup = f"{'RT' if data == 'rt' else 'SNLI'} · {name}"
    note = RT_NOTE if data == "rt" else SNLI_NOTE
    rows = [{"setup": setup, "quantity": "test accuracy", "ours": accuracy, "note": note}]
    for _, r in f.frame.iterrows():
        if r["quantity"] in SHOWN:
            rows.append({"setup": setup, "quantity": r["quantity"], "ours": float(r["value"]), "note": note,
                         "ci_low": r.get("ci_low"), "ci_high": r.get("ci_high"), "claim": r.get("paper", "")})
    return [with_paper(row, data, encoder) for row in rows]


def _test_accuracy(folder: Path) -> float:
    """The test accuracy an earlier classify run recorded in its folder."""
    import pandas as pd

    r = pd.read_csv(folder / "results.csv")
    sel = r[(r["split"] == "test") & (r["metric"] == "accuracy")]
    return float(sel["value"].iloc[0]) if len(sel) else math.nan


def with_paper(row: dict, data: str, encoder: str) -> dict:
    """The paper's number for this setup and quantity, and the difference; else the paper's claim, but only
    where it is about this setup (the findings quote J&W's SST BiLSTM values whatever the model)."""
    value, what = PAPER.get((data, encoder), {}).get(row["quantity"], (None, None))
    claim = str(row.pop("claim", "") or "")
    if claim in ("nan", "None") or (("BiLSTM" in claim or "SST" in claim) and (data, encoder) != ("rt", "lstm")):
        claim = ""
    row["paper"] = f"{value:g} ({what})" if value is not None else claim
    row["difference"] = (row["ours"] - value) if value is not None else math.nan
    return row


def merge(paths, out: Path):
    """One table from several runs' ``reproduction.csv`` (setups run in separate processes)."""
    import pandas as pd

    rows = []
    for path in paths:
        for r in pd.read_csv(path).to_dict("records"):
            data = "rt" if r["setup"].startswith("RT") else "snli"
            name = r["setup"].split(" · ", 1)[1]
            encoder = "transformer" if name.startswith("bundled") else name
            claim = r.get("claim", r["paper"] if not str(r["paper"])[:1].isdigit() else "")
            rows.append(with_paper({"setup": r["setup"], "quantity": r["quantity"], "ours": r["ours"],
                                    "ci_low": r.get("ci_low"), "ci_high": r.get("ci_high"), "note": r["note"],
                                    "claim": claim}, data, encoder))
    return write(rows, out)


def write(rows, out: Path):
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["setup", "quantity", "ours", "ci_low", "ci_high", "paper", "difference",
                                        "note"])
    frame.to_csv(out / "reproduction.csv", index=False, float_format="%.4g", lineterminator="\n")
    (out / "reproduction.md").write_text(markdown(frame), encoding="utf-8")
    return frame


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def markdown(frame) -> str:
    lines = ["| setup | quantity | ours | paper | ours − paper |", "|---|---|---|---|---|"]
    for _, r in frame.iterrows():
        diff = "" if math.isnan(r["difference"]) else f"{r['difference']:+.3f}"
        ci = "" if _missing(r.get("ci_low")) else f" [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
        lines.append(f"| {r['setup']} | {r['quantity']} | {r['ours']:.3f}{ci} | {r['paper']} | {diff} |")
    notes = sorted(set(frame["note"]))
    return "\n".join(lines + [""] + [f"- Data: {n}." for n in notes]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=500, help="test examples the faithfulness experiments use")
    ap.add_argument("--encoders", nargs="+", default=["lstm", "cnn", "average"])
    ap.add_argument("--no-snli", dest="snli", action="store_false")
    ap.add_argument("--setups", nargs="+", default=None, metavar="DATA:ENCODER",
                    help="exactly these setups instead (e.g. rt:cnn snli:lstm rt:transformer)")
    ap.add_argument("--transformer", action="store_true", help="add the bundled transformer on RT")
    ap.add_argument("--experiments", nargs="+",
                    default=["tau", "permutation", "adversary", "single-weight", "sets", "uniform", "seeds"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--merge", nargs="+", default=None, metavar="CSV",
                    help="only merge the reproduction.csv of earlier runs into one table in --out")
    ap.add_argument("--train-limit", type=int, default=None, help="train on a seeded sample (a quick check)")
    ap.add_argument("--epochs", type=int, default=None, help="default: 8 from scratch, 20 for the transformer head")
    ap.add_argument("--wp-epochs", type=int, default=None,
                    help="epochs of Wiegreffe & Pinter's retrainings (default: the classifier's recipe)")
    ap.add_argument("--seeds", type=int, default=None, help="Wiegreffe & Pinter's retrained seeds (default 5)")
    ap.add_argument("--reuse", default=None, metavar="DIR",
                    help="take DIR/<data>-<encoder>/classifier of an earlier run instead of training again")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a busy machine extra threads spin and cost CPU)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    setups = [("rt", e) for e in args.encoders] + ([("snli", e) for e in args.encoders] if args.snli else [])
    if args.transformer:
        setups.append(("rt", "transformer"))
    if args.setups:
        setups = [tuple(s.split(":", 1)) for s in args.setups]
    if args.merge:
        print(markdown(merge(args.merge, out)))
        return
    rows = []
    for data, encoder in setups:
        rows += run_setup(data, encoder, args, out)
        frame = write(rows, out)
    print(markdown(frame))


if __name__ == "__main__":
    main()
