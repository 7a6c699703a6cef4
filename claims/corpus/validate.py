"""Check annotations against the schema, the raw files and the article manifest, reporting every
problem at once; count each split's articles, units and positives against the label floors."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from claims.corpus import annotations
from claims.corpus.annotations import Record
from claims.util.errors import Problem
from claims.corpus.manifest import SPLITS, Floors, Manifest, check_files, load_manifest
from claims.util.paths import ANNOTATIONS_DIR, ROOT, SEALED_DIR, resolve
from claims.corpus.schema import Schema
from claims.corpus.segment import read_text, segment_file


@dataclass
class Report:
    records: list[Record]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def default_paths() -> list[Path]:
    """Every adjudicated annotation file: training data and the sealed test split."""
    return sorted(ANNOTATIONS_DIR.glob("*.jsonl")) + sorted((SEALED_DIR / "annotations").glob("*.jsonl"))


def validate(
    schema: Schema,
    annotation_paths: list[Path] | None = None,
    seeds_dir: Path | None = None,
    manifest: Manifest | None = None,
) -> Report:
    """Validate annotation files.

    With no paths, the whole corpus is checked against the manifest: every listed article exists
    and every unit of it is annotated, every raw file and annotated article is listed, and test
    articles are annotated only under labels/sealed/. With `seeds_dir`, every unit of every raw
    file there must be annotated.
    """
    problems: list[Problem] = []
    if annotation_paths is None:
        manifest = manifest or load_manifest()
        problems += check_files(manifest)
    paths = annotation_paths if annotation_paths is not None else default_paths()
    if not paths:
        return Report([], [Problem(ANNOTATIONS_DIR, None, None, "no annotation files found")])
    records, read_problems = annotations.read_all(paths)
    problems += read_problems
    seen: dict[str, Record] = {}
    raw_cache: dict[str, str | None] = {}
    for rec in records:
        problems.extend(annotations.check_labels(rec, schema))
        problems.extend(annotations.check_order(rec, schema))
        if rec.id in seen:
            first = seen[rec.id]
            problems.append(Problem(rec.path, rec.line, "id", f"duplicate id {rec.id!r} (first at {first.path}:{first.line})"))
        else:
            seen[rec.id] = rec
        problems.extend(check_text(rec, raw_cache))
    raw_files = sorted(Path(seeds_dir).glob("*.txt")) if seeds_dir is not None else []
    if manifest is not None:
        raw_files = [ROOT / a.path for a in manifest.articles
                     if a.split != "pending" and (ROOT / a.path).is_file()]
        problems += _check_placement(records, manifest)
    for raw in raw_files:
        for unit in segment_file(raw):
            if unit.id not in seen:
                problems.append(Problem(raw, None, unit.id, f"unit has no annotation: {unit.text[:60]!r}"))
    return Report(records, problems)


def _check_placement(records: list[Record], manifest: Manifest) -> list[Problem]:
    """Each annotated article is listed, and annotated where its split belongs."""
    sealed = (SEALED_DIR / "annotations").resolve()
    problems = []
    reported: set[tuple[str, str]] = set()
    for rec in records:
        split = manifest.split_of(rec.doc_id)
        in_sealed = rec.path is not None and Path(rec.path).resolve().is_relative_to(sealed)
        if split is None:
            message = f"article {rec.doc_id!r} has no entry in {manifest.path.name}"
        elif split == "test" and not in_sealed:
            message = f"test-split article {rec.doc_id!r} appears in training data (move it to {sealed.relative_to(ROOT)})"
        elif split == "pending":
            message = f"article {rec.doc_id!r} is annotated but still listed as pending (give it its split)"
        elif split != "test" and in_sealed:
            message = f"{split}-split article {rec.doc_id!r} is in the sealed folder"
        else:
            continue
        if (str(rec.path), rec.doc_id) not in reported:
            reported.add((str(rec.path), rec.doc_id))
            problems.append(Problem(rec.path, rec.line, "doc_id", message))
    return problems


@dataclass
class SplitStats:
    articles: int
    units: int
    countries: Counter
    styles: Counter
    positives: dict[tuple[str, str], int]
    hard_negatives: dict[str, int]
    no_claim: int  # units with every task negative


def split_stats(records: list[Record], manifest: Manifest, schema: Schema) -> dict[str, SplitStats]:
    """Per split: articles, units, countries, styles, positives per label and hard negatives."""
    cue = manifest.floors.cue
    out = {}
    for split in SPLITS:
        articles = [a for a in manifest.articles if a.split == split]
        ids = {a.id for a in articles}
        recs = [r for r in records if r.doc_id in ids]
        counts = label_counts(recs, schema)
        positives = {k: sum(c.values()) for k, c in counts.items() if k[0] != "units"}
        hard = {t.name: sum(1 for r in recs if r.labels.get(t.name) is False and cue and cue.search(r.text))
                for t in schema.tasks if t.type == "binary"}
        no_claim = sum(1 for r in recs if not any(r.labels.get(t.name) for t in schema.tasks))
        out[split] = SplitStats(len(articles), len(recs), Counter(a.country for a in articles),
                                Counter(a.style for a in articles), positives, hard, no_claim)
    return out


def missed_floors(stats: dict[str, SplitStats], floors: Floors, schema: Schema) -> list[str]:
    """One line per label floor that the floors' split does not reach."""
    s = stats.get(floors.split)
    if s is None:
        return []
    missed = []
    for task in schema.tasks:
        need = floors.per_task.get(task.name)
        if need and task.type == "multilabel":
            missed += [f"{floors.split}: {task.name}/{label} has {s.positives[(task.name, label)]} positives, floor {need}"
                       for label in task.label_names if s.positives[(task.name, label)] < need]
        need = floors.binary_yes.get(task.name)
        if need and s.positives.get((task.name, "yes"), 0) < need:
            missed.append(f"{floors.split}: {task.name}/yes has {s.positives.get((task.name, 'yes'), 0)} positives, floor {need}")
        need = floors.hard_negatives.get(task.name)
        if need and s.hard_negatives.get(task.name, 0) < need:
            missed.append(f"{floors.split}: {task.name} has {s.hard_negatives.get(task.name, 0)} hard negatives, floor {need}")
    return missed


def check_text(rec: Record, raw_cache: dict[str, str | None]) -> list[Problem]:
    """The unit's text is what its source file holds at its offsets."""
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
