"""The run folder of ``python -m probekit.confusion``: tidy CSV, Table-2-shaped Markdown, per-layer plot."""
from __future__ import annotations

import pandas as pd

from probekit.corpora.conditions import CONDITIONS, PART_OF
from probekit.core.rundir import markdown_table

_MARK = {True: "✓", False: "✗", None: "NA"}
_PART_LABEL = {"srel": "subject relatives", "orel": "object relatives"}


def _part_example(name: str) -> str:
    cond = CONDITIONS[PART_OF[name]]
    examples = cond.example.split(" / ")
    return examples[cond.parts.index(name)] if len(examples) == len(cond.parts) else cond.example


def _label(name: str) -> str:
    if name in PART_OF and name not in CONDITIONS:
        return f"{PART_OF[name]} ({_PART_LABEL[name.split('-')[1]]})"
    return name


def _ordered(names: list[str]) -> list[str]:
    """Table order: each condition followed by its parts, then external data in the order given."""
    out = []
    for cond in CONDITIONS.values():
        for name in (cond.name,) + (cond.parts if len(cond.parts) > 1 else ()):
            if name in names:
                out.append(name)
    return out + [n for n in names if n not in out]


def table2(scores, family: str) -> pd.DataFrame:
    """Lin et al.'s Table 2 for one family: features, example, items, mean confusion, chance, Lin's value."""
    rows = []
    for name in _ordered(scores.names):
        cond = CONDITIONS.get(name) or CONDITIONS.get(PART_OF.get(name, ""))
        if cond is None or cond.family != family:
            continue
        row = {"condition": _label(name), "RC": _MARK[cond.rc]}
        if family == "agreement":
            row["DN number match"] = _MARK[next(iter(cond.match.values()))]
        else:
            row["DN_o gender match"] = _MARK[cond.match.get("obj")]
            row["DN_r gender match"] = _MARK[cond.match.get("rc")]
        row.update({"example": _part_example(name) if name != cond.name else cond.example,
                    "items": scores.n[name], "mean confusion": scores.mean(name), "chance": scores.chance(name),
                    "Lin et al. (BERT-base)": cond.lin if name == cond.name else float("nan")})
        rows.append(row)
    return pd.DataFrame(rows)


def external_table(scores) -> pd.DataFrame:
    names = [n for n in _ordered(scores.names) if n not in PART_OF and n not in CONDITIONS]
    return pd.DataFrame([{"data": n, "items": scores.n[n], "mean confusion": scores.mean(n),
                          "chance": scores.chance(n)} for n in names])


def layer_table(scores) -> pd.DataFrame:
    rows = []
    for name in _ordered(scores.names):
        lay = scores.by_layer(name)
        rows.append({"condition": _label(name), **{f"layer {l + 1}": v for l, v in enumerate(lay)},
                     "mean": float(lay.mean()), "chance": scores.chance(name)})
    return pd.DataFrame(rows)


def mass_table(scores) -> pd.DataFrame:
    """Mean candidate mass per condition × layer (heads averaged): how much attention the candidates get."""
    rows = []
    for name in _ordered(scores.names):
        mass = scores.candidate_mass(name).mean(1)
        rows.append({"condition": _label(name), **{f"layer {l + 1}": v for l, v in enumerate(mass)}})
    return pd.DataFrame(rows)


def heads_table(scores, k: int = 3) -> pd.DataFrame:
    """Per condition the ``k`` lowest-confusion heads among those with enough candidate mass, and how many
    heads were left out for too little (below ``scores.min_mass``)."""
    rows = []
    for name in _ordered(scores.names):
        best = scores.best_heads(name, k)
        row = {"condition": _label(name)}
        row.update({f"head {i + 1}": (f"{best[i][0]}-{best[i][1]} ({best[i][2]:.3f})" if i < len(best) else "—")
                    for i in range(k)})
        row["low-mass heads left out"] = int(scores.low_mass(name).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def confusion_figure(scores, model: str):
    """Layers on x, head-mean confusion on y: one line per condition (parts dashed), chance levels dotted and
    labelled in the legend. Object-oriented matplotlib: saved by the caller with ``RunDir.save_figure``."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4.8))
    ax = fig.subplots()
    layers = list(range(1, scores.L + 1))
    palette = colormaps["tab20"].colors
    colour: dict[str, tuple] = {}
    for name in _ordered(scores.names):
        is_part = name in PART_OF and name not in CONDITIONS
        owner = PART_OF[name] if is_part else name
        c = colour.setdefault(owner, palette[(2 * len(colour)) % 20 + (len(colour) // 10) % 2])
        family = CONDITIONS[owner].family if owner in CONDITIONS else "data"
        marker = {"srel": "^", "orel": "v"}.get(name.split("-")[-1]) if is_part else \
            {"agreement": "o", "reflexive": "s"}.get(family, "D")
        ax.plot(layers, scores.by_layer(name), color=c, marker=marker, linestyle="--" if is_part else "-",
                linewidth=0.9 if is_part else 1.6, markersize=4 if is_part else 5, label=_label(name))
    for level in sorted({round(scores.chance(n), 6) for n in scores.names}):
        ax.axhline(level, color="grey", linestyle=":", linewidth=1, label=f"chance {level:.3f}")
    ax.set_xlabel("layer")
    ax.set_ylabel("confusion (bits; lower = antecedent preferred)")
    ax.set_title(f"Attention confusion by layer — {model}")
    ax.set_xticks(layers)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def markdown(scores, model: str, *, skipped: int, attention_from: str) -> tuple[str, str]:
    """(whole results.md, the Table-2-shaped part alone for the terminal)."""
    parts = []
    for family, title in (("agreement", "Subject-verb agreement"), ("reflexive", "Reflexive anaphora")):
        t = table2(scores, family)
        if not t.empty:
            parts.append(f"## {title}\n\n" + markdown_table(t))
    ext = external_table(scores)
    if not ext.empty:
        parts.append("## External items (--data)\n\n" + markdown_table(ext))
    tables = "\n".join(parts)
    text = [f"# Attention confusion scores: {model}\n",
            "Per sentence and layer the attention is averaged over heads and summed from the source word (the "
            "matrix auxiliary or the reflexive) to each candidate group (Det N); shares are renormalised over "
            "the candidate groups only and confusion = −log2 share of the correct group (Lin et al. 2019). "
            "Mean confusion = mean over layers of the per-layer means; chance = the score of equal attention to "
            "every candidate word (1.0 with one distractor group, log2 3 = 1.585 with two). Lower is better. "
            "The last column is Lin et al.'s bert-base-uncased value (12 layers); their data mixed templates in "
            "A3/A4 and R3/R4, which these conditions do not. A3 and A4 pool their two parts.\n",
            tables,
            "## Confusion by layer\n\n" + markdown_table(layer_table(scores)),
            "## Candidate mass by layer (attention from the source to all candidate groups, heads averaged)\n\n"
            + markdown_table(mass_table(scores)),
            "## Heads with the lowest confusion (layer-head, mean confusion)\n\n"
            f"Only heads whose mean candidate mass (attention from the source to all candidate groups, before "
            f"renormalising) is at least {scores.min_mass:g} are ranked: below that the share is decided by "
            f"almost no attention. The last column counts the heads left out (of {scores.L * scores.H}).\n\n"
            + markdown_table(heads_table(scores)),
            f"Word-level attention: to a word = sum over its pieces, from a word = {attention_from} of its "
            f"pieces. Items left out because truncation cut a word they need: {skipped}.\n"]
    return "\n".join(text), tables
