"""pk.deps / pk.coref / pk.parse from Python: .frame is the CLI's results.csv, and the analyses share one pass."""
from __future__ import annotations

import importlib
import io

import pandas as pd
import pytest

import probekit as pk

CONLLU = """\
# sent_id = a
1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_
2\tdog\tdog\tNOUN\t_\t_\t3\tnsubj\t_\t_
3\tbarked\tbark\tVERB\t_\t_\t0\troot\t_\t_
4\tloudly\tloudly\tADV\t_\t_\t3\tadvmod\t_\t_
5\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_

# sent_id = b
1\tA\ta\tDET\t_\t_\t3\tdet\t_\t_
2\tsmall\tsmall\tADJ\t_\t_\t3\tamod\t_\t_
3\tcat\tcat\tNOUN\t_\t_\t4\tnsubj\t_\t_
4\tslept\tsleep\tVERB\t_\t_\t0\troot\t_\t_
5\t.\t.\tPUNCT\t_\t_\t4\tpunct\t_\t_
"""
GAP = "\n".join([
    "ID\tText\tPronoun\tPronoun-offset\tA\tA-offset\tA-coref\tB\tB-offset\tB-coref\tURL",
    "t-1\tJohn called Peter because he was late.\the\t26\tJohn\t0\tTRUE\tPeter\t12\tFALSE\thttp://x",
    "t-2\tAnna saw Bea and she waved.\tshe\t17\tAnna\t0\tFALSE\tBea\t9\tTRUE\thttp://x",
]) + "\n"


def _as_written(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the command's CSV writer formats it, read back."""
    return pd.read_csv(io.StringIO(frame.to_csv(index=False, float_format="%.6g", lineterminator="\n")))


def _cli(command: str, argv: list[str], out) -> pd.DataFrame:
    assert importlib.import_module(f"probekit.{command}").main([*argv, "--out", str(out), "--quiet"]) == 0
    return pd.read_csv(out / "results.csv")


@pytest.fixture()
def files(tmp_path):
    treebank = tmp_path / "tb.conllu"
    treebank.write_text(CONLLU, encoding="utf-8")
    gap = tmp_path / "gap.tsv"
    gap.write_text(GAP, encoding="utf-8")
    return treebank, gap


def test_deps_frame_equals_the_cli_csv(tmp_path, files, tiny_model_dirs):
    model = str(tiny_model_dirs["bert"])
    result = pk.deps(conllu=files[0], min_count=1, max_offset=2, model=model, quiet=True)
    csv = _cli("deps", ["--conllu", str(files[0]), "--min-count", "1", "--max-offset", "2", "--model", model],
               tmp_path / "run")
    pd.testing.assert_frame_equal(_as_written(result.frame), csv)
    assert result.table.iloc[0]["relation"] == "all" and result.record["command"] == "deps"
    written = result.write(tmp_path / "again")
    assert pd.read_csv(written / "results.csv").equals(csv)


def test_coref_frame_equals_the_cli_csv(tmp_path, files, tiny_model_dirs):
    model = str(tiny_model_dirs["roberta"])
    result = pk.coref(gap=files[1], top=3, model=model, quiet=True)
    csv = _cli("coref", ["--gap", str(files[1]), "--top", "3", "--model", model], tmp_path / "run")
    pd.testing.assert_frame_equal(_as_written(result.frame), csv)
    assert len(result.table) == 2 + 3 and result.scores.n["all"] == 2


def test_parse_frame_and_weights_equal_the_cli_csvs(tmp_path, files, tiny_model_dirs):
    model = str(tiny_model_dirs["bert"])
    result = pk.parse(train=files[0], dev=files[0], probes=["right-branching", "attn"], epochs=2, model=model,
                      no_cache=True, quiet=True)
    out = tmp_path / "run"
    csv = _cli("parse", ["--train", str(files[0]), "--dev", str(files[0]), "--probes", "right-branching,attn",
                         "--epochs", "2", "--model", model, "--no-cache"], out)
    timing = "seconds_per_epoch"                      # wall-clock time, the one column that differs
    pd.testing.assert_frame_equal(_as_written(result.frame).drop(columns=timing), csv.drop(columns=timing))
    pd.testing.assert_frame_equal(_as_written(result.weights), pd.read_csv(out / "attn_weights.csv"))


def test_dependency_heads_through_analyze_equals_pk_deps(files, tiny_model_dirs):
    encoder = pk.load_encoder(str(tiny_model_dirs["bert"]), attention=True)
    examples = pk.read_conllu(files[0])
    heads = pk.DependencyHeads(encoder, split="tb")
    frame, = pk.analyze(encoder, examples, [heads])
    assert heads.scores.n_sentences == 2
    pd.testing.assert_frame_equal(frame, pk.deps(conllu=files[0], model=encoder, quiet=True).frame)


def test_coref_heads_through_analyze_equals_pk_coref(files, tiny_model_dirs):
    from probekit.syntax.coref_heads import fit_to_model

    encoder = pk.load_encoder(str(tiny_model_dirs["bert"]), attention=True)
    fitted, windowed, dropped = fit_to_model(pk.read_gap(files[1]), encoder.tokenizer, encoder.max_length)
    frame, = pk.analyze(encoder, fitted, [pk.CorefHeads(encoder, split="gap")])
    assert (windowed, dropped) == (0, 0)
    pd.testing.assert_frame_equal(frame, pk.coref(gap=files[1], model=encoder, quiet=True).frame)


def test_an_encoder_without_attention_is_refused(files, tiny_model_dirs):
    encoder = pk.load_encoder(str(tiny_model_dirs["bert"]))
    with pytest.raises(pk.UserError, match="attention=True"):
        pk.deps(conllu=files[0], model=encoder)
