"""GAP reading (no CSV quoting, offsets → words), coreference head scoring, baselines, windowing, the coref CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import importlib

coref = importlib.import_module("probekit.coref")  # the command module (pk.coref is the function)
from probekit.syntax.coref_heads import CorefHeadScores, baseline_choices, window
from probekit.core.errors import UserError
from probekit.corpora.gap import GapStats, read_gap, segment

HEADER = "ID\tText\tPronoun\tPronoun-offset\tA\tA-offset\tA-coref\tB\tB-offset\tB-coref\tURL"


def _row(rid, text, pron, a, b, a_true, b_true, *, a_at=None):
    a_off = text.index(a) if a_at is None else a_at
    return "\t".join([rid, text, pron, str(text.index(pron)), a, str(a_off), a_true, b, str(text.index(b)),
                      b_true, "http://example.org"])


TEXT1 = 'Mary Ann met "Sue" in Paris. Later she said hello.'
TEXT2 = "John Smith called Peter because he was late."
TEXT3 = "Anna saw Bea and her dog."


def _gap(tmp_path, rows, name="gap.tsv"):
    p = tmp_path / name
    p.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return p


def test_reader_maps_offsets_to_words_without_csv_quoting(tmp_path):
    path = _gap(tmp_path, [_row("t-1", TEXT1, "she", "Mary Ann", "Sue", "FALSE", "TRUE"),
                           _row("t-2", TEXT2, "he", "John Smith", "Peter", "TRUE", "FALSE"),
                           _row("t-3", TEXT3, "her", "Anna", "Bea", "FALSE", "FALSE")])
    stats = GapStats()
    ex = read_gap(path, stats=stats)
    assert len(ex) == 2 and stats.rows == 3 and stats.not_exactly_one_true == 1
    e = ex[0]
    assert e.words[:6] == ["Mary", "Ann", "met", '"', "Sue", '"']        # quotes kept, not parsed as CSV
    assert e.meta["a"] == [0, 1] and e.meta["b"] == [4] and e.words[e.meta["pronoun"]] == "she"
    assert e.meta["b_coref"] and not e.meta["a_coref"] and e.meta["gender"] == "feminine"
    assert ex[1].meta["gender"] == "masculine" and ex[1].meta["source"].endswith(":3")


def test_offset_mismatch_is_a_file_line_error_or_skipped(tmp_path):
    path = _gap(tmp_path, [_row("t-1", TEXT1, "she", "Mary Ann", "Sue", "FALSE", "TRUE"),
                           _row("t-2", TEXT2, "he", "John Smith", "Peter", "TRUE", "FALSE", a_at=3)])
    with pytest.raises(UserError) as err:
        read_gap(path)
    assert f"{path}:3:" in str(err.value) and "'John Smith' not found at character 3" in str(err.value)
    problems: list[str] = []
    stats = GapStats()
    assert len(read_gap(path, skip_bad=True, problems=problems, stats=stats)) == 1
    assert stats.skipped_bad == 1 and problems[0].startswith(f"{path}:3:")


def test_segmentation_spans_cover_the_text():
    words, spans = segment("Dr. O'Neil's 2nd try—fine!")
    assert words == ["Dr", ".", "O", "'", "Neil", "'", "s", "2nd", "try", "—", "fine", "!"]
    assert all("Dr. O'Neil's 2nd try—fine!"[s:e] == w for w, (s, e) in zip(words, spans))


def _special(n):
    s = np.zeros(n + 2, dtype=bool)
    s[[0, -1]] = True
    return s


def test_head_scores_on_a_synthetic_map():
    # words: 0 A1 1 A2 2 x 3 B 4 y 5 pronoun; true candidate A (two words), B is false
    meta = {"pronoun": 5, "a": [0, 1], "b": [3], "a_coref": True, "b_coref": False, "gender": "feminine"}
    U = 8
    A = np.zeros((1, 3, U, U), dtype=np.float32)
    p = 5 + 1
    A[0, 0, p, [1, 2, 4]] = [0.2, 0.2, 0.3]   # head 1: A gets 0.4 in total (summed over its words) > B 0.3
    A[0, 1, p, [1, 4]] = [0.2, 0.3]           # head 2: B wins
    A[0, 2, p, [1, 4]] = [0.25, 0.25]         # head 3: a tie is not a win
    A[0, 2, p, 7] = 0.5
    s = CorefHeadScores(1, 3)
    s.add(A, _special(6), meta)
    assert s.heads["all"].tolist() == [[1, 0, 0]] and s.heads["feminine"].tolist() == [[1, 0, 0]]
    assert s.n == {"all": 1, "masculine": 0, "feminine": 1}
    tidy = s.tidy(model="m", split="x")
    heads = tidy.query("probe == 'attention-head' and group == 'all'").set_index("head")["value"]
    assert heads[1] == 1.0 and heads[2] == 0.0 and set(tidy.group) == {"all", "feminine"}
    table = s.table(top=2)
    assert list(table.model) == ["Nearest candidate", "First candidate", "Head 1-1", "Head 1-2"]
    assert table.set_index("model").loc["Head 1-1", "all"] == 100.0


def test_baselines_nearest_and_first():
    meta = {"pronoun": 6, "a": [0, 1], "b": [4], "a_coref": True, "b_coref": False}
    assert baseline_choices(meta) == {"nearest": False, "first": True}
    meta = {"pronoun": 2, "a": [0], "b": [4], "a_coref": False, "b_coref": True}   # equal distance: earlier wins
    assert baseline_choices(meta) == {"nearest": False, "first": False}


def test_window_keeps_mentions_and_respects_budget():
    words = [f"w{i}" for i in range(20)]
    from probekit.core.examples import Example

    ex = Example(words=words, meta={"pronoun": 12, "a": [8, 9], "b": [14], "a_coref": True, "b_coref": False})
    pieces = np.array([1, 2] * 10)
    w = window(ex, pieces, budget=12)
    lo, hi = w.meta["window"]
    assert pieces[lo:hi].sum() <= 12 and lo <= 8 and hi >= 15
    assert w.words == words[lo:hi]
    assert w.words[w.meta["pronoun"]] == "w12" and [w.words[i] for i in w.meta["a"]] == ["w8", "w9"]
    assert window(ex, pieces, budget=100) is ex
    assert window(ex, pieces, budget=5) is None          # words 8..14 alone need 10 pieces


def test_coref_cli_end_to_end(tmp_path, tiny_model_dirs, capsys):
    long_text = "Mary met Sue there. " + " ".join(["archaeologist"] * 60) + " Then she left."
    rows = [_row("t-1", TEXT1, "she", "Mary Ann", "Sue", "FALSE", "TRUE"),
            _row("t-2", TEXT2, "he", "John Smith", "Peter", "TRUE", "FALSE"),
            _row("t-3", long_text, "she", "Mary", "Sue", "TRUE", "FALSE")]
    path = _gap(tmp_path, rows)
    out = tmp_path / "run"
    assert coref.main(["--gap", str(path), "--out", str(out), "--quiet",
                       "--model", str(tiny_model_dirs["bert"])]) == 0
    df = pd.read_csv(out / "results.csv")
    assert set(df.probe) == {"attention-head", "nearest", "first"}
    assert df.query("probe == 'attention-head' and group == 'all'").shape[0] == 2 * 4
    assert (df.query("group == 'all'").n == 2).all()     # the long text's mentions do not fit in 64 tokens
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["counts"]["too_long_dropped"] == 1 and cfg["counts"]["scored"] == 2
    assert "| model | all | masculine | feminine |" in (out / "results.md").read_text()
    assert (out / "heads.png").is_file()
    bad = _gap(tmp_path, [_row("t-1", TEXT1, "she", "Mary Ann", "Sue", "FALSE", "maybe")], "bad.tsv")
    assert coref.main(["--gap", str(bad), "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2:" in err and "B-coref must be TRUE or FALSE" in err


# ---- option checks, inputs, hints (in-process) ---------------------------------------------------------------
BAD_OPTIONS = [
    (["--top", "-1"], "--top must be at least 1 (got -1)"),
    (["--top", "0"], "--top must be at least 1 (got 0)"),
    (["--limit", "0"], "--limit must be at least 1 (got 0)"),
    (["--batch-size", "-1"], "--batch-size must be at least 1 (got -1)"),
    (["--max-length", "2"], "--max-length must be at least 3 (got 2)"),
    (["--device", "nonsense"], "--device 'nonsense' is not a torch device"),
]


@pytest.mark.parametrize("argv,message", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_option_values_are_one_line_before_any_work(tmp_path, capsys, argv, message):
    path = _gap(tmp_path, [_row("t-1", TEXT1, "she", "Mary Ann", "Sue", "FALSE", "TRUE")])
    out = tmp_path / "run"
    rc = coref.main(["--gap", str(path), "--out", str(out), "--quiet", "--model", str(tmp_path / "no-model"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_gap_folder_missing_file_and_skip_bad_hint(tmp_path, capsys):
    import probekit as pk

    with pytest.raises(UserError, match=r"--gap .* is a folder, not a file"):
        pk.coref(gap=tmp_path)
    assert coref.main(["--gap", str(tmp_path / "nope.tsv"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = _gap(tmp_path, [_row("t-1", TEXT1, "she", "Mary Ann", "Sue", "FALSE", "maybe")], "bad.tsv")
    assert coref.main(["--gap", str(bad), "--quiet"]) == 2
    assert f"{bad}:2:" in capsys.readouterr().err.split("(use --skip-bad to skip such rows)")[0]
    with pytest.raises(UserError) as err:                 # the reader alone does not offer an option it lacks
        read_gap(bad)
    assert f"{bad}:2:" in str(err.value) and "skip-bad" not in str(err.value)


def test_tidy_schema_and_a_pronoun_text_with_an_invisible_word(tmp_path, tiny_model_dirs, capsys):
    text = "Mary met Sue \u200b there . Then she left ."            # U+200B is its own GAP word: no token in BERT
    path = _gap(tmp_path, [_row("t-1", text, "she", "Mary", "Sue", "TRUE", "FALSE"),
                           _row("t-2", TEXT2, "he", "John Smith", "Peter", "TRUE", "FALSE")])
    out = tmp_path / "run"
    rc = coref.main(["--gap", str(path), "--out", str(out), "--quiet", "--model", str(tiny_model_dirs["bert"]),
                     "--figures", "svg"])
    assert rc == 0 and "Traceback" not in capsys.readouterr().err
    df = pd.read_csv(out / "results.csv")
    assert list(df.columns[:7]) == ["task", "group", "model", "layer", "head", "metric", "value"]
    base = df[df.probe != "attention-head"]
    assert set(base.baseline) == {"nearest", "first"} and base.layer.isna().all() and base["head"].isna().all()
    assert (df.query("group == 'all'").n == 2).all()      # both rows scored
    assert (out / "heads.svg").is_file() and not (out / "heads.png").exists()
