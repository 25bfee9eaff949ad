"""Classification metrics as tidy rows: accuracy, macro-F1, per-class F1, cross-entropy loss, n."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from probekit.core.errors import UserError
from probekit.core.examples import Example


def metric_rows(logits: np.ndarray, y: np.ndarray, labels: Sequence[str], **keys) -> list[dict]:
    """Rows ``{**keys, metric, value, class}``; ``logits`` may be log-probabilities (the loss is then −mean log p)."""
    import torch
    from sklearn.metrics import f1_score

    lg = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    yt = torch.as_tensor(np.asarray(y))
    pred = lg.argmax(1).numpy()
    y = np.asarray(y)
    C = len(labels)
    rows = [{**keys, "metric": "accuracy", "value": float((pred == y).mean()), "class": None},
            {**keys, "metric": "macro_f1", "value": float(f1_score(y, pred, labels=list(range(C)),
                                                                    average="macro", zero_division=0)),
             "class": None}]
    per = f1_score(y, pred, labels=list(range(C)), average=None, zero_division=0)
    rows += [{**keys, "metric": "f1", "value": float(per[c]), "class": labels[c]} for c in range(C)]
    rows.append({**keys, "metric": "loss", "value": float(torch.nn.functional.cross_entropy(lg, yt)),
                 "class": None})
    rows.append({**keys, "metric": "n", "value": float(len(y)), "class": None})
    return rows


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """[true, predicted] counts."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y), np.asarray(pred)), 1)
    return m


def label_ids(examples: Sequence[Example], labels: Sequence[str], split: str) -> np.ndarray:
    """Class indices; a label the training split never had is an error at its file:line."""
    index = {l: i for i, l in enumerate(labels)}
    out = np.empty(len(examples), dtype=np.int64)
    for i, ex in enumerate(examples):
        lab = ex.meta["label"]
        if lab not in index:
            raise UserError(f"{ex.meta.get('source', f'--{split} item {i}')}: label {lab!r} is not one of the "
                            f"training labels ({', '.join(labels)})")
        out[i] = index[lab]
    return out
