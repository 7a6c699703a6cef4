"""Annotation records: one JSON object per line in labels/annotations/*.jsonl.

A task's value is null or absent when the unit is not annotated for it, and an empty list (or
false) when the annotator's answer is negative, so partial annotation never reads as "no label".
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claims.util import atomic
from claims.util.errors import Problem
from claims.util.paths import ROOT, resolve
from claims.corpus.schema import Schema, Task

REQUIRED_FIELDS = {"id": str, "doc_id": str, "text": str, "start": int, "end": int, "labels": dict}


@dataclass
class Record:
    id: str
    doc_id: str
    text: str
    start: int
    end: int
    labels: dict[str, Any]
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # where it was read from, for error messages
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "doc_id": self.doc_id, "source": self.source, "start": self.start,
               "end": self.end, "text": self.text, "labels": self.labels, "meta": self.meta}
        return {k: v for k, v in out.items() if v is not None}


def expand(patterns: Iterable[str | Path]) -> list[Path]:
    """Annotation files named by paths or glob patterns, relative to the repository root."""
    paths: list[Path] = []
    for pattern in patterns:
        p = resolve(pattern)
        matches = sorted(Path(m) for m in glob.glob(str(p))) if glob.has_magic(str(p)) else [p]
        paths.extend(matches)
    return paths


def read_file(path: Path, require_labels: bool = True) -> tuple[list[Record], list[Problem]]:
    """Parse one JSONL file, collecting every structural problem instead of stopping at the first.

    With `require_labels=False` a unit without `labels` (the output of `claims segment`) reads as
    not annotated for any task."""
    records: list[Record] = []
    problems: list[Problem] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return [], [Problem(path, None, None, "annotation file not found")]
    except UnicodeDecodeError as e:
        return [], [Problem(path, None, None, f"not valid UTF-8: {e}")]
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(Problem(path, lineno, None, f"malformed JSON: {e.msg} at column {e.colno}"))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(path, lineno, None, "a line must be a JSON object"))
            continue
        bad = False
        if not require_labels and obj.get("labels") is None:
            obj["labels"] = {}
        for name, typ in REQUIRED_FIELDS.items():
            value = obj.get(name)
            if value is None:
                problems.append(Problem(path, lineno, name, "required field is missing"))
                bad = True
            elif not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
                problems.append(Problem(path, lineno, name, f"expected {typ.__name__}, got {type(value).__name__}"))
                bad = True
        if bad:
            continue
        records.append(Record(id=obj["id"], doc_id=obj["doc_id"], text=obj["text"], start=obj["start"],
                              end=obj["end"], labels=obj["labels"], source=obj.get("source"),
                              meta=obj.get("meta") or {}, path=path, line=lineno))
    return records, problems


def read_all(paths: Iterable[Path], require_labels: bool = True) -> tuple[list[Record], list[Problem]]:
    records: list[Record] = []
    problems: list[Problem] = []
    for path in paths:
        recs, probs = read_file(path, require_labels)
        records.extend(recs)
        problems.extend(probs)
    return records, problems


def check_labels(record: Record, schema: Schema, require_all: bool = True) -> list[Problem]:
    """Problems with a record's labels: unknown task or label, wrong type, task not annotated."""
    problems = []
    where = dict(path=record.path, line=record.line)
    for task_name in record.labels:
        if task_name not in schema.by_name:
            problems.append(Problem(**where, field=f"labels.{task_name}",
                                    message=f"unknown task; the schema has {schema.task_names}"))
    for task in schema.tasks:
        value = record.labels.get(task.name)
        fld = f"labels.{task.name}"
        if value is None:
            if require_all:
                problems.append(Problem(**where, field=fld, message="task not annotated (missing or null)"))
            continue
        message = _check_value(task, value)
        if message:
            problems.append(Problem(**where, field=fld, message=message))
    return problems


def _check_value(task: Task, value: Any) -> str | None:
    if task.type == "binary":
        return None if isinstance(value, bool) else f"binary task expects true or false, got {value!r}"
    if task.type == "multiclass":
        if value not in task.label_names:
            return f"unknown label {value!r}; expected one of {task.label_names}"
        return None
    if not isinstance(value, list):
        return f"multilabel task expects a list of labels, got {value!r}"
    unknown = [v for v in value if v not in task.label_names]
    if unknown:
        return f"unknown label(s) {unknown}; expected some of {task.label_names}"
    if len(set(value)) != len(value):
        return f"duplicate labels in {value}"
    return None


def normalise_labels(labels: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """Order multilabel values as the schema lists them, so files diff cleanly."""
    out = dict(labels)
    for task in schema.tasks:
        value = out.get(task.name)
        if task.type == "multilabel" and isinstance(value, list):
            out[task.name] = [name for name in task.label_names if name in value]
    return out


def check_order(record: Record, schema: Schema) -> list[Problem]:
    """Multilabel values out of the schema's order (`normalise_labels`). The corpus keeps that order
    so its files diff cleanly and an export-import round trip gives every file back byte for byte."""
    ordered = normalise_labels(record.labels, schema)
    return [Problem(record.path, record.line, f"labels.{task.name}",
                    f"labels {value} are not in the schema's order; write {ordered[task.name]}")
            for task in schema.tasks
            if isinstance(value := record.labels.get(task.name), list)
            and ordered[task.name] != value and sorted(ordered[task.name]) == sorted(value)]  # unknown labels: check_labels says so


def write_file(path: Path, records: Iterable[Record]) -> None:
    lines = [json.dumps(r.to_json(), ensure_ascii=False) for r in records]
    atomic.write_text(path, "\n".join(lines) + "\n")


def relative_source(path: Path) -> str:
    """A raw file's path as stored in records: relative to the repository root when inside it."""
    path = path.resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)
