"""Reproduction: the attention-pooling and max-pooling visualisation posts' setup, drawn as coloured text.

Their model: character embedding (128) → Conv1D (128 filters, kernel 3, ReLU) → masked global max pooling or
attention pooling → softmax, every character a unit, the pooling weights drawn as red text. Their data sets
(THUCNews titles, weibo_senti_100k, hotel reviews, simplifyweibo_4_moods) are Chinese and not at hand; this
runs the same model on ``--data`` (default ``sls``: the UCI sentiment-labelled sentences, English, seeded
80/10/10), once with ``--units char`` (their setting) and once with ``--units word``, and writes for each head
``attributions.html`` (the pooling weights and occlusion of the first ``--show`` test sentences) and one
accuracy table beside TF-IDF + logistic regression. The posts report no accuracy to compare with.

    nice python scripts/reproduce_pooling_posts.py --out runs/pooling-posts [--data sls] [--show 20]
"""
from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default="sls", help="a named set with train/dev/test splits")
    ap.add_argument("--show", type=int, default=20, help="test sentences drawn as coloured text")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()

    import pandas as pd

    import probekit as pk
    from probekit.corpora.labelled import load_split

    out = Path(args.out)
    test = load_split(f"{args.data}:test", what="--data", data_root=args.data_root)[:args.show]
    rows = []
    for units in ("char", "word"):
        for head in ("max", "attention"):
            name = f"cnn-{units}-{head}"
            res = pk.classify(f"{args.data}:train", f"{args.data}:dev", f"{args.data}:test", encoder="cnn",
                              head=head, units=units, quiet=True, epochs=args.epochs, data_root=args.data_root)
            res.write(out / name, overwrite=True)
            att = pk.attribute(out / name, data=test, methods=["pooling", "occlusion"], quiet=True)
            att.write(out / name / "attributions", overwrite=True)
            rows.append({"model": f"char-CNN + {head} pooling" if units == "char" else f"word-CNN + {head} pooling",
                         "test accuracy": res.accuracy("test"),
                         "tf-idf + logistic regression": res.accuracy("test", "tfidf-logreg"),
                         "coloured text": str(out / name / "attributions" / "attributions.html")})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "pooling_posts.csv", index=False, float_format="%.4g", lineterminator="\n")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
