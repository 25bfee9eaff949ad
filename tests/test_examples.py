"""The tutorial notebooks in examples/ run top to bottom in a fresh kernel and show what their text says.

Each runs in a minute or two of CPU (bundled model, data made inside the notebook). The assertions read the
cells' outputs: printed numbers, and the HTML the results display (inline figures, pages in frames).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _run(name: str, tmp_path: Path, monkeypatch) -> list[dict]:
    """Execute ``examples/<name>.ipynb`` in ``tmp_path``; per code cell its stdout, stderr and HTML outputs."""
    # the kernel imports this checkout's probekit, installed or not
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PROBEKIT_CACHE", str(tmp_path / "cache"))
    nb = nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        out = {"stdout": "", "stderr": "", "html": []}
        for o in cell.outputs:
            if o.output_type == "stream":
                out[o.name] += o.text
            elif o.output_type in ("display_data", "execute_result") and "text/html" in o.data:
                out["html"].append(o.data["text/html"])
        cells.append(out)
    for out in cells:                      # no warning noise: tqdm's IProgress warning is silenced
        assert "IProgress not found" not in out["stderr"] and "Traceback" not in out["stderr"]
    return cells


def _html(cells) -> str:
    return "\n".join(h for c in cells for h in c["html"])


def _stdout(cells) -> str:
    return "".join(c["stdout"] for c in cells)


def test_probe_a_model(tmp_path, monkeypatch):
    cells = _run("probe_a_model", tmp_path, monkeypatch)
    gen = {int(l): float(v) for l, v in re.findall(r"layer (\d+): gen accuracy ([0-9.]+)", _stdout(cells))}
    assert sorted(gen) == list(range(7))
    # Lin et al.'s finding: the embeddings pick the first auxiliary, the middle and upper layers the main one
    assert max(gen[l] for l in range(3, 7)) > gen[0] + 0.3
    html = _html(cells)
    assert html.count('<img src="data:image/png;base64,') >= 1          # accuracy_by_layer.png, inline
    assert "<table" in html and 'srcdoc="' in html and 'sandbox="allow-scripts"' in html   # the head browser
    assert "'layer':" in _stdout(cells)                                   # view.first


def test_explain_your_classifier(tmp_path, monkeypatch):
    cells = _run("explain_your_classifier", tmp_path, monkeypatch)
    text = _stdout(cells)
    acc = float(re.search(r"test accuracy: ([0-9.]+)", text).group(1))
    majority = float(re.search(r"majority class: ([0-9.]+)", text).group(1))
    assert acc >= 0.8 and acc > majority + 0.2
    tops = re.findall(r"'(.*?)': predicted (\w+), top word '(.*?)'", text)
    assert len(tops) == 4
    # integrated gradients puts the sentiment adjective first for (nearly) every example
    adjectives = {"wonderful", "dull", "tedious", "charming"}
    assert sum(word in adjectives and word in sentence.split() for sentence, _, word in tops) >= 3
    assert float(re.search(r"largest IG completeness gap: ([0-9.]+)", text).group(1)) < 0.05
    taus = [float(v) for v in re.findall(r"mean τ\([^)]*\)\s+(-?[0-9.]+)", text)]
    assert len(taus) == 3 and all(-1 <= t <= 1 for t in taus)
    html = _html(cells)
    assert html.count('<img src="data:image/png;base64,') >= 3   # learning curve, confusion, attribution figure…
    assert html.count("<iframe") >= 1 and "integrated-gradients" in html


def test_compare_finetuned(tmp_path, monkeypatch):
    cells = _run("compare_finetuned", tmp_path, monkeypatch)
    text = _stdout(cells)
    assert float(re.search(r"test accuracy: ([0-9.]+)", text).group(1)) >= 0.6
    cka = {int(l): float(v) for l, v in re.findall(r"layer (\d+): CKA ([0-9.]+)", text)}
    assert sorted(cka) == list(range(7))
    assert all(0 <= v <= 1 + 1e-4 for v in cka.values())
    assert cka[6] < cka[0]                      # fine-tuning moves the top layer more than the embeddings
    html = _html(cells)
    assert html.count('<img src="data:image/png;base64,') >= 2   # cka_by_layer, attention_js …
    assert "<table" in html


@pytest.mark.parametrize("name", ["probe_a_model", "explain_your_classifier", "compare_finetuned"])
def test_notebooks_are_stored_without_outputs(name):
    """The repository keeps the notebooks clean: outputs come from running them (CI does, above)."""
    nb = nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
