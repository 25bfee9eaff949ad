"""``pk.coref(...)``: which attention heads link a pronoun to its antecedent on GAP (Clark et al. 2019 §4.3).

Rows are read by :func:`~probekit.corpora.gap.read_gap`, long texts cut to a window around the mentions
(:func:`~probekit.syntax.coref_heads.fit_to_model`), and the model runs once through
:class:`~probekit.syntax.coref_heads.CorefHeads`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from probekit.core.errors import UserError
from probekit.core.options import ModelOptions, RunOptions, input_file, option, optional_positive, positive, takes
from probekit.core.result import Result
from probekit.syntax.coref_heads import CorefHeads, CorefHeadScores, fit_to_model


class CorefResult(Result):
    """What :func:`coref` returns.

    ``frame``: results.csv (every group × layer × head, and the nearest/first-candidate baselines as rows
    with empty layer/head); ``table``: Clark's Table 2 shape (baselines, then the ``top`` heads, % per pronoun
    gender); ``scores``: the :class:`~probekit.syntax.coref_heads.CorefHeadScores` counts.
    """

    command = "coref"

    def __init__(self, frame, record, *, table: pd.DataFrame, scores: CorefHeadScores, notes: dict):
        super().__init__(frame, record)
        self.table, self.scores, self._notes = table, scores, notes

    def figure(self):
        """Layer × head accuracy over all scored examples, with its colour bar."""
        from probekit.syntax.common import head_grids

        s = self.scores
        return head_grids([("all pronouns", s.heads["all"] / max(s.n["all"], 1))], num_layers=s.L,
                          num_heads=s.H, title=f"GAP: pronoun attends more to the true name ({self.model})")

    def markdown(self) -> str:
        from probekit.core.rundir import markdown_table

        n, s, c = self._notes, self.scores, self.record["counts"]
        md = [f"# Coreference heads: {self.model} on {n['gap']}\n",
              "Share (%) of examples where the pronoun attends more to the true candidate than to the other "
              "(Clark et al. 2019 Table 2 shape; columns: pronoun gender). The best heads are chosen on this "
              "same data, so their accuracy is optimistic.\n",
              markdown_table(self.table, floatfmt=".1f"),
              f"\nExamples: {s.n['all']} scored ({s.n['masculine']} masculine, {s.n['feminine']} feminine); "
              f"{c['neither_or_both_true']} rows without exactly one true candidate left out; "
              f"{c['malformed_skipped']} malformed rows skipped; {c['windowed']} texts longer than {n['limit']} "
              f"tokens cut to a window around the pronoun and candidates; {c['too_long_dropped']} left out "
              f"because even the window did not fit.\n"]
        if n["problems"]:
            md.append("\nSkipped rows:\n\n" + "\n".join(f"- {p}" for p in n["problems"][:50]) + "\n")
        return "\n".join(md)

    def write_files(self, run) -> None:
        from probekit.core.rundir import write_tidy

        write_tidy(run, self.frame)
        run.write_text("results.md", self.markdown())
        run.save_figure(self.figure(), "heads")

    def files(self) -> list[str]:
        return ["results.csv", "results.md", "heads.png"]


@dataclass(frozen=True, kw_only=True)
class CorefOptions(ModelOptions, RunOptions):
    """The options of :func:`coref` (and ``python -m probekit.coref``)."""

    gap: Any = option(help="GAP-format TSV (ID, Text, Pronoun, Pronoun-offset, A, ...)", check=input_file)
    skip_bad: bool = option(False, "skip malformed rows (counted) instead of stopping")
    limit: int | None = option(None, "use only the first N usable rows (quick runs)", type=int,
                               check=optional_positive)
    top: int = option(5, "heads listed in the table (default %(default)s)", check=positive)


@takes(CorefOptions, args=("gap",))
def coref(o: CorefOptions) -> CorefResult:
    """Score every attention head on GAP: does the pronoun attend more to the true candidate than the other?

    ``gap``: a GAP-format TSV (required). ``limit``: the first N usable rows. ``top``: heads in ``.table``.
    ``model``: a Hugging Face id, a local folder or an Encoder loaded with attention (default: the bundled
    all-MiniLM-L6-v2). Options: :class:`CorefOptions`. Returns a :class:`CorefResult`; ``.write(out)`` writes
    what ``python -m probekit.coref`` writes (results.csv, results.md, heads.png, config.json).
    """
    from probekit.core.analysis import analyze
    from probekit.corpora.gap import GapStats, read_gap
    from probekit.core.rundir import run_record
    from probekit.syntax.common import model_limit, open_encoder, stem

    path = gap = o.gap
    problems: list[str] = []
    stats = GapStats()
    examples = read_gap(path, skip_bad=o.skip_bad, problems=problems, stats=stats, limit=o.limit, offer_skip=True)
    if not examples:
        raise UserError(f"{path}: no rows with exactly one true candidate")
    encoder = open_encoder(o.model, o.device)
    tokens = model_limit(encoder, o.max_length)
    fitted, windowed, dropped = fit_to_model(examples, encoder.tokenizer, tokens)
    heads = CorefHeads(encoder, split=stem(path))
    frame, = analyze(encoder, fitted, [heads], batch_size=o.batch_size, max_length=tokens,
                     desc="coref attention")
    scores = heads.scores
    counts = {"rows": stats.rows, "neither_or_both_true": stats.not_exactly_one_true,
              "malformed_skipped": stats.skipped_bad, "scored": scores.n["all"], "windowed": windowed,
              "too_long_dropped": dropped + heads.truncated}
    record = run_record("coref", o.record(), encoder=encoder, inputs={"gap": str(path)}, counts=counts,
                        max_tokens=tokens, skipped=problems)
    notes = {"gap": str(gap), "limit": tokens, "problems": problems}
    return CorefResult(frame, record, table=scores.table(top=o.top), scores=scores, notes=notes)
