"""No crash from a library on degenerate input: coincident points, too few points, too many clusters."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import probekit as pk
from probekit.core.errors import UserError
from probekit.probing.clusters import _layer_scores, _project
from probekit.report.clusters_report import markdown_report

from test_structural import CONLLU

ROOT = Path(__file__).resolve().parent.parent


def test_tsne_on_coincident_points_does_not_crash_the_process():
    # scikit-learn's Barnes-Hut t-SNE dies with a segmentation fault here: run it where that cannot take pytest
    code = ("import numpy as np; from probekit.probing.clusters import _project; "
            "xy, note = _project(np.ones((40, 8), np.float32), 'tsne', 0); "
            "assert (xy == 0).all() and 'coincide' in note; "
            "xy, note = _project(np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32) * 1e-30, 'tsne', 0); "
            "assert np.isfinite(xy).all() and note is None; print('ok')")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-500:]


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_projections_of_degenerate_point_sets(method):
    xy, note = _project(np.zeros((5, 3)), method, 0)
    assert xy.shape == (5, 2) and (xy == 0).all() and "coincide" in note
    xy, note = _project(np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]), method, 0)
    assert xy.shape == (3, 2) and np.isfinite(xy).all()
    assert (note is None) if method == "pca" else ("PCA is shown instead" in note)


def test_a_label_per_point_has_no_silhouette_instead_of_an_error():
    X = np.arange(20, dtype=float).reshape(10, 2)
    nmi, sil = _layer_scores(X, np.array([f"w{i}" for i in range(10)]), 3, seed=0, silhouette_sample=100)
    assert np.isfinite(nmi) and np.isnan(sil)


def test_fallbacks_are_written_where_the_numbers_are():
    import pandas as pd

    frame = pd.DataFrame({"layer": [0] * 4, "subset": "all", "metric": ["nmi", "silhouette", "n_points", "n_labels"],
                          "value": [0.5, 0.1, 10, 2]})
    record = {"model": {"name": "m"}, "inputs": {"source": "x.conllu", "label": "upos", "kmeans": "k", "silhouette": "s"},
              "projection_notes": ["all, layer 0: all points coincide; they are drawn at the origin"]}
    assert "## Projection fallbacks" in markdown_report(frame, record)


def test_more_clusters_than_points_is_refused_before_the_model_loads(tmp_path):
    tb = tmp_path / "tb.conllu"
    tb.write_text(CONLLU, encoding="utf-8")
    with pytest.raises(UserError, match=r"--k must be at most 3000 \(got 100000\)$"):
        pk.clusters(str(tb), k=100000, model=str(tmp_path / "no-model"), quiet=True)
    with pytest.raises(UserError, match=r"--k 500 is more than the \d+ words of .*tb.conllu"):
        pk.clusters(str(tb), k=500, model=str(tmp_path / "no-model"), quiet=True)


def test_all_punctuation_structural_data_is_one_line_not_an_empty_table(tmp_path):
    tb = tmp_path / "p.conllu"
    tb.write_text("# text = ! ?\n1\t!\t!\tPUNCT\t_\t_\t0\troot\t_\t_\n2\t?\t?\tPUNCT\t_\t_\t1\tpunct\t_\t_\n\n",
                  encoding="utf-8")
    with pytest.raises(UserError, match=r"--dev .*p.conllu: every word is punctuation"):
        pk.structural(str(tb), str(tb), model=str(tmp_path / "no-model"), quiet=True)
