"""``python -m probekit.parse``: attention-only parsing probes on a UD treebank (Clark et al. 2019 Table 3).

Attention of the training and development treebanks is extracted once into the activation cache (word
level, every layer and head); probes train on the training file and report UAS on the development file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .syntax.parsing_probes import (LABELS, PROBES, ParsingProbe, Tree, evaluate_probe, evaluate_right_branching,
                        top_weights, train_probe)
from .cli import (Parser, add_cache_options, add_common_options, add_model_options, main_wrapper, progress,
                  set_quiet)
from .corpora.conllu import strip_subtype
from .core.errors import UserError
from .core.examples import Example


class StoredAttention:
    """Sentence i of a split (``indices[i]`` in its store): word-level attention [L, H, U, U] and special mask."""

    def __init__(self, store, indices: list[int]):
        self.store, self.indices = store, indices

    def __call__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        k = self.indices[i]
        return self.store.sentence_attention(k), self.store.special[self.store.rows(k)]


def trees_for(examples: list[Example], keep: list[int], vocab: dict[str, int], lowercase: bool) -> list[Tree]:
    from .syntax.word_vectors import word_rows

    out = []
    for k in keep:
        ex = examples[k]
        out.append(Tree(heads=np.asarray(ex.meta["heads"], dtype=np.int64),
                        punct=np.array([strip_subtype(r) == "punct" for r in ex.meta["deprels"]]),
                        word_ids=word_rows(ex.words, vocab, lowercase)))
    return out


def build_parser() -> Parser:
    p = Parser(prog="python -m probekit.parse",
               description="Attention-only parsing probes and baselines, UAS on a dev treebank (Clark §5).")
    p.add_argument("--train", required=True, help="training treebank (CoNLL-U)")
    p.add_argument("--dev", required=True, help="evaluation treebank (CoNLL-U)")
    p.add_argument("--out", default=None, help="run folder (default runs/parse-<model>-<time>)")
    p.add_argument("--probes", default=",".join(PROBES),
                   help=f"comma list of {', '.join(PROBES)} (default: all)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the training set (default %(default)s, "
                                                         "as in Clark's notebook)")
    p.add_argument("--lr", type=float, default=0.002, help="Adam learning rate (default %(default)s)")
    p.add_argument("--word-vectors", default="model",
                   help="'model' (the encoder's input embeddings, mean over pieces) or a GloVe text file")
    p.add_argument("--root-misaligned", action="store_true",
                   help="reproduce the original Attn+GloVe code's ROOT misalignment (Clark issue #17)")
    p.add_argument("--skip-bad", action="store_true", help="skip malformed sentences (counted) instead of stopping")
    p.add_argument("--limit", type=int, default=None, help="use only the first N sentences of each file")
    add_model_options(p)
    add_cache_options(p)
    add_common_options(p)
    return p


def _read(path: str, args, problems: list[str]) -> list[Example]:
    from .corpora.conllu import read_conllu

    ex = read_conllu(path, skip_bad=args.skip_bad, problems=problems, limit=args.limit)
    if not ex:
        raise UserError(f"{path}: no usable sentences")
    return ex


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    set_quiet(args.quiet)
    probes = [p.strip() for p in args.probes.split(",") if p.strip()]
    unknown = [p for p in probes if p not in PROBES]
    if unknown or not probes:
        raise UserError(f"--probes: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(PROBES)}")
    if args.epochs < 1 or (args.limit is not None and args.limit < 1):
        raise UserError("--epochs and --limit must be at least 1")
    from .core.cache import get_activations
    from .core.encoder import load_encoder
    from .report.rundir import RunDir, config_record, default_run_dir, markdown_table, write_tidy
    from .syntax.word_vectors import glove_vectors, model_vectors, vocabulary

    torch.manual_seed(args.seed)
    problems: list[str] = []
    train_ex, dev_ex = _read(args.train, args, problems), _read(args.dev, args, problems)
    encoder = load_encoder(args.model, attention=True, device=args.device)
    limit = min(args.max_length or encoder.max_length, encoder.max_length)
    need_attention = any(p in ("attn", "attn-words") for p in probes)
    stores, keep, too_long = {}, {}, {}
    for split, ex in (("train", train_ex), ("dev", dev_ex)):
        if need_attention:
            stores[split] = get_activations(encoder, ex, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                                            hidden=False, attention=True, max_length=limit,
                                            batch_size=args.batch_size, dtype=args.dtype)
            cut = set(stores[split].meta["truncated"])
        else:
            from .core.extraction import encode_examples

            cut = {e.index for e in encode_examples(encoder, ex, max_length=limit, warn=False) if e.truncated}
        keep[split] = [i for i in range(len(ex)) if i not in cut]
        too_long[split] = len(cut)
    if not keep["train"] or not keep["dev"]:
        raise UserError(f"every sentence of a treebank is longer than {limit} tokens")

    glove = args.word_vectors != "model"
    vocab = vocabulary((w for ex in (train_ex, dev_ex) for e in ex for w in e.words), lowercase=glove)
    vectors, vec_note = None, "none"
    if any(p in ("attn-words", "distance-words") for p in probes):
        if glove:
            vectors, found = glove_vectors(args.word_vectors, vocab)
            vec_note = f"GloVe file {args.word_vectors} ({found} of {len(vocab)} word types found)"
        else:
            vectors = model_vectors(encoder, vocab)
            vec_note = f"{encoder.name} input embeddings (mean over a word's pieces), {vectors.shape[1]} dims"
    trees = {s: trees_for(ex, keep[s], vocab, glove) for s, ex in (("train", train_ex), ("dev", dev_ex))}
    att = {s: StoredAttention(stores[s], keep[s]) for s in stores}
    n_maps = 2 * encoder.num_layers * encoder.num_heads

    rows, timing, weights = [], {}, None
    for kind in probes:
        if kind == "right-branching":
            uas = evaluate_right_branching(trees["dev"])
        else:
            torch.manual_seed(args.seed)
            probe = ParsingProbe(kind, n_maps, word_dim=0 if vectors is None else vectors.shape[1],
                                 root_misaligned=args.root_misaligned)
            bar = progress(total=args.epochs * len(trees["train"]), desc=f"training {kind}", unit="sent")
            timing[kind] = train_probe(probe, trees["train"], att.get("train"), vectors, epochs=args.epochs,
                                       lr=args.lr, progress=bar)
            bar.close()
            uas = evaluate_probe(probe, trees["dev"], att.get("dev"), vectors)
            if kind == "attn":
                weights = pd.DataFrame(top_weights(probe, encoder.num_layers, encoder.num_heads))
        rows.append({"task": "parse", "model": encoder.name, "probe": kind, "split": Path(args.dev).stem,
                     "metric": "uas", "value": uas, "n_words": sum(int((~t.punct).sum()) for t in trees["dev"]),
                     "epochs": 0 if kind == "right-branching" else args.epochs,
                     "seconds_per_epoch": float(np.mean(timing[kind])) if kind in timing else np.nan})
    df = pd.DataFrame(rows)
    table = pd.DataFrame({"model": [LABELS[k] for k in df["probe"]], "UAS": 100 * df["value"]})

    run = RunDir(args.out or default_run_dir("parse", encoder.name), overwrite=getattr(args, "overwrite", False))
    with run:
        write_tidy(run, df)
        if weights is not None:
            weights.to_csv(run.file("attn_weights.csv"), index=False, float_format="%.6g", lineterminator="\n")
        md = [f"# Attention-only parsing probes: {encoder.name}\n",
              f"Trained on {args.train} ({len(trees['train'])} sentences, {args.epochs} epoch(s), Adam lr "
              f"{args.lr}, one sentence per step), UAS (%) on {args.dev} ({len(trees['dev'])} sentences, "
              "punctuation excluded). Clark et al. 2019 Table 3 shape.\n",
              markdown_table(table, floatfmt=".1f"),
              f"\nWord vectors: {vec_note}. ROOT alignment: "
              f"{'misaligned as in the original code' if args.root_misaligned else 'correct'}.\n",
              f"\nSentences longer than {limit} tokens left out: {too_long['train']} train, {too_long['dev']} dev; "
              f"malformed sentences skipped: {len(problems)}.\n"]
        if timing:
            md.append("\nTraining time per epoch: " + ", ".join(
                f"{LABELS[k]} {np.mean(v):.1f} s" for k, v in timing.items()) + ".\n")
        if weights is not None:
            md.append("\nLargest Attn probe weights (attn_weights.csv has all):\n\n"
                      + markdown_table(weights.head(10), floatfmt=".3f"))
        if problems:
            md.append("\nSkipped sentences:\n\n" + "\n".join(f"- {p}" for p in problems[:50]) + "\n")
        run.write_text("results.md", "\n".join(md))
        run.write_json("config.json", config_record(
            args, model_name=encoder.name, model_fingerprint=encoder.fingerprint(), max_tokens=limit,
            word_vectors=vec_note, seconds_per_epoch=timing,
            counts={"train": len(trees["train"]), "dev": len(trees["dev"]), "too_long": too_long,
                    "malformed_skipped": len(problems)}, skipped=problems))
        path = run.commit()
    if not args.quiet:
        print(markdown_table(table, floatfmt=".1f"))
        print(f"wrote {path}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
