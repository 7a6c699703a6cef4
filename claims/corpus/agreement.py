"""Agreement between two independent annotations of the same units: per-label F1 and Cohen's kappa.

F1 takes the first set as reference; for one label it is symmetric (swapping the sets swaps
precision and recall), so it reads as agreement on the positives. Kappa corrects raw agreement for
what two annotators with these base rates would reach by chance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import cohen_kappa_score, f1_score

from claims.corpus.annotations import Record
from claims.corpus.schema import Schema
from claims.util.errors import InputError, Problem


@dataclass(frozen=True)
class LabelAgreement:
    task: str
    label: str
    f1: float
    kappa: float | None  # None when both sets never (or always) use the label
    positives_a: int
    positives_b: int


@dataclass(frozen=True)
class Agreement:
    units: int
    labels: list[LabelAgreement]

    def task_f1(self, task: str) -> float:
        """Macro F1 over a multi-label task's labels; the positive class's F1 for a binary task."""
        rows = [r for r in self.labels if r.task == task]
        return float(np.mean([r.f1 for r in rows]))

    def task_kappa(self, task: str) -> float | None:
        values = [r.kappa for r in self.labels if r.task == task and r.kappa is not None]
        return float(np.mean(values)) if values else None


def align(a: list[Record], b: list[Record]) -> list[tuple[Record, Record]]:
    """Pairs of records for the same unit; any unit in one set only, or with other text, is an error."""
    by_id_b = {r.id: r for r in b}
    ids_a = {r.id for r in a}
    problems = []
    pairs = []
    for rec in a:
        other = by_id_b.get(rec.id)
        if other is None:
            problems.append(Problem(rec.path, rec.line, "id", f"unit {rec.id!r} is not in the second set"))
        elif other.text != rec.text:
            problems.append(Problem(other.path, other.line, "text", f"unit {rec.id!r} has other text than in {rec.path}:{rec.line}"))
        else:
            pairs.append((rec, other))
    problems += [Problem(r.path, r.line, "id", f"unit {r.id!r} is not in the first set") for r in b if r.id not in ids_a]
    if problems:
        raise InputError(problems)
    return pairs


def agreement(pairs: list[tuple[Record, Record]], schema: Schema) -> Agreement:
    """Per-label agreement over units that both sets annotated for the task (null = not annotated)."""
    rows = []
    for task in schema.tasks:
        both = [(x.labels.get(task.name), y.labels.get(task.name)) for x, y in pairs]
        both = [(u, v) for u, v in both if u is not None and v is not None]
        labels = ["yes"] if task.type == "binary" else task.label_names
        for label in labels:
            ya = np.array([_has(u, label) for u, _ in both], dtype=int)
            yb = np.array([_has(v, label) for _, v in both], dtype=int)
            f1 = float(f1_score(ya, yb, zero_division=1.0)) if len(ya) else float("nan")
            constant = len(set(ya) | set(yb)) < 2
            kappa = None if constant or not len(ya) else float(cohen_kappa_score(ya, yb))
            rows.append(LabelAgreement(task.name, label, f1, kappa, int(ya.sum()), int(yb.sum())))
    return Agreement(len(pairs), rows)


def _has(value, label: str) -> bool:
    if isinstance(value, bool):
        return value is (label == "yes")
    if isinstance(value, list):
        return label in value
    return value == label
