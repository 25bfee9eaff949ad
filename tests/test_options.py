"""Options declared once: the function's keywords, the generated parser and the run record come from one dataclass;
and every command is reachable through ``probekit <command>`` / ``python -m probekit <command>``."""
from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys
from dataclasses import MISSING, dataclass
from pathlib import Path

import pytest

import probekit as pk
from probekit.__main__ import COMMANDS, description, main as probekit_main, module_name
from probekit.cli import options_parser, parse_options
from probekit.core.errors import UserError
from probekit.core.options import (ModelOptions, Options, RunOptions, SampleOptions, UnknownOption, choices_of,
                                   meta, option, ordered_fields, positive, takes)

#: Every command → its Python function, whose options generate the command line of probekit.<command>.
MIGRATED = {"probe": pk.probe, "data": pk.data, "extract": pk.extract, "confusion": pk.confusion,
            "attention": pk.attention, "deps": pk.deps, "coref": pk.coref, "parse": pk.parse, "browse": pk.browse,
            "clusters": pk.clusters, "structural": pk.structural,
            "edges": pk.edges, "attribute": pk.attribute, "faithfulness": pk.faithfulness, "compare": pk.compare,
            "attack": pk.attack, "classify": pk.classify}
ROOT = Path(__file__).resolve().parents[1]

CONLLU = "1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n2\tdog\tdog\tNOUN\t_\t_\t3\tnsubj\t_\t_\n" \
         "3\tbarked\tbark\tVERB\t_\t_\t0\troot\t_\t_\n\n"


def _help(main, argv) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_is_reachable_and_its_help_is_the_modules(command, capsys):
    module = importlib.import_module(module_name(command))
    _help(module.main, ["--help"])
    own = capsys.readouterr().out
    _help(probekit_main, [command, "--help"])
    assert capsys.readouterr().out == own and f"python -m probekit.{command}" in own
    assert description(command) and description(command)[0].isupper()


def test_the_overview_lists_every_command_with_its_line(capsys):
    assert probekit_main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert f"  {command} " in out and description(command) in out
    top = {p.stem for p in (ROOT / "probekit").glob("*.py")} - {"__init__", "__main__"}
    packages = {p.parent.name for p in (ROOT / "probekit").glob("*/__main__.py")}
    assert set(COMMANDS) == top | packages


def test_python_dash_m_probekit_runs_a_command():
    done = subprocess.run([sys.executable, "-m", "probekit", "deps", "--help"], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and "--min-offset" in done.stdout


def test_unknown_command_is_one_line_and_exit_2(capsys):
    assert probekit_main(["frobnicate", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("probekit: error: unknown command 'frobnicate'") and err.count("\n") == 1
    assert "probe, data" in err


@pytest.mark.parametrize("command", sorted(MIGRATED))
def test_generated_parser_has_the_dataclass_flags_defaults_and_choices(command):
    options = MIGRATED[command].options
    parser = importlib.import_module(module_name(command)).build_parser()
    actions = {a.dest: a for a in parser._actions}
    for f in ordered_fields(options):
        if not meta(f)["cli"]:          # Python only (attack's overwrite of --augment is --overwrite's)
            continue
        action = actions[f.name]
        assert action.option_strings == [meta(f)["flag"] or "--" + f.name.replace("_", "-")]
        default = None if f.default is MISSING else f.default
        expected = list(default) if isinstance(default, tuple) else default
        assert action.default == expected or (default is False and action.default is False), f.name
        assert action.required == (f.default is MISSING)
        if meta(f)["choices"] is not None:
            assert list(action.choices) == list(choices_of(f))
    # and nothing on the command line that the function does not take, besides where to write and what to show
    output = {"out", "overwrite", "figures", "png", "svg", "bertviz", "help", "show", "plugin", "encoder_source"}
    plugins = {a.dest for g in parser._action_groups
               if g.title and g.title.startswith(("options of --task", "method options", "experiment options"))
               for a in g._group_actions}
    declared = {f.name for f in ordered_fields(options) if meta(f)["cli"]}
    assert set(actions) - (output - declared) - plugins == declared


@pytest.mark.parametrize("command", sorted(MIGRATED))
def test_unknown_keyword_is_a_user_error_naming_it(command, tmp_path):
    function = MIGRATED[command]
    args = ("nth_token",) if command in ("probe", "data") else ()
    # the keyword is refused before anything is read, so required options may stay unset
    with pytest.raises(UserError, match="frobnicate") as err:
        function(*args, frobnicate=1, quiet=True)
    if command not in ("probe", "data"):        # those pass unknown keywords to the task, which refuses them
        assert isinstance(err.value, TypeError) and "its options:" in str(err.value)


def test_signature_shows_the_declared_defaults():
    import inspect

    params = inspect.signature(pk.deps).parameters
    assert list(params)[0] == "conllu" and params["conllu"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert params["min_count"].default == 100 and params["batch_size"].default == 32
    assert inspect.signature(pk.attention).parameters["batch_size"].default == 16
    assert inspect.signature(pk.browse).parameters["batch_size"].default == 1


def test_bad_values_name_the_flag():
    with pytest.raises(UserError, match=r"^--sentences must be at least 1 \(got 0\)$"):
        pk.confusion(sentences=0)
    with pytest.raises(UserError, match="--min-offset 3 is larger than --max-offset 1"):
        pk.deps(min_offset=3, max_offset=1)
    with pytest.raises(UserError, match="--corpus is required"):
        pk.extract()


def test_run_record_is_asdict_of_the_options(tiny_model_dirs, tmp_path):
    treebank = tmp_path / "t.conllu"
    treebank.write_text(CONLLU, encoding="utf-8")
    kwargs = dict(conllu=str(treebank), min_count=1, max_offset=2, model=str(tiny_model_dirs["bert"]), quiet=True)
    result = pk.deps(**kwargs)
    options = pk.deps.options(**kwargs)
    assert result.record["arguments"] == json.loads(json.dumps(dataclasses.asdict(options), default=str))
    assert result.record["arguments"] == options.record() and options.record()["conllu"] == str(treebank)


# --- what the remaining commands need: positionals, exclusive pairs, repeatable options, nargs="+" -------------

def _scale(name, value):
    return positive(name, value)


@dataclass(frozen=True, kw_only=True)
class _DemoOptions(ModelOptions, RunOptions):
    classifier: str = option(help="a saved classifier", positional=True)
    text: str | None = option(None, "one text", exclusive="input")
    data: str | None = option(None, "a data file", exclusive="input")
    methods: tuple = option(("a", "b"), "methods", nargs="+", choices=("a", "b", "c"))
    keep: tuple = option((), "a label to keep (repeatable)", action="append")
    steps: int = option(4, "steps", check=_scale)

    def check(self) -> None:
        if self.text is None and self.data is None:
            raise UserError("give --text or --data")


@takes(_DemoOptions, args=("classifier",))
def _demo(o: _DemoOptions) -> _DemoOptions:
    return o


def test_the_framework_expresses_positionals_exclusive_groups_repeatable_and_lists(capsys):
    parser = options_parser("demo", "a demo", _DemoOptions)
    options, _ = parse_options(parser, ["runs/x", "--text", "hi", "--methods", "c", "a", "--keep", "p",
                                        "--keep", "q", "--steps", "8", "--batch-size", "2"], _Nothing)
    o = _demo(**options)
    assert (o.classifier, o.text, o.methods, o.keep, o.steps, o.batch_size) == ("runs/x", "hi", ("c", "a"),
                                                                                ("p", "q"), 8, 2)
    assert _demo("runs/x", data="d.jsonl").methods == ("a", "b")
    with pytest.raises(UserError, match="not allowed with argument"):
        parser.parse_args(["runs/x", "--text", "t", "--data", "d"])
    with pytest.raises(UserError, match="--methods: unknown 'z'"):
        _demo("runs/x", text="t", methods=["z"])
    with pytest.raises(UserError, match="--steps must be at least 1"):
        _demo("runs/x", text="t", steps=0)
    with pytest.raises(UserError, match="give --text or --data"):
        _demo("runs/x")
    with pytest.raises(UserError, match="--classifier is required"):
        _demo(text="t")
    with pytest.raises(UnknownOption, match="got classifier twice"):
        _demo("runs/x", classifier="y")


@dataclass(frozen=True, kw_only=True)
class _Nothing(Options):
    pass


@dataclass(frozen=True, kw_only=True)
class _OneOf(SampleOptions):
    required_groups = ("input",)
    text: tuple | None = option(None, "a text (repeatable)", action="append", exclusive="input")
    data: str | None = option(None, "a data file", exclusive="input")


def test_a_required_exclusive_group_and_the_seeded_limit():
    parser = options_parser("demo", "a demo", _OneOf)
    with pytest.raises(UserError, match="one of the arguments --text --data is required"):
        parser.parse_args([])
    with pytest.raises(UserError, match="^give --text or --data$"):
        _OneOf()
    with pytest.raises(UserError, match="^give --text or --data, not both$"):
        _OneOf(text=("a",), data="d")
    o = _OneOf(data="d", limit=3, seed=1)
    items = list(range(10))
    picked = o.sample(items)
    assert len(picked) == 3 and picked == sorted(picked) and picked == _OneOf(data="d", limit=3, seed=1).sample(items)
    assert _OneOf(data="d").sample(items) == items
    assert {tuple(_OneOf(data="d", limit=3, seed=s).sample(items)) for s in range(5)} != {tuple(picked)}
    with pytest.raises(UserError, match="--limit must be at least 1"):
        _OneOf(data="d", limit=0)


_REGISTRY = ["first"]


@dataclass(frozen=True, kw_only=True)
class _Plugins(Options):
    method: str = option("first", "a registered method", choices=lambda: _REGISTRY)


def test_choices_read_from_a_registry_see_later_registrations():
    with pytest.raises(UserError, match="--method must be one of first"):
        _Plugins(method="mine")
    _REGISTRY.append("mine")
    try:
        assert _Plugins(method="mine").method == "mine"
        parser = options_parser("demo", "a demo", _Plugins)
        assert parser.parse_args(["--method", "mine"]).method == "mine"
    finally:
        _REGISTRY.remove("mine")


def test_help_into_a_closed_pipe_is_no_traceback():
    import os

    proc = subprocess.run(f"{sys.executable} -m probekit --help | head -1", shell=True, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(Path(pk.__file__).parents[1])})
    assert proc.stdout.startswith("usage: probekit") and "Traceback" not in proc.stderr


def _readme_lines(commands):
    """The README's ``python -m probekit.X …`` command lines of ``commands`` in its examples (a line that starts
    with the command; continuations joined), not the synopses in headings and prose."""
    import re
    import shlex

    text = (ROOT / "README.md").read_text(encoding="utf-8").replace("\\\n", " ")
    pattern = rf"^\s*python -m probekit\.({'|'.join(commands)})\b([^`#&|\n]*)"
    return [(m.group(1), shlex.split(m.group(2))) for m in re.finditer(pattern, text, re.MULTILINE)]


SAVED_CLASSIFIER_COMMANDS = ("attribute", "faithfulness", "classify", "compare", "attack")


def test_the_readme_command_lines_parse_into_valid_options():
    lines = _readme_lines(SAVED_CLASSIFIER_COMMANDS)
    assert {c for c, _ in lines} == set(SAVED_CLASSIFIER_COMMANDS) and len(lines) > 25
    for command, argv in lines:
        options = MIGRATED[command].options
        values = vars(importlib.import_module(module_name(command)).build_parser(argv).parse_args(argv))
        own = {k: v for k, v in values.items() if k in options.names()}
        assert set(values) - set(own) <= {"out", "overwrite", "figures", "show", "png", "plugin", "encoder_source",
                                          "steps", "retry_steps", "samples", "stdev"}, (command, argv)
        o = options(**own)
        for flag in (a for a in argv if a.startswith("--") and a[2:].replace("-", "_") in options.names()):
            name = flag[2:].replace("-", "_")
            assert getattr(o, name) not in (None, ()) or name in ("tasks",), (command, flag)
