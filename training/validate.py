"""Check annotations against the schema and the raw seed files, reporting every problem at once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from training import annotations
from training.annotations import Record
from training.errors import Problem
from training.paths import ANNOTATIONS_DIR, SEEDS_DIR, resolve
from training.schema import Schema
from training.segment import read_text, segment_file


@dataclass
class Report:
    records: list[Record]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(
    schema: Schema,
    annotation_paths: list[Path] | None = None,
    seeds_dir: Path | None = SEEDS_DIR,
) -> Report:
    """Validate annotation files; with `seeds_dir`, every unit of every seed must be annotated."""
    paths = annotation_paths if annotation_paths is not None else sorted(ANNOTATIONS_DIR.glob("*.jsonl"))
    if not paths:
        return Report([], [Problem(ANNOTATIONS_DIR, None, None, "no annotation files found")])
    records, problems = annotations.read_all(paths)
    seen: dict[str, Record] = {}
    raw_cache: dict[str, str | None] = {}
    for rec in records:
        problems.extend(annotations.check_labels(rec, schema))
        if rec.id in seen:
            first = seen[rec.id]
            problems.append(Problem(rec.path, rec.line, "id", f"duplicate id {rec.id!r} (first at {first.path}:{first.line})"))
        else:
            seen[rec.id] = rec
        problems.extend(_check_text(rec, raw_cache))
    if seeds_dir is not None:
        for seed in sorted(Path(seeds_dir).glob("*.txt")):
            for unit in segment_file(seed):
                if unit.id not in seen:
                    problems.append(Problem(seed, None, unit.id, f"unit has no annotation: {unit.text[:60]!r}"))
    return Report(records, problems)


def _check_text(rec: Record, raw_cache: dict[str, str | None]) -> list[Problem]:
    if rec.source is None:
        return []
    if rec.source not in raw_cache:
        try:
            raw_cache[rec.source] = read_text(resolve(rec.source))
        except FileNotFoundError:
            raw_cache[rec.source] = None
    raw = raw_cache[rec.source]
    if raw is None:
        return [Problem(rec.path, rec.line, "source", f"raw file {rec.source!r} not found")]
    actual = raw[rec.start:rec.end]
    if actual != rec.text:
        return [Problem(rec.path, rec.line, "text",
                        f"differs from {rec.source}[{rec.start}:{rec.end}] = {actual[:60]!r}")]
    return []


def label_counts(records: list[Record], schema: Schema) -> dict[tuple[str, str], Counter]:
    """(task, label) -> Counter of doc_id for every positive label, plus ('units', 'all')."""
    counts: dict[tuple[str, str], Counter] = {("units", "all"): Counter(r.doc_id for r in records)}
    for task in schema.tasks:
        for label in task.columns:
            counts[(task.name, label)] = Counter()
    for rec in records:
        for task in schema.tasks:
            value = rec.labels.get(task.name)
            if task.type == "binary":
                if value is True:
                    counts[(task.name, "yes")][rec.doc_id] += 1
            elif task.type == "multiclass":
                if value is not None:
                    counts[(task.name, value)][rec.doc_id] += 1
            else:
                for label in value or []:
                    counts[(task.name, label)][rec.doc_id] += 1
    return counts
