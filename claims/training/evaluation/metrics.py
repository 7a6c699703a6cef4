"""Metrics per task, as flat scalar names MLflow can chart (`claim_type.casualties.f1`)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_recall_fscore_support,
)

from claims.corpus.labelspace import LabelSpace

PER_LABEL = ("precision", "recall", "f1", "support")


def compute(y: np.ndarray, pred: np.ndarray, proba: np.ndarray, space: LabelSpace) -> dict[str, float]:
    out: dict[str, float] = {}
    for task in space.tasks():
        s = space.slices()[task.name]
        yt, yp, pp = y[:, s], pred[:, s], proba[:, s]
        name = task.name
        if task.type == "binary":
            p, r, f, _ = precision_recall_fscore_support(yt[:, 0], yp[:, 0], average="binary", zero_division=0)
            out.update({f"{name}.precision": p, f"{name}.recall": r, f"{name}.f1": f,
                        f"{name}.support": float(yt.sum()), f"{name}.accuracy": accuracy_score(yt[:, 0], yp[:, 0])})
            out[f"{name}.average_precision"] = (average_precision_score(yt[:, 0], pp[:, 0])
                                                if yt.sum() else 0.0)
            # Macro F1 over both classes, so every task has a comparable `macro_f1`.
            out[f"{name}.macro_f1"] = f1_score(yt[:, 0], yp[:, 0], average="macro", zero_division=0)
            continue
        if task.type == "multiclass":
            yt_c, yp_c = yt.argmax(1), yp.argmax(1)
            out[f"{name}.accuracy"] = accuracy_score(yt_c, yp_c)
            out[f"{name}.macro_f1"] = f1_score(yt_c, yp_c, average="macro", zero_division=0)
            p, r, f, sup = precision_recall_fscore_support(yt_c, yp_c, labels=range(len(task.columns)),
                                                           zero_division=0)
        else:
            p, r, f, sup = precision_recall_fscore_support(yt, yp, average=None, zero_division=0)
            out[f"{name}.micro_f1"] = f1_score(yt, yp, average="micro", zero_division=0)
            out[f"{name}.macro_f1"] = f1_score(yt, yp, average="macro", zero_division=0)
            out[f"{name}.exact_match"] = accuracy_score(yt, yp)
        for k, label in enumerate(task.columns):
            for metric, values in zip(PER_LABEL, (p, r, f, sup)):
                out[f"{name}.{label}.{metric}"] = float(values[k])
            if task.type == "multilabel":
                out[f"{name}.{label}.average_precision"] = (average_precision_score(yt[:, k], pp[:, k])
                                                            if yt[:, k].sum() else 0.0)
    return {k: float(v) for k, v in out.items()}


def aggregate(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Mean over seeds under each name; with several seeds, the standard deviation under `<name>_std`
    (one seed has none: a column of zeros would only crowd the MLflow runs table)."""
    out: dict[str, float] = {}
    for key in per_seed[0]:
        values = np.array([m[key] for m in per_seed])
        out[key] = float(values.mean())
        if len(per_seed) > 1 and not key.endswith(".support"):
            out[f"{key}_std"] = float(values.std())
    return out


def headline_names(space: LabelSpace) -> list[str]:
    """The one number per task that summaries show: F1 for binary tasks, macro F1 otherwise."""
    return [f"{t.name}.f1" if t.type == "binary" else f"{t.name}.macro_f1" for t in space.tasks()]
