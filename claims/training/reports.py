"""Artifacts that make a run readable in the MLflow UI: per-label tables, plots, out-of-fold predictions."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, multilabel_confusion_matrix  # noqa: E402

from claims.corpus.labelspace import LabelSpace  # noqa: E402


def per_label_table(cv: dict[str, float], space: LabelSpace) -> pd.DataFrame:
    rows = []
    for task in space.tasks():
        for label in task.columns:
            key = f"{task.name}.{label}" if task.type != "binary" else task.name
            rows.append({
                "task": task.name, "label": label,
                "precision": cv[f"{key}.precision"], "recall": cv[f"{key}.recall"],
                "f1": cv[f"{key}.f1"], "f1_std": cv.get(f"{key}.f1_std", 0.0),
                "support": int(cv[f"{key}.support"]),
            })
    return pd.DataFrame(rows)


def write_per_label(table: pd.DataFrame, folder: Path) -> list[Path]:
    csv, md = folder / "per_label_report.csv", folder / "per_label_report.md"
    table.to_csv(csv, index=False)
    md.write_text(table.to_markdown(index=False, floatfmt=".3f") + "\n")
    return [csv, md]


def f1_bar_chart(table: pd.DataFrame, title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(table) + 1.2))
    labels = [f"{t}.{lab}" for t, lab in zip(table["task"], table["label"])]
    ax.barh(labels, table["f1"], xerr=table["f1_std"], color="#4c72b0")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("F1 (grouped CV, mean over seeds)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def confusion_grid(y: np.ndarray, pred: np.ndarray, space: LabelSpace, path: Path) -> Path:
    mats = multilabel_confusion_matrix(y, pred)
    cols = 4
    rows = int(np.ceil(len(mats) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows))
    for ax, mat, name in zip(axes.flat, mats, space.column_names):
        ConfusionMatrixDisplay(mat, display_labels=["no", "yes"]).plot(ax=ax, colorbar=False)
        ax.set_title(name, fontsize=9)
    for ax in list(axes.flat)[len(mats):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def oof_table(ids: list[str], docs: list[str], texts: list[str], y: np.ndarray, pred: np.ndarray,
              proba: np.ndarray, space: LabelSpace) -> pd.DataFrame:
    df = pd.DataFrame({"id": ids, "doc_id": docs, "text": texts})
    for task in space.tasks():
        df[f"{task.name}.true"] = [_fmt(space.decode(row)[task.name]) for row in y]
        df[f"{task.name}.pred"] = [_fmt(space.decode(row)[task.name]) for row in pred]
    for j, name in enumerate(space.column_names):
        df[f"p.{name}"] = np.round(proba[:, j], 4)
    return df


def _fmt(value) -> str:
    return ",".join(value) if isinstance(value, list) else str(value)
