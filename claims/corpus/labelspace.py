"""The flat output space of a model: one column per (task, label), binary tasks as one 'yes' column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from claims.corpus.schema import Schema, Task


@dataclass(frozen=True)
class LabelSpace:
    schema: Schema

    @property
    def columns(self) -> list[tuple[str, str]]:
        return [(t.name, c) for t in self.schema.tasks for c in t.columns]

    @property
    def column_names(self) -> list[str]:
        return [f"{task}.{label}" for task, label in self.columns]

    def __len__(self) -> int:
        return len(self.columns)

    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for task in self.schema.tasks:
            out[task.name] = slice(start, start + len(task.columns))
            start += len(task.columns)
        return out

    def tasks(self) -> list[Task]:
        return list(self.schema.tasks)

    def decide(self, proba: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        """0/1 decisions: per-column thresholds, argmax for multiclass tasks."""
        pred = (proba >= thresholds[None, :]).astype(np.int8)
        for task in self.schema.tasks:
            if task.type == "multiclass":
                s = self.slices()[task.name]
                block = np.zeros_like(pred[:, s])
                block[np.arange(len(proba)), proba[:, s].argmax(1)] = 1
                pred[:, s] = block
        return pred

    def decode(self, row: np.ndarray) -> dict[str, Any]:
        """One row of decisions as annotation-style labels."""
        out: dict[str, Any] = {}
        for task in self.schema.tasks:
            block = row[self.slices()[task.name]]
            if task.type == "binary":
                out[task.name] = bool(block[0])
            elif task.type == "multiclass":
                out[task.name] = task.label_names[int(np.argmax(block))]
            else:
                out[task.name] = [name for name, on in zip(task.label_names, block) if on]
        return out
