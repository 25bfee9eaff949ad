"""``python -m probekit.attention``: where the heads of an encoder look, over a whole corpus (Clark et al. 2019 §3).

Streams the corpus through the model once and writes, into a run directory: ``stats.csv`` (tidy: task, model,
layer, head, metric, value, aggregate — per-layer gradient rows have an empty head and aggregate "all heads"),
``head_distances.csv`` (Jensen–Shannon divergence of every pair of heads), ``attention_to.png`` (Figure 2),
``entropy.png`` (Figure 4), ``head_grid.png`` (layer × head grids of the main statistics), ``head_map.png``
(Figure 6), ``gradients.png`` (Figure 3, with ``--gradients``),
``summary.md`` and ``config.json``. From Python: ``pk.attention(corpus, **options)`` (same options).
"""
from __future__ import annotations

from probekit.cli import command
from probekit.core.options import output_options
from probekit.heads.attention import AttentionOptions, attention


def _report(result, path, values: dict, out: dict) -> None:
    if result.record.get("gradients"):
        print(f"gradients from: {result.record['gradients']['data']}")
    print(f"results: {path}/stats.csv, {path}/summary.md")


build_parser, main = command(
    "python -m probekit.attention", __doc__.split("\n\n")[0], AttentionOptions, attention,
    output_options("run directory (default runs/attention-<model>-<time>)"), _report)

if __name__ == "__main__":
    raise SystemExit(main())
