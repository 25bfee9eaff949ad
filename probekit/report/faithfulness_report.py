"""The faithfulness run folder: one tidy CSV per experiment table, ``findings.csv`` (every number of the
summary), ``ranking.csv`` (explanation methods by faithfulness), ``summary.md`` and the papers' figures."""
from __future__ import annotations

import math

import pandas as pd

from probekit.core.result import Result
from probekit.core.rundir import RunDir, markdown_table, write_tidy



class FaithfulnessResult(Result):
    command = "faithfulness"
    main_table = "findings.csv"

    def __init__(self, outcomes, record: dict):
        self.outcomes = list(outcomes)
        rows = [dict(f) for o in self.outcomes for f in o.findings]
        findings = pd.DataFrame(rows, columns=["experiment", "quantity", "value", "ci_low", "ci_high", "n", "paper",
                                               "meaning"])
        findings["n"] = pd.array(findings["n"], dtype="Int64")
        super().__init__(findings, record)
        self.ranking = ranking_table(self.outcomes)
        #: the ranking's metrics in order, each "higher"/"lower" is more faithful (from the experiments' classes)
        self.rank_metrics = {m: d for o in self.outcomes for m, d in o.metrics.items()}
        self.tables = {stem: table for o in self.outcomes for stem, table in o.tables.items()}

    def __getitem__(self, name: str):
        """The :class:`~probekit.evaluation.base.Outcome` of experiment ``name``."""
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(name)

    def write_files(self, run: RunDir) -> None:
        write_tidy(run, self.frame, "findings.csv")
        if len(self.ranking):
            write_tidy(run, self.ranking, "ranking.csv")
        for stem, table in self.tables.items():
            write_tidy(run, table, f"{stem}.csv")
        for o in self.outcomes:
            for stem, make in o.figures.items():
                run.save_figure(make(), stem)
        run.write_text("summary.md", self.summary())

    def files(self) -> list[str]:
        return ["summary.md", "findings.csv"] + (["ranking.csv"] if len(self.ranking) else [])

    def summary(self) -> str:
        rec = self.record
        clf = rec.get("classifier", {})
        model = (rec.get("model") or {}).get("name", "")
        lines = [f"# Is attention explanation? — {clf.get('head', '')} head, {clf.get('encoder', '')} encoder "
                 f"({model}), {clf.get('level', '')} level", ""]
        att = rec["arguments"]["attention"]
        lines += [f"Data: {rec['inputs'].get('data')} ({rec['counts']['examples']} examples). The attention "
                  f"under test: {'the pooling head’s α' if att == 'pooling' else 'the last layer’s [CLS] attention, mean over heads'}"
                  f", over the real words only (special tokens and padding excluded), with the hidden states "
                  f"below the head held fixed. Distances in nats (JSD ≤ ln 2 ≈ 0.693); TVD over the full class "
                  f"distribution. Paper values are the originals' BiLSTM/CNN models on their own datasets, given "
                  f"for scale, not as a target. Every compared number has a 95% interval (bootstrap over the "
                  f"examples, {rec['arguments']['options'].get('resamples')} resamples, paired when the same "
                  f"examples are scored twice) and the n it stands on; a difference whose interval covers 0 is "
                  f"reported as no detectable difference.", ""]
        if len(self.ranking):
            lines += ["## Which explanation is most faithful here", "",
                      "Higher comprehensiveness, lower sufficiency and a smaller fraction of words removed before "
                      "the decision flips mean a more faithful ranking of the words. Each cell: the value, its 95% "
                      "interval (bootstrap over the examples) and its tier in brackets; methods in one tier cannot "
                      "be told apart by the paired intervals. Sorted by AOPC comprehensiveness tier. Flip "
                      "fraction is ERASER's (never-flip examples count as 1); the 'flipped' one averages only the "
                      "examples that flip.", "", markdown_table(compact_ranking(self.ranking, self.rank_metrics)), ""]
        for o in self.outcomes:
            lines += [f"## {o.name}: {o.paper}", ""]
            if o.skipped:
                lines += [f"Not run: {o.skipped}", ""]
                continue
            rows = [f for f in o.findings]
            if rows:
                table = pd.DataFrame(rows)
                for col in ("ci_low", "ci_high", "n"):
                    if col not in table:
                        table[col] = None
                table["95% CI"] = [_ci(lo, hi) for lo, hi in zip(table["ci_low"], table["ci_high"])]
                table["value"] = [_fmt(v) for v in table["value"]]
                table["n"] = ["" if n is None or n != n else str(int(n)) for n in table["n"]]
                lines += [markdown_table(table[["quantity", "value", "95% CI", "n", "paper", "meaning"]]), ""]
            if o.counts:
                lines += ["Counted: " + ", ".join(f"{k} {v}" for k, v in o.counts.items()) + ".", ""]
            if o.figures:
                lines += ["Figures: " + ", ".join(f"`{s}.png`" for s in o.figures) + ".", ""]
            lines += [f"Time: {o.seconds:.1f} s.", ""]
        return "\n".join(lines)


def _ci(low, high) -> str:
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(low) or math.isnan(high) else f"{low:.3f}…{high:.3f}"


def _fmt(v) -> str:
    if isinstance(v, float):
        return "NaN" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def ranking_table(outcomes) -> pd.DataFrame:
    """One row per explanation method from the experiments that rank methods (ERASER): each metric's value,
    ``_ci_low``, ``_ci_high``, ``_n`` and ``_tier`` (1 = the first tier; ties share a tier), sorted by the tier
    of the first metric the experiment declares (ERASER: comprehensiveness), then its value, best first."""
    rows = [dict(r) for o in outcomes if o.metrics for r in o.ranking]
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    for col in table.columns:
        if col.endswith("_tier") or col.endswith("_n"):
            table[col] = pd.array(table[col], dtype="Int64")
    first = next(((m, d) for o in outcomes for m, d in o.metrics.items()), None)
    if first is not None and first[0] in table and f"{first[0]}_tier" in table:
        table = table.sort_values([f"{first[0]}_tier", first[0]], ascending=[True, first[1] == "lower"],
                                  kind="stable")
    return table.reset_index(drop=True)


def compact_ranking(table: pd.DataFrame, metrics) -> pd.DataFrame:
    """The ranking for the summary: one cell per metric (in ``metrics``' order), "value [low…high] (tier)"."""
    out = pd.DataFrame({"method": table["method"]})
    for col in metrics:
        if col not in table:
            continue
        cells = []
        for _, r in table.iterrows():
            ci = _ci(r.get(f"{col}_ci_low"), r.get(f"{col}_ci_high"))
            tier = r.get(f"{col}_tier")
            cells.append(f"{_fmt(float(r[col]))}" + (f" [{ci}]" if ci else "")
                         + ("" if tier is None or pd.isna(tier) else f" ({int(tier)})"))
        out[col] = cells
    return out
