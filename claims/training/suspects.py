"""Training units whose labels a run's out-of-fold predictions confidently contradict: where to look
for annotation errors first.

Every training run logs `reports/oof_predictions.csv`: each unit's labels, the out-of-fold decisions
and probabilities of a model that never saw the unit's article. A column *contradicts* a unit when
the decision differs from the label; its *confidence* is the probability the model gives its own side
(p for a label the annotators left out, 1 - p for one they gave; below 0.5 where a tuned threshold
sits away from 0.5). A unit's score is its most confident contradiction. Most such units turn out to
be the model's errors, not the annotators' (in the re-check of 2026-12-04 two blind re-annotators
agreed with the corpus on 77-95% of the task answers of the 640 highest-scoring units), so the list
is for a blind re-annotation, never for relabelling by the model's word.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from claims.corpus.labelspace import LabelSpace
from claims.util import atomic
from claims.util.errors import InputError, Problem, fail

OUTPUT_COLUMNS = ["id", "doc_id", "score", "contradictions", "text"]


@dataclass(frozen=True)
class Suspect:
    id: str
    doc_id: str
    text: str
    score: float
    contradictions: list[tuple[str, str, float]]  # (column, "added" | "missed", confidence), most confident first


@dataclass(frozen=True)
class Unit:
    id: str
    doc_id: str
    text: str
    given: tuple[bool, ...]  # per label-space column
    decided: tuple[bool, ...]
    proba: tuple[float, ...]


def check_paths(oof: Path, output: Path) -> None:
    """Refuse before reading anything: a missing or folder input, an output that is a folder or the input."""
    if oof.is_dir():
        raise fail(oof, "is a folder: give the run's reports/oof_predictions.csv")
    if not oof.is_file():
        raise fail(oof, "file not found")
    if output.is_dir():
        raise fail(output, "is a folder: give a file name for the suspects CSV")
    if output.resolve() == oof.resolve():
        raise fail(output, "the output is the input: it would be overwritten")


def _cell_sets(space: LabelSpace, path: Path, line: int, row: dict[str, str]) -> tuple[dict, list[Problem]]:
    """Each task's labels in a row, as the set of label names ('yes' for a binary task that holds)."""
    problems, out = [], {}
    for task in space.tasks():
        for kind in ("true", "pred"):
            field = f"{task.name}.{kind}"
            value = row[field] or ""
            if task.type == "binary":
                if value not in ("True", "False"):
                    problems.append(Problem(path, line, field, f"expected True or False, got {value!r}"))
                out[field] = {"yes"} if value == "True" else set()
            else:
                names = set(filter(None, value.split(",")))
                unknown = sorted(names - set(task.label_names))
                if unknown:
                    problems.append(Problem(path, line, field, f"unknown label {unknown[0]!r}"))
                out[field] = names
    return out, problems


def read_oof(path: Path, space: LabelSpace) -> list[Unit]:
    """The units of an `oof_predictions.csv` (as `reports.oof_table` writes it), every cell checked
    against the label space; problems name the file's physical line."""
    columns = space.column_names
    needed = ["id", "doc_id", "text"] + [f"{t.name}.{k}" for t in space.tasks() for k in ("true", "pred")] \
        + [f"p.{c}" for c in columns]
    units, problems = [], []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in needed if c not in (reader.fieldnames or [])]
            if missing:
                raise fail(path, f"not an out-of-fold prediction table of this schema: no column {missing[0]!r}", 1)
            for row in reader:
                # the row's first physical line: csv skips blank lines, and a quoted field may span lines
                start = reader.line_num - sum(v.count("\n") for v in row.values() if isinstance(v, str))
                if None in row or any(row[c] is None for c in needed):
                    problems.append(Problem(path, start, None, f"expected {len(reader.fieldnames)} fields, got "
                                                               f"{len([v for v in row.values() if v is not None])}"))
                    continue
                sets, bad = _cell_sets(space, path, start, row)
                problems.extend(bad)
                proba = []
                for c in columns:
                    try:
                        p = float(row[f"p.{c}"])
                    except ValueError:
                        p = math.nan
                    if not 0.0 <= p <= 1.0:
                        problems.append(Problem(path, start, f"p.{c}", f"not a probability: {row[f'p.{c}']!r}"))
                    proba.append(p)
                given = tuple(label in sets[f"{task}.true"] for task, label in space.columns)
                decided = tuple(label in sets[f"{task}.pred"] for task, label in space.columns)
                units.append(Unit(row["id"], row["doc_id"], row["text"], given, decided, tuple(proba)))
    except UnicodeDecodeError as e:
        raise fail(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise fail(path, f"not a readable CSV table ({e})") from None
    if problems:
        raise InputError(problems)
    if not units:
        raise fail(path, "no units: the table has a header only")
    return units


def contradictions(unit: Unit, space: LabelSpace) -> list[tuple[str, str, float]]:
    out = []
    for column, given, decided, p in zip(space.column_names, unit.given, unit.decided, unit.proba):
        if given != decided:
            out.append((column, "missed" if given else "added", 1 - p if given else p))
    return sorted(out, key=lambda c: -c[2])


def rank(units: list[Unit], space: LabelSpace, limit: int, per_article: int,
         skip: frozenset[str] | set[str] = frozenset()) -> list[Suspect]:
    """The `limit` most confidently contradicted units, at most `per_article` from one article (so a
    re-annotation covers many writers and events), leaving out the ids in `skip`; ties keep the
    table's order."""
    scored = []
    for unit in units:
        if unit.id in skip:
            continue
        found = contradictions(unit, space)
        if found:
            scored.append(Suspect(unit.id, unit.doc_id, unit.text, found[0][2], found))
    scored.sort(key=lambda s: -s.score)  # stable: ties stay in table order
    taken, per_doc = [], {}
    for s in scored:
        if per_doc.get(s.doc_id, 0) < per_article:
            per_doc[s.doc_id] = per_doc.get(s.doc_id, 0) + 1
            taken.append(s)
            if len(taken) == limit:
                break
    return taken


def rechecked_ids(records) -> set[str]:
    """Units already re-decided or re-checked (their labels changed, or were looked at again and stood)."""
    return {r.id for r in records if "previous_labels" in r.meta or "rechecked" in r.meta}


def write(found: list[Suspect], output: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(OUTPUT_COLUMNS)
    for s in found:
        writer.writerow([s.id, s.doc_id, round(s.score, 4),
                         "; ".join(f"{c} {how} {p:.4f}" for c, how, p in s.contradictions), s.text])
    atomic.write_text(output, buffer.getvalue())
