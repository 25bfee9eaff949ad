"""What every analysis returns: its tidy table, any extra tables, the run record, and ``write(out)``.

``pk.probe(...)``, ``pk.attention(...)`` … each return a :class:`Result` subclass. ``.frame`` is the table the
command writes as its main CSV; other tables are attributes; ``.record`` is the ``config.json`` content; and
``.write(out)`` writes exactly what the command writes. The command is ``pk.X(**options).write(out)`` plus
printing. In Jupyter a result displays itself (``_repr_html_``): pages, figures and tables.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from probekit.core.rundir import RunDir, default_run_dir, refuse_inputs

#: The columns every tidy results table starts with (task-specific ones follow).
CORE_COLUMNS = ["task", "model", "layer", "head", "metric", "value"]


class Result:
    """Base class: subclasses set ``command``, ``main_table`` and implement :meth:`write_files`."""

    command: str = ""
    main_table: str = "results.csv"

    def __init__(self, frame: pd.DataFrame, record: dict):
        self.frame = frame
        self.record = record

    @property
    def model(self) -> str:
        return str((self.record.get("model") or {}).get("name", "model"))

    def default_out(self) -> Path:
        return default_run_dir(self.record.get("task") or self.command, self.model)

    def write(self, out: str | os.PathLike | None = None, *, overwrite: bool = False,
              figures: Sequence[str] = ("png",)) -> Path:
        """Write the run folder (``runs/<command>-<model>-<time>`` by default) and return its path.

        An existing non-empty ``out`` is refused unless ``overwrite``; ``figures`` lists the formats of every
        figure (``png``, ``svg``, ``pdf``).
        """
        from probekit.core.progress import quiet

        out = Path(out) if out is not None else self.default_out()
        refuse_inputs(out, self.record)           # never replace what the run was computed from
        with quiet(False), RunDir(out, overwrite=overwrite, figure_formats=figures) as run:   # no HF save bars
            self.write_files(run)
            run.write_json("config.json", {**self.record, "out": str(out)})
            return run.commit()

    def write_files(self, run: RunDir) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def files(self) -> list[str]:
        """The main files a written run holds (for the command's closing line)."""
        return [self.main_table]

    def _repr_html_(self) -> str:
        """Jupyter's view: the pages the run writes (each in an isolated frame), its figures inline, its tables.

        Built from exactly what :meth:`write` writes, in a temporary folder (see :mod:`probekit.core.notebook`).
        """
        from probekit.core.notebook import result_html

        return result_html(self)

    def __repr__(self) -> str:
        extra = [k for k, v in vars(self).items() if isinstance(v, pd.DataFrame) and k != "frame"]
        return (f"<{type(self).__name__} {self.command}: {len(self.frame)} rows"
                + (f"; tables {', '.join(extra)}" if extra else "") + ">")


def tidy(df: pd.DataFrame, *, task: str, model: str, keys: Sequence[str] = ()) -> pd.DataFrame:
    """The shared schema: ``task, [keys…], model, layer, head, metric, value`` first, then the rest.

    Missing core columns are added empty; ``layer`` and ``head`` are nullable integers, so an aggregate row has
    an empty cell there (and says what it aggregates in its own column), never a string.
    """
    df = df.copy()
    for col, value in (("task", task), ("model", model)):
        if col not in df.columns:
            df.insert(0, col, value)
    for col in ("layer", "head"):
        if col not in df.columns:
            df[col] = pd.NA
        df[col] = pd.array(df[col], dtype="Int64")
    keys = [k for k in keys if k in df.columns]
    front = ["task", *keys, "model", "layer", "head", "metric", "value"]
    front = [c for c in front if c in df.columns]
    return df[front + [c for c in df.columns if c not in front]].reset_index(drop=True)
