"""Prediction outputs written batch by batch to a temporary file, renamed into place when complete.

Format by extension: .jsonl (labels as lists), .csv (labels joined with '|'), .parquet.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from claims.util import atomic
from claims.util.errors import InputError, Problem

FORMATS = (".jsonl", ".csv", ".parquet")


class _Jsonl:
    def __init__(self, path: Path):
        self.f = open(path, "w", encoding="utf-8")

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)

    def close(self) -> None:
        self.f.close()


class _Csv:
    def __init__(self, path: Path):
        self.f = open(path, "w", encoding="utf-8", newline="")
        self.writer: csv.DictWriter | None = None

    def write(self, rows: list[dict[str, Any]]) -> None:
        flat = [{k: "|".join(v) if isinstance(v, list) else v for k, v in r.items()} for r in rows]
        if self.writer is None and flat:
            self.writer = csv.DictWriter(self.f, fieldnames=list(flat[0]))
            self.writer.writeheader()
        if self.writer:
            self.writer.writerows(flat)

    def close(self) -> None:
        self.f.close()


class _Parquet:
    def __init__(self, path: Path):
        self.path = path
        self.writer = None

    def write(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not rows:
            return
        if self.writer is None:
            # The first batch fixes the schema; optional offsets may be null in it.
            self.schema = pa.Table.from_pylist(rows).schema
            self.schema = pa.schema([f.with_type(pa.int64()) if pa.types.is_null(f.type) else f for f in self.schema])
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        else:  # no rows: still a valid, empty file
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({}), self.path)


def check_output(path: Path) -> None:
    if path.suffix.lower() not in FORMATS:
        raise InputError(Problem(path, None, None, f"unknown output type: use one of {', '.join(FORMATS)}"))


@contextlib.contextmanager
def open_output(path: Path) -> Iterator[Any]:
    """A writer whose file appears at `path` only if the block completes."""
    check_output(path)
    with atomic.atomic_path(path) as tmp:
        writer = {".jsonl": _Jsonl, ".csv": _Csv, ".parquet": _Parquet}[path.suffix.lower()](tmp)
        try:
            yield writer
        finally:
            writer.close()
