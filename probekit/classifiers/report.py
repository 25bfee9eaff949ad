"""The run folder of ``python -m probekit.classify``.

``results.csv`` (tidy: task, split, probe, model, layer, head, metric, value, class, encoder, level; the
baselines are rows with their own ``probe``/``model``), ``results.md``, ``history.csv`` + ``learning_curve.png``,
``confusion.csv`` + ``confusion.png`` (the test split, else dev), ``predictions.csv``, ``config.json``, and the
classifier itself (``classifier.json``, ``classifier.safetensors``, ``encoder/`` when fine-tuned), so the run
folder is what ``pk.load_classifier`` and ``python -m probekit.attribute --classifier`` take.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from probekit.core.result import Result, tidy
from probekit.core.rundir import markdown_table, run_record, write_tidy

KEYS = ["split", "probe"]


class ClassifyResult(Result):
    """``.frame``: results.csv. ``.history``: the learning curve (epoch, train_loss, dev_loss, dev_accuracy,
    best), None for an evaluation of a saved classifier. ``.confusion``: [true × predicted] counts of
    ``.eval_split``. ``.predictions``: one row per example of that split. ``.classifier``: the trained
    :class:`~probekit.classifiers.model.Classifier`."""

    command = "classify"

    def __init__(self, frame, record, *, history, confusion, predictions, classifier, eval_split, save=True):
        super().__init__(frame, record)
        self.history = history
        self.confusion = confusion
        self.predictions = predictions
        self.classifier = classifier
        self.eval_split = eval_split
        self._save = save

    @classmethod
    def build(cls, rows, *, history, classifier, splits, logits, labels, eval_split, arguments, encoder,
              counts, inputs, extra, save=True) -> "ClassifyResult":
        from probekit.classifiers.metrics import confusion as confusion_counts

        df = pd.DataFrame(rows)
        df.insert(0, "task", "classify")
        for col in ("encoder", "level"):
            if col not in df.columns:
                df[col] = None
        frame = tidy(df, task="classify", model=encoder.name, keys=KEYS)
        lg = logits[eval_split]
        y = np.array([labels.index(ex.meta["label"]) for ex in splits[eval_split]])
        pred = lg.argmax(1)
        matrix = pd.DataFrame(confusion_counts(y, pred, len(labels)), index=pd.Index(labels, name="true"),
                              columns=labels)
        p = np.exp(lg - lg.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        preds = pd.DataFrame({"example": np.arange(len(y)),
                              "source": [ex.meta.get("source", "") for ex in splits[eval_split]],
                              "true": [labels[i] for i in y], "label": [labels[i] for i in pred],
                              "probability": p[np.arange(len(p)), pred]})
        for c, name in enumerate(labels):
            preds[f"p_{name}"] = p[:, c]
        if history is not None and "epoch_s" in history.attrs:
            extra.setdefault("timing", {})["epoch_s"] = [round(s, 2) for s in history.attrs["epoch_s"]]
        record = run_record("classify", arguments, encoder=encoder, inputs=inputs, counts=counts,
                            eval_split=eval_split, **extra)
        return cls(frame, record, history=history, confusion=matrix, predictions=preds, classifier=classifier,
                   eval_split=eval_split, save=save)

    def accuracy(self, split: str = "test", probe: str | None = None) -> float:
        """The accuracy of ``probe`` (default: the classifier's head) on ``split``."""
        probe = probe or self.classifier.head_type
        f = self.frame
        return float(f[(f["split"] == split) & (f["probe"] == probe) & (f["metric"] == "accuracy")]["value"].iloc[0])

    def write_files(self, run) -> None:
        from probekit.classifiers.saved import save_classifier

        write_tidy(run, self.frame)
        run.write_text("results.md", markdown_report(self))
        cm = self.confusion.reset_index()
        cm.to_csv(run.file("confusion.csv"), index=False, lineterminator="\n")
        run.save_figure(confusion_figure(self.confusion, f"{self.eval_split} — {self.model}"), "confusion")
        write_training(run, self.predictions, self.history, self.model)
        if self._save:
            save_classifier(self.classifier, run.file("classifier.json").parent)

    def files(self) -> list[str]:
        out = ["results.csv", "results.md", "confusion.png"]
        if self.history is not None:
            out.append("learning_curve.png")
        if self._save:
            out.append("classifier.json")
        return out


def write_training(run, predictions: pd.DataFrame, history: pd.DataFrame | None, model: str) -> None:
    """What every trained classifier's run folder holds: predictions.csv, and with a training history
    history.csv and the learning curve."""
    predictions.to_csv(run.file("predictions.csv"), index=False, float_format="%.6g", lineterminator="\n")
    if history is not None:
        history.to_csv(run.file("history.csv"), index=False, float_format="%.6g", lineterminator="\n")
        run.save_figure(learning_curve_figure(history, model), "learning_curve")


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """probe × (split accuracy, split macro-F1)."""
    f = frame[frame["metric"].isin(["accuracy", "macro_f1"])]
    piv = f.pivot_table(index=["probe", "model"], columns=["split", "metric"], values="value", sort=False)
    piv.columns = [f"{s} {m}" for s, m in piv.columns]
    return piv.reset_index()


def markdown_report(result: ClassifyResult) -> str:
    rec = result.record
    clf = rec.get("classifier", {})
    text = (f"# Classifier: {clf.get('head')} head, {clf.get('encoder_mode')} encoder ({result.model}), "
            f"{clf.get('level')} level, layer {clf.get('layer')}\n\n")
    text += "Accuracy and macro-F1 by split, beside the baselines trained on the same train split:\n\n"
    text += markdown_table(summary_table(result.frame)) + "\n"
    if rec.get("baselines", {}).get("head_vs_linear"):
        text += f"Head against the linear baseline on the same vectors: {rec['baselines']['head_vs_linear']}.\n\n"
    per = result.frame[(result.frame["metric"] == "f1") & (result.frame["split"] == result.eval_split)]
    if len(per):
        piv = per.pivot_table(index="probe", columns="class", values="value", sort=False).reset_index()
        text += f"Per-class F1 ({result.eval_split}):\n\n" + markdown_table(piv) + "\n"
    text += f"Confusion matrix ({result.eval_split}; rows = true, columns = predicted):\n\n"
    text += markdown_table(result.confusion.reset_index()) + "\n"
    if rec.get("best_epoch") is not None:
        text += f"Best dev epoch: {rec['best_epoch']} (its weights are the saved classifier).\n"
    return text


def confusion_figure(matrix: pd.DataFrame, title: str):
    from matplotlib.figure import Figure

    n = len(matrix)
    fig = Figure(figsize=(2.8 + 0.7 * n, 1.8 + 0.6 * n), layout="constrained")
    ax = fig.subplots()
    values = matrix.to_numpy()
    im = ax.imshow(values, cmap="Blues")
    fig.colorbar(im, ax=ax, label="examples")
    ax.set_xticks(range(n), matrix.columns, rotation=30, ha="right")
    ax.set_yticks(range(n), matrix.index)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = values.max() if values.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(values[i, j]), ha="center", va="center",
                    color="white" if values[i, j] > top / 2 else "black")
    ax.set_title(title)
    return fig


def learning_curve_figure(history: pd.DataFrame, model: str):
    """Losses (left axis) and dev accuracy (right axis) per epoch; the legend sits under the axes, clear of both
    axis labels, and epochs are whole numbers."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.plot(history["epoch"], history["train_loss"], marker="o", markersize=3, label="train loss")
    ax.plot(history["epoch"], history["dev_loss"], marker="s", markersize=3, label="dev loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax2 = ax.twinx()
    ax2.plot(history["epoch"], history["dev_accuracy"], color="tab:green", marker="^", markersize=3,
             label="dev accuracy")
    ax2.set_ylabel("dev accuracy")
    best = history[history["best"]]
    ax2.scatter(best["epoch"], best["dev_accuracy"], s=80, facecolors="none", edgecolors="black",
                label="best dev epoch (kept)", zorder=5)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    fig.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="outside lower center", ncols=4, fontsize=8,
               frameon=False)
    ax.set_title(f"learning curve — {model}")
    return fig
