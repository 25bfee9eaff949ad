"""Coreference heads on GAP (after Clark et al. 2019 §4.3): does the pronoun attend more to the right name?

For each layer × head, an example counts as correct when the attention *from* the pronoun word to the true
candidate's words (word-level attention, which already sums over a word's pieces; summed again over the
mention's words) is strictly greater than to the other candidate's. Only examples with exactly one true
candidate are scored. Baselines need no model: the nearest candidate (fewest words from the pronoun) and the
first candidate in the text. Texts longer than the model's limit are cut to a window of words around the
pronoun and both candidates (counted and reported); examples whose mentions alone do not fit are counted
and left out.

Usage: ``python -m probekit.coref --gap gap-development.tsv --out runs/coref``
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from .cli import Parser, add_common_options, add_model_options, main_wrapper, set_quiet
from .core.errors import UserError
from .core.examples import Example

GROUPS = ("all", "masculine", "feminine")


# ---- windowing ---------------------------------------------------------------------------------------
def piece_counts(tokenizer, examples: list[Example]) -> list[np.ndarray]:
    """Number of sub-tokens of every word (no special tokens), per example."""
    out = []
    for start in range(0, len(examples), 256):
        chunk = [list(ex.words) for ex in examples[start:start + 256]]
        enc = tokenizer(chunk, is_split_into_words=True, add_special_tokens=False, truncation=False)
        for j, words in enumerate(chunk):
            wids = [w for w in enc.encodings[j].word_ids if w is not None]
            out.append(np.bincount(np.asarray(wids, dtype=np.int64), minlength=len(words)))
    return out


def window(example: Example, pieces: np.ndarray, budget: int) -> Example | None:
    """The example cut to at most ``budget`` sub-tokens around its mentions, or None if they alone overflow.

    Words are added alternately left and right of the span from the first to the last mention word, so the
    window stays roughly centred; mention indices in ``meta`` are shifted to the window.
    """
    if int(pieces.sum()) <= budget:
        return example
    m = example.meta
    needed = [m["pronoun"], *m["a"], *m["b"]]
    lo, hi = min(needed), max(needed) + 1
    used = int(pieces[lo:hi].sum())
    if used > budget:
        return None
    grew = True
    while grew:
        grew = False
        for side in ("left", "right"):
            if side == "left" and lo > 0 and used + pieces[lo - 1] <= budget:
                lo -= 1
                used += int(pieces[lo])
                grew = True
            elif side == "right" and hi < len(pieces) and used + pieces[hi] <= budget:
                used += int(pieces[hi])
                hi += 1
                grew = True
    meta = dict(m, pronoun=m["pronoun"] - lo, a=[i - lo for i in m["a"]], b=[i - lo for i in m["b"]],
                window=[lo, hi])
    return replace(example, words=list(example.words[lo:hi]), text=None, meta=meta)


def fit_to_model(examples: list[Example], tokenizer, max_tokens: int) -> tuple[list[Example], int, int]:
    """(examples that fit, number windowed, number left out because the mentions alone are too long)."""
    budget = max_tokens - tokenizer.num_special_tokens_to_add(pair=False)
    kept, windowed, dropped = [], 0, 0
    for ex, pieces in zip(examples, piece_counts(tokenizer, examples)):
        w = window(ex, pieces, budget)
        if w is None:
            dropped += 1
            continue
        windowed += w is not ex
        kept.append(w)
    return kept, windowed, dropped


# ---- scoring -----------------------------------------------------------------------------------------
def _true_other(meta: dict) -> tuple[list[int], list[int]]:
    return (meta["a"], meta["b"]) if meta["a_coref"] else (meta["b"], meta["a"])


def baseline_choices(meta: dict) -> dict[str, bool]:
    """Whether each baseline picks the true candidate: nearest (ties → earlier) and first in the text."""
    p = meta["pronoun"]
    true, other = _true_other(meta)
    dist_t = min(abs(i - p) for i in true)
    dist_o = min(abs(i - p) for i in other)
    first_is_true = min(true) < min(other)
    nearest = dist_t < dist_o or (dist_t == dist_o and first_is_true)
    return {"nearest": nearest, "first": first_is_true}


class CorefHeadScores:
    """Counts, per group (all / masculine / feminine), of examples each head and baseline gets right."""

    def __init__(self, num_layers: int, num_heads: int):
        self.L, self.H = num_layers, num_heads
        self.n = {g: 0 for g in GROUPS}
        self.heads = {g: np.zeros((num_layers, num_heads), dtype=np.int64) for g in GROUPS}
        self.baselines = {g: {"nearest": 0, "first": 0} for g in GROUPS}

    def add(self, attention: np.ndarray, special: np.ndarray, meta: dict) -> None:
        """One example: ``attention`` [L, H, U, U] word-level, rows = from; ``special`` [U]."""
        words = np.flatnonzero(~np.asarray(special, dtype=bool))
        true, other = _true_other(meta)
        row = attention[:, :, words[meta["pronoun"]], :]                # [L, H, U]
        to_true = row[:, :, words[true]].sum(-1)
        to_other = row[:, :, words[other]].sum(-1)
        correct = (to_true > to_other).astype(np.int64)
        base = baseline_choices(meta)
        for g in ("all", meta.get("gender")):
            if g in self.n:
                self.n[g] += 1
                self.heads[g] += correct
                for k, v in base.items():
                    self.baselines[g][k] += int(v)

    def tidy(self, *, model: str = "", split: str = "") -> pd.DataFrame:
        rows = []
        for g in GROUPS:
            n = self.n[g]
            if n == 0:
                continue
            for l in range(self.L):
                for h in range(self.H):
                    rows.append({"task": "coref", "group": g, "model": model, "layer": l + 1, "head": h + 1,
                                 "probe": "attention-head", "split": split, "metric": "accuracy",
                                 "value": self.heads[g][l, h] / n, "n": n})
            for k, v in self.baselines[g].items():
                rows.append({"task": "coref", "group": g, "model": model, "layer": pd.NA, "head": pd.NA,
                             "probe": k, "split": split, "metric": "accuracy", "value": v / n, "n": n})
        df = pd.DataFrame(rows)
        for c in ("layer", "head"):
            df[c] = df[c].astype("Int64")
        return df

    def table(self, top: int = 5) -> pd.DataFrame:
        """Clark's Table 2 shape: baselines, then the ``top`` heads by overall accuracy; columns per group."""
        n_all = max(self.n["all"], 1)
        rows = []
        for k, label in (("nearest", "Nearest candidate"), ("first", "First candidate")):
            rows.append({"model": label, **{g: 100 * self.baselines[g][k] / max(self.n[g], 1) for g in GROUPS}})
        flat = np.argsort(-self.heads["all"].reshape(-1), kind="stable")[:top]
        for idx in flat:
            l, h = divmod(int(idx), self.H)
            rows.append({"model": f"Head {l + 1}-{h + 1}",
                         **{g: 100 * self.heads[g][l, h] / max(self.n[g], 1) for g in GROUPS}})
        df = pd.DataFrame(rows)
        df.attrs["n"] = dict(self.n, all=n_all if self.n["all"] else 0)
        return df


# ---- command line ------------------------------------------------------------------------------------
def build_parser() -> Parser:
    p = Parser(prog="python -m probekit.coref",
               description="Which attention heads link a pronoun to its antecedent (GAP TSV)?")
    p.add_argument("--gap", required=True, help="GAP-format TSV (ID, Text, Pronoun, Pronoun-offset, A, ...)")
    p.add_argument("--out", default=None, help="run folder (default runs/coref-<model>-<time>)")
    p.add_argument("--skip-bad", action="store_true", help="skip malformed rows (counted) instead of stopping")
    p.add_argument("--limit", type=int, default=None, help="use only the first N usable rows (quick runs)")
    p.add_argument("--top", type=int, default=5, help="heads listed in the table (default %(default)s)")
    add_model_options(p)
    add_common_options(p)
    return p


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    set_quiet(args.quiet)
    from .core.encoder import load_encoder
    from .core.extraction import extract
    from .corpora.gap import GapStats, read_gap
    from .report.rundir import RunDir, config_record, default_run_dir, markdown_table, write_tidy

    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    problems: list[str] = []
    stats = GapStats()
    examples = read_gap(args.gap, skip_bad=args.skip_bad, problems=problems, stats=stats, limit=args.limit)
    if not examples:
        raise UserError(f"{args.gap}: no rows with exactly one true candidate")
    encoder = load_encoder(args.model, attention=True, device=args.device)
    limit = min(args.max_length or encoder.max_length, encoder.max_length)
    fitted, windowed, dropped = fit_to_model(examples, encoder.tokenizer, limit)
    scores = CorefHeadScores(encoder.num_layers, encoder.num_heads)
    truncated = 0
    for act in extract(encoder, fitted, hidden=False, attention=True, level="word", batch_size=args.batch_size,
                       max_length=limit, desc="coref attention"):
        if act.truncated:  # cannot happen after windowing, but never score a cut text silently
            truncated += 1
            continue
        scores.add(act.attention.array, act.special, fitted[act.index].meta)
    split = str(args.gap).rsplit("/", 1)[-1].rsplit(".", 1)[0]
    run = RunDir(args.out or default_run_dir("coref", encoder.name), overwrite=getattr(args, "overwrite", False))
    with run:
        write_tidy(run, scores.tidy(model=encoder.name, split=split))
        table = scores.table(top=args.top)
        counts = {"rows": stats.rows, "neither_or_both_true": stats.not_exactly_one_true,
                  "malformed_skipped": stats.skipped_bad, "scored": scores.n["all"], "windowed": windowed,
                  "too_long_dropped": dropped + truncated}
        md = [f"# Coreference heads: {encoder.name} on {args.gap}\n",
              "Share (%) of examples where the pronoun attends more to the true candidate than to the other "
              "(Clark et al. 2019 Table 2 shape; columns: pronoun gender). The best heads are chosen on this "
              "same data, so their accuracy is optimistic.\n",
              markdown_table(table, floatfmt=".1f"),
              f"\nExamples: {scores.n['all']} scored ({scores.n['masculine']} masculine, "
              f"{scores.n['feminine']} feminine); {stats.not_exactly_one_true} rows without exactly one true "
              f"candidate left out; {stats.skipped_bad} malformed rows skipped; {windowed} texts longer than "
              f"{limit} tokens cut to a window around the pronoun and candidates; {dropped + truncated} "
              f"left out because even the window did not fit.\n"]
        if problems:
            md.append("\nSkipped rows:\n\n" + "\n".join(f"- {p}" for p in problems[:50]) + "\n")
        run.write_text("results.md", "\n".join(md))
        _heatmap(scores, run.file("heads.png"), encoder.name)
        run.write_json("config.json", config_record(args, model_name=encoder.name,
                                                    model_fingerprint=encoder.fingerprint(), max_tokens=limit,
                                                    counts=counts, skipped=problems))
        path = run.commit()
    if not args.quiet:
        print(markdown_table(table, floatfmt=".1f"))
        print(f"wrote {path}")
    return 0


def _heatmap(scores: CorefHeadScores, path, model: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = scores.heads["all"] / max(scores.n["all"], 1)
    fig, ax = plt.subplots(figsize=(0.45 * scores.H + 2, 0.4 * scores.L + 1.5))
    im = ax.imshow(acc, cmap="viridis", aspect="auto", vmin=0, vmax=1)
    ax.set_xticks(range(scores.H), [str(h + 1) for h in range(scores.H)])
    ax.set_yticks(range(scores.L), [str(l + 1) for l in range(scores.L)])
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(f"GAP: pronoun attends more to the true name ({model})")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
