"""The annotated corpus as a Hugging Face `datasets.Dataset` with features built from the schema."""

from __future__ import annotations

import hashlib
from pathlib import Path

import datasets
import numpy as np

from claims.corpus import annotations
from claims.corpus.manifest import MANIFEST_PATH, load_manifest
from claims.util.errors import InputError, Problem
from claims.util.paths import SEALED_DIR
from claims.corpus.schema import Schema, Task


def task_feature(task: Task) -> datasets.features.FeatureType:
    if task.type == "multilabel":
        return datasets.Sequence(datasets.ClassLabel(names=task.label_names))
    return datasets.ClassLabel(names=task.label_names)


def features_for(schema: Schema) -> datasets.Features:
    base = {
        "id": datasets.Value("string"),
        "doc_id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "start": datasets.Value("int32"),
        "end": datasets.Value("int32"),
    }
    return datasets.Features({**base, **{t.name: task_feature(t) for t in schema.tasks}})


def load_dataset(paths: list[Path], schema: Schema, allow_test: bool = False) -> datasets.Dataset:
    """Load annotation files; every record must be annotated for every task of `schema`.

    Units of the sealed test split are refused unless `allow_test`: only evaluation passes it.
    """
    if not allow_test:
        refuse_sealed(paths)
    records, problems = annotations.read_all(paths)
    if not allow_test:
        problems.extend(sealed_records(records))
    for rec in records:
        problems.extend(annotations.check_labels(rec, schema))
    if problems:
        raise InputError(problems)
    rows: dict[str, list] = {name: [] for name in features_for(schema)}
    for rec in records:
        for name in ("id", "doc_id", "text", "start", "end"):
            rows[name].append(getattr(rec, name))
        for task in schema.tasks:
            value = rec.labels[task.name]
            if task.type == "binary":
                value = "yes" if value else "no"
            rows[task.name].append(value)
    return datasets.Dataset.from_dict(rows, features=features_for(schema))


def refuse_sealed(paths: list[Path]) -> None:
    sealed = SEALED_DIR.resolve()
    inside = [p for p in paths if Path(p).resolve().is_relative_to(sealed)]
    if inside:
        raise InputError([Problem(p, None, None, "is in the sealed test split: only evaluation may read it")
                          for p in inside])


def sealed_records(records: list[annotations.Record]) -> list[Problem]:
    """Records of articles the manifest lists in the test split (wherever the file lives)."""
    if not MANIFEST_PATH.exists():
        return []
    test_ids = set(load_manifest().ids("test"))
    return [Problem(r.path, r.line, "doc_id", f"{r.doc_id!r} is a test-split article: only evaluation may read it")
            for r in records if r.doc_id in test_ids]


def label_matrix(ds: datasets.Dataset, schema: Schema) -> np.ndarray:
    """Indicator matrix (units x output columns), columns in the order of `LabelSpace`."""
    blocks = []
    for task in schema.tasks:
        values = ds[task.name][:]  # the whole column as a list: row-by-row access is slow
        if task.type == "multilabel":
            block = np.zeros((len(ds), len(task.label_names)), dtype=np.int8)
            for i, idx in enumerate(values):
                block[i, list(idx)] = 1
        elif task.type == "binary":
            block = np.asarray(values, dtype=np.int8).reshape(-1, 1)
        else:
            block = np.eye(len(task.label_names), dtype=np.int8)[np.asarray(values)]
        blocks.append(block)
    return np.concatenate(blocks, axis=1)


def files_digest(paths: list[Path]) -> str:
    """A short content hash of annotation files, independent of where the repository lives."""
    h = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        h.update(path.name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
