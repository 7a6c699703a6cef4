"""Prediction outputs written batch by batch to a temporary file, renamed into place when complete.

Format by extension: .jsonl (labels as lists), .csv (labels joined with '|'), .parquet.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from claims.util import atomic
from claims.util.errors import InputError, Problem

FORMATS = (".jsonl", ".csv", ".parquet")
INT_FIELDS = ("start", "end", "index")


class NewFields(Exception):
    """Row `index` of a batch has fields that a one-schema format (CSV, parquet) has no column for.
    The writer knows the row, not where it was read; the caller names its file and line."""

    def __init__(self, index: int, fields: list[str], unit_id: str):
        self.index, self.fields = index, fields
        super().__init__(f"unit {unit_id} has field(s) {fields} that the first unit had not; write .jsonl, "
                         "which keeps every field")


def _json_value(value: Any) -> Any:
    """Passed-through values JSON has no type for (a parquet date, timestamp, decimal or bytes)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


class _Jsonl:
    def __init__(self, path: Path):
        self.f = open(path, "w", encoding="utf-8")

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.f.writelines(json.dumps(r, ensure_ascii=False, default=_json_value) + "\n" for r in rows)

    def close(self) -> None:
        self.f.close()


class _Csv:
    def __init__(self, path: Path):
        self.f = open(path, "w", encoding="utf-8", newline="")
        self.writer: csv.DictWriter | None = None

    def write(self, rows: list[dict[str, Any]]) -> None:
        flat = [{k: "|".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()} for r in rows]
        if self.writer is None and flat:
            self.writer = csv.DictWriter(self.f, fieldnames=list(flat[0]))
            self.writer.writeheader()
        if self.writer:
            for i, row in enumerate(flat):
                extra = [k for k in row if k not in self.writer.fieldnames]
                if extra:  # a CSV has one header: a field the first row lacked has no column
                    raise NewFields(i, extra, row.get("id"))
                self.writer.writerow(row)

    def close(self) -> None:
        self.f.close()


class _Parquet:
    def __init__(self, path: Path, dest: Path | None = None):
        self.path, self.dest = path, dest or path
        self.writer = None

    def write(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not rows:
            return
        try:
            if self.writer is None:
                # The first batch fixes the schema. A column with no value in it yet gets a type all the
                # same: int64 for our offsets (null for units without a source file), else string.
                self.schema = pa.Table.from_pylist(rows).schema
                self.schema = pa.schema([f.with_type(pa.int64() if f.name in INT_FIELDS else pa.string())
                                         if pa.types.is_null(f.type) else f for f in self.schema])
                self.writer = pq.ParquetWriter(self.path, self.schema)
            for i, row in enumerate(rows):
                if extra := sorted(set(row) - set(self.schema.names)):
                    raise NewFields(i, extra, row.get("id"))
            self.writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise InputError(Problem(self.dest, None, None,
                                     f"a passed-through field changes type between rows ({e}); write .jsonl")) from None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        else:  # no rows: still a valid, empty file
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({}), self.path)


def check_output(path: Path) -> None:
    """Refuse, before any unit is predicted, an output path that cannot become a file."""
    if path.suffix.lower() not in FORMATS:
        raise InputError(Problem(path, None, None, f"unknown output type: use one of {', '.join(FORMATS)}"))
    if path.is_dir():
        raise InputError(Problem(path, None, None, "is a folder: give a file path for the output"))
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise InputError(Problem(path, None, None, f"{blocking} is a file, so no output can be written under it"))


@contextlib.contextmanager
def open_output(path: Path) -> Iterator[Any]:
    """A writer whose file appears at `path` only if the block completes."""
    check_output(path)
    with atomic.atomic_path(path) as tmp:
        suffix = path.suffix.lower()
        writer = _Parquet(tmp, path) if suffix == ".parquet" else {".jsonl": _Jsonl, ".csv": _Csv}[suffix](tmp)
        try:
            yield writer
        finally:
            writer.close()
