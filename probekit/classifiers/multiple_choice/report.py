"""The run folder of ``python -m probekit.classify --task multiple-choice``.

``results.csv`` (tidy: task, split, probe, model, layer, head, metric, value; the model's rows have probe
``multiple-choice``, the baselines ``random guess`` and ``longest option``), ``results.md``, ``history.csv`` +
``learning_curve.png`` (when trained), ``predictions.csv`` (the test split, else dev: one row per question with
its gold and predicted option and the probability of each option), ``config.json`` (with the truncation counts
and the timings), and the model itself (``classifier.json``, ``classifier.safetensors``, ``encoder/``), which
``pk.load_classifier`` reads back and ``python -m probekit.attack --classifier`` takes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from probekit.core.result import Result, tidy
from probekit.core.rundir import markdown_table, run_record, write_tidy

KEYS = ["split", "probe"]


class MCResult(Result):
    """``.frame``: results.csv. ``.history``: the learning curve (None when a saved model was evaluated).
    ``.predictions``: one row per question of ``.eval_split``. ``.model_mc``: the trained
    :class:`~probekit.classifiers.multiple_choice.model.MultipleChoiceModel` (also ``.classifier``). ``.evals``: split →
    :func:`~probekit.classifiers.multiple_choice.train.evaluate_mc` output."""

    command = "classify"

    def __init__(self, frame, record, *, history, predictions, model, evals, eval_split, save, checkpoint):
        super().__init__(frame, record)
        self.history, self.predictions, self.evals, self.eval_split = history, predictions, evals, eval_split
        self.model_mc = self.classifier = model
        self._save, self._checkpoint = save, checkpoint

    @classmethod
    def build(cls, rows, *, history, model, splits, evals, eval_split, arguments, counts, extra, save,
              checkpoint) -> "MCResult":
        df = pd.DataFrame(rows)
        df.insert(0, "task", "multiple-choice")
        frame = tidy(df, task="multiple-choice", model=model.source_name, keys=KEYS)
        items, ev = splits[eval_split], evals[eval_split]
        k_max = ev["scores"].shape[1]
        preds = pd.DataFrame({"item": np.arange(len(items)), "id": [it.id for it in items],
                              "source": [it.meta.get("source", "") for it in items],
                              "type": [it.meta.get("type", "") for it in items],
                              "answer": [it.answer for it in items], "predicted": ev["predictions"],
                              "correct": ev["predictions"] == np.array([it.answer for it in items]),
                              "options": [len(it.options) for it in items]})
        for c in range(k_max):
            preds[f"p_{c}"] = ev["probabilities"][:, c]
        if history is not None:
            extra["truncated"] = {**history.attrs.get("truncated", {})}
        inputs = {k: arguments.get(k) for k in ("train", "dev", "test", "load")}
        record = run_record("classify", arguments, encoder=model.encoder, inputs=inputs, counts=counts,
                            eval_split=eval_split, **extra)
        return cls(frame, record, history=history, predictions=preds, model=model, evals=evals,
                   eval_split=eval_split, save=save, checkpoint=checkpoint)

    def accuracy(self, split: str = "test", probe: str = "multiple-choice") -> float:
        f = self.frame
        return float(f[(f["split"] == split) & (f["probe"] == probe) & (f["metric"] == "accuracy")]["value"].iloc[0])

    def truncation_line(self) -> str:
        c = self.record["counts"]
        parts = [f"{s} {c[f'{s}_truncated']}/{c[f'{s}_items']}" for s in ("train", "dev", "test")
                 if f"{s}_truncated" in c]
        return (f"passages cut to --max-length {self.model_mc.max_length}: " + ", ".join(parts)
                + " questions")

    def write(self, out=None, *, overwrite: bool = False, figures=("png",)):
        """Write the run folder, then remove the training checkpoint (the run is complete)."""
        path = super().write(out, overwrite=overwrite, figures=figures)
        if self._checkpoint is not None:
            import shutil

            shutil.rmtree(self._checkpoint, ignore_errors=True)
        return path

    def write_files(self, run) -> None:
        from probekit.classifiers.multiple_choice.saved import save_multiple_choice
        from probekit.classifiers.report import write_training

        write_tidy(run, self.frame)
        run.write_text("results.md", markdown_report(self))
        write_training(run, self.predictions, self.history, self.model)
        if self._save:
            save_multiple_choice(self.model_mc, run.file("classifier.json").parent)

    def files(self) -> list[str]:
        out = ["results.csv", "results.md"]
        if self.history is not None:
            out.append("learning_curve.png")
        if self._save:
            out.append("classifier.json")
        return out


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """probe × split accuracy."""
    f = frame[frame["metric"] == "accuracy"]
    piv = f.pivot_table(index="probe", columns="split", values="value", sort=False)
    piv.columns = [f"{s} accuracy" for s in piv.columns]
    return piv.reset_index()


def markdown_report(result: MCResult) -> str:
    rec = result.record
    mc = rec.get("multiple_choice", {})
    text = (f"# Multiple choice: {result.model} ({mc.get('architecture')}), max length {mc.get('max_length')}\n\n"
            "Accuracy by split, beside random guessing (expected, 1/k) and always picking the longest option:\n\n")
    text += markdown_table(summary_table(result.frame)) + "\n"
    text += result.truncation_line() + " (only the passage is ever cut).\n\n"
    if rec.get("best_epoch") is not None:
        text += f"Best dev epoch: {rec['best_epoch']} (its weights are the saved model).\n"
    t = rec.get("timing", {})
    if t.get("epoch_s"):
        text += (f"Time per epoch: {', '.join(f'{s:.0f}' for s in t['epoch_s'])} s wall, "
                 f"{', '.join(f'{s:.0f}' for s in t['epoch_cpu_s'])} s CPU.\n")
    return text
