"""Batch prediction: read a batch of units, predict, write, so memory stays flat for any input size."""

from __future__ import annotations

import itertools
import json
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claims.util import atomic
from claims.util.errors import InputError, Problem
from claims.predictor import inputs
from claims.predictor import outputs
from claims.predictor.predictor import Predictor

REPORTER = "reporter"  # attribution key for units in the reporter's own voice
CLAIM_TASK, SOURCE_TASK = "claim_type", "attribution"  # the summary crosses these two tasks


@dataclass
class PredictStats:
    units: int = 0
    empty: int = 0
    truncated: int = 0
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)


def batched(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(itertools.islice(it, n)):
        yield batch


def check_paths(paths: list[str], output: Path) -> None:
    """Before any work: every input is a readable file, the output is writable and is not an input."""
    outputs.check_output(output)
    for p in paths:
        if p != "-" and Path(p).is_dir():
            raise InputError(Problem(p, None, None, "is a folder: give the files in it (e.g. folder/*.txt)"))
        if p != "-" and not Path(p).exists():
            raise InputError(Problem(p, None, None, "input file not found"))
        if p != "-" and Path(p).resolve() == Path(output).resolve():
            raise InputError(Problem(output, None, None, "the output is one of the inputs: it would be overwritten"))


def predict_to_file(
    predictor: Predictor,
    paths: list[str],
    output: Path,
    *,
    lines: bool = False,
    errors: str = "strict",
    batch_size: int = 256,
    summary: bool = False,
    progress=None,
) -> PredictStats:
    """Predict every unit of `paths` into `output`; on any error `output` is left as it was."""
    stats = PredictStats()
    per_doc: dict[str, dict[str, Any]] = {}
    check_paths(paths, output)
    with outputs.open_output(output) as writer, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # truncation is counted and reported once at the end
        for batch in batched(inputs.read_all(paths, lines, errors), batch_size):
            contexts = [u.pop(inputs.CONTEXT, None) for u in batch]  # the predictor reads None as ""
            openings = [u.pop(inputs.OPENING, None) for u in batch]
            wheres = [u.pop(inputs.WHERE, None) for u in batch]
            pred = predictor.predict([u["text"] for u in batch], contexts, openings)
            labelled = predictor.labelled_rows(pred)
            rows = [{**unit, **labels} for unit, labels in zip(batch, labelled)]
            try:
                writer.write(rows)
            except outputs.NewFields as e:
                path, line = wheres[e.index] or (rows[e.index].get("source") or rows[e.index]["doc_id"], None)
                raise InputError(Problem(path, line, e.fields[0], str(e))) from None
            stats.units += len(rows)
            stats.empty += sum(not str(u["text"]).strip() for u in batch)
            stats.truncated += pred.truncated
            if summary:
                _update_summary(per_doc, rows, predictor)
            if progress:
                progress(len(rows))
    if summary:
        for doc in per_doc.values():
            doc["claims_by_source"] = {s: dict(c) for s, c in doc["claims_by_source"].items()}
        stats.summary = per_doc
        atomic.write_text(summary_path(output), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in per_doc.values()))
    return stats


def summary_path(output: Path) -> Path:
    """OUT.csv -> OUT.csv.summary.jsonl: predictions to OUT.csv and OUT.jsonl keep separate summaries."""
    return output.with_name(output.name + ".summary.jsonl")


def _update_summary(per_doc: dict, rows: list[dict], predictor: Predictor) -> None:
    """Per article: any withdrawal, and claim types counted by who makes them."""
    tasks = {t.name: t for t in predictor.space.tasks()}
    claim = tasks.get(CLAIM_TASK)
    for row in rows:
        doc = per_doc.setdefault(row["doc_id"], {"doc_id": row["doc_id"], "units": 0,
                                                 "claims_by_source": defaultdict(lambda: defaultdict(int))})
        doc["units"] += 1
        for name, task in tasks.items():
            if task.type == "binary":
                doc[f"any_{name}"] = doc.get(f"any_{name}", False) or bool(row[name])
        if claim is not None and SOURCE_TASK in tasks:
            for source in row[SOURCE_TASK] or [REPORTER]:
                for label in row[claim.name]:
                    doc["claims_by_source"][source][label] += 1
