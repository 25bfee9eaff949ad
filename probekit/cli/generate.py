"""The argparse parser of a command, generated from its option dataclasses (:mod:`probekit.core.options`).

A field becomes one ``add_argument``: ``--name-with-dashes`` (or its ``flag``, or a positional), its default,
help (the formatter adds the default), choices, ``nargs``, type (from the declaration or the default's type),
``store_true`` for a boolean that defaults to False, ``append`` for a repeatable option, and fields sharing an
``exclusive`` name form one mutually exclusive group.
"""
from __future__ import annotations

import argparse
from dataclasses import MISSING
from typing import Sequence

from probekit.core.options import choices_of, meta, ordered_fields
from probekit.cli.parser import Parser

__all__ = ["add_options", "options_parser", "parse_options", "argument_spec"]


def argument_spec(f) -> tuple[list[str], dict]:
    """``(flags, add_argument keywords)`` of one field."""
    m = meta(f)
    default = None if f.default is MISSING else f.default
    kw: dict = {"help": m["help"]() if callable(m.get("help")) else m.get("help", "")}
    if m.get("action"):
        kw["action"] = m["action"]
    elif isinstance(default, bool) and default is False and m.get("type") is None:
        kw["action"] = "store_true"
    if m.get("positional"):
        flags = [f.name]
        if default is not None or not m.get("required"):
            kw["nargs"] = m.get("nargs") or "?"
    else:
        flags = [m.get("flag") or "--" + f.name.replace("_", "-")]
        if m.get("flag"):
            kw["dest"] = f.name
        if m.get("required"):
            kw["required"] = True
    if "action" not in kw or kw["action"] == "append":
        kind = m.get("type") or (type(default) if type(default) in (int, float) else None)
        if kind is not None:
            kw["type"] = kind
        if m.get("nargs") is not None and not m.get("positional"):
            kw["nargs"] = m["nargs"]
        if m.get("choices") is not None:
            kw["choices"] = list(choices_of(f))
        if m.get("metavar"):
            kw["metavar"] = m["metavar"]
    if kw.get("action") != "store_true":
        kw["default"] = list(default) if isinstance(default, tuple) else default
    return flags, kw


def add_options(parser: argparse.ArgumentParser, options: type) -> None:
    """One argument per command-line field of ``options``, in help order."""
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for f in ordered_fields(options):
        m = meta(f)
        if not m.get("cli", True):
            continue
        target = parser
        if m.get("exclusive"):
            if m["exclusive"] not in groups:
                required = m["exclusive"] in getattr(options, "required_groups", ())
                groups[m["exclusive"]] = parser.add_mutually_exclusive_group(required=required)
            target = groups[m["exclusive"]]
        flags, kw = argument_spec(f)
        target.add_argument(*flags, **kw)


def options_parser(prog: str, description: str, *groups: type) -> Parser:
    """The parser of a command whose options are ``groups`` (the function's options, then the output's)."""
    parser = Parser(prog=prog, description=description)
    for g in groups:
        add_options(parser, g)
    return parser


def parse_options(parser: argparse.ArgumentParser, argv: Sequence[str] | None, output: type) -> tuple[dict, dict]:
    """Parse ``argv``: ``(the function's keywords, the output options)``."""
    values = vars(parser.parse_args(argv))
    out = {f.name: values.pop(f.name) for f in ordered_fields(output) if f.name in values}
    return values, out

