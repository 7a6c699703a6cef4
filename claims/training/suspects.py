"""Training units whose labels a run's out-of-fold predictions confidently contradict: where to look
for annotation errors first.

Every training run logs `reports/oof_predictions.csv`: each unit's labels, the out-of-fold decisions
and probabilities of a model that never saw the unit's article. A column *contradicts* a unit when
the decision differs from the label; its *confidence* is the probability of the model's side (p for
a label the annotators left out, 1 - p for one they gave). A unit's score is its most confident
contradiction. Most such units turn out to be the model's errors, not the annotators' (in the audit
of 2026-12-04, two blind re-annotators agreed with the corpus on 74-95% of the task answers of the
320 highest-scoring units), so the list is for a blind re-annotation, never for relabelling by the
model's word.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from claims.corpus.labelspace import LabelSpace
from claims.util.errors import Problem, InputError, fail


@dataclass(frozen=True)
class Suspect:
    id: str
    doc_id: str
    text: str
    score: float
    contradictions: list[tuple[str, str, float]]  # (column, "added" | "missed", probability)


def read_oof(path: Path, space: LabelSpace) -> list[dict[str, str]]:
    """The rows of an `oof_predictions.csv`, checked against the label space."""
    if not path.is_file():
        raise fail(path, "file not found")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        needed = ["id", "doc_id", "text"] + [f"{t.name}.{k}" for t in space.tasks() for k in ("true", "pred")] \
            + [f"p.{c}" for c in space.column_names]
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            raise fail(path, f"not an out-of-fold prediction table of this schema: no column {missing[0]!r}", 1)
        rows = list(reader)
    problems = []
    for n, row in enumerate(rows, start=2):
        for c in space.column_names:
            try:
                p = float(row[f"p.{c}"])
            except (TypeError, ValueError):
                p = float("nan")
            if not 0.0 <= p <= 1.0:
                problems.append(Problem(path, n, f"p.{c}", f"not a probability: {row[f'p.{c}']!r}"))
    if problems:
        raise InputError(problems[:20])
    return rows


def _has(space: LabelSpace, task: str, label: str, value: str) -> bool:
    if next(t for t in space.tasks() if t.name == task).type == "binary":
        return value == "True"
    return label in value.split(",")


def contradictions(row: dict[str, str], space: LabelSpace) -> list[tuple[str, str, float]]:
    out = []
    for (task, label), column in zip(space.columns, space.column_names):
        given = _has(space, task, label, row[f"{task}.true"])
        decided = _has(space, task, label, row[f"{task}.pred"])
        if given != decided:
            p = float(row[f"p.{column}"])
            out.append((column, "missed" if given else "added", round(1 - p if given else p, 4)))
    return sorted(out, key=lambda c: -c[2])


def rank(rows: list[dict[str, str]], space: LabelSpace, limit: int, per_article: int,
         skip: set[str] = frozenset()) -> list[Suspect]:
    """The `limit` most confidently contradicted units, at most `per_article` from one article (so a
    re-annotation covers many writers and events), skipping the ids in `skip`."""
    scored = []
    for row in rows:
        if row["id"] in skip:
            continue
        found = contradictions(row, space)
        if found:
            scored.append(Suspect(row["id"], row["doc_id"], row["text"], found[0][2], found))
    scored.sort(key=lambda s: (-s.score, s.id))
    taken, per_doc = [], {}
    for s in scored:
        if per_doc.get(s.doc_id, 0) < per_article:
            per_doc[s.doc_id] = per_doc.get(s.doc_id, 0) + 1
            taken.append(s)
            if len(taken) == limit:
                break
    return taken
