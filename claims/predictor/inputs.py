"""Units to predict, read lazily from .txt articles, .jsonl, .csv, .parquet or stdin.

A .txt file is segmented exactly as in training (page furniture included); with `lines=True` each
line is one unit. Bytes are decoded line by line so an invalid byte is reported with its line.
Table-like inputs (.jsonl, .csv, .parquet) keep their other fields: they are passed through to the
output, as `mlflow models predict` users expect, except where a prediction column has the same name.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from claims.util.errors import InputError, Problem
from claims.corpus.opening import opening_of
from claims.corpus.segment import segment_text

Unit = dict[Any, Any]  # field names (str), and WHERE while a unit is in flight
# The csv module refuses fields over 128 KiB by default; a long article pasted in one cell is legal.
MAX_CSV_FIELD = 16 * 1024 * 1024


# A str holding a lone UTF-16 surrogate has no UTF-8 form: JSON may escape one ("\ud800" is valid
# JSON, and json.loads joins real pairs into one code point, so any surrogate left is lone), but the
# tokenizers, pandas' Arrow strings and the UTF-8 output files all refuse it with a traceback.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_lone_surrogates(value: Any) -> Any:
    """`value` with each lone surrogate in it (a str, or the strings and keys of decoded JSON) made U+FFFD.

    Not `str.encode("utf-8", "replace")`: that writes "?" and cannot be told from a real one."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [replace_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {replace_lone_surrogates(k): replace_lone_surrogates(v) for k, v in value.items()}
    return value


# Keys of a unit's context (the unit before it in its article) and of its article's opening
# (claims.corpus.opening). Article inputs set both; JSONL, CSV and parquet inputs may give them as
# `context` and `opening` fields or columns; loose lines have neither. They are never written out.
CONTEXT = "context"
OPENING = "opening"
# Where a table unit was read (file and line; parquet: file and row), popped before writing like the
# side texts, so that an error met while writing it can still name its place in the input. Not a
# string: a JSON, CSV or parquet field name is one, so no input column can collide with it.
WHERE = ("where",)

def _decoded_lines(raw_lines, source: str, errors: str) -> Iterator[tuple[int, str]]:
    for lineno, raw in enumerate(raw_lines, start=1):
        try:
            yield lineno, raw.decode("utf-8", errors=errors)
        except UnicodeDecodeError as e:
            if lineno == 1 and raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
                why = "UTF-16 text (it starts with a UTF-16 byte-order mark): save it as UTF-8"
            else:
                why = f"invalid UTF-8 at byte {e.start} of the line (use --errors replace)"
            raise InputError(Problem(source, lineno, None, why)) from None


def _open_binary(path: str):
    return sys.stdin.buffer if path == "-" else open(path, "rb")


def read_units(path: str, lines: bool = False, errors: str = "strict") -> Iterator[Unit]:
    """Yield units from one input; `path` may be '-' for stdin (text)."""
    suffix = "" if path == "-" else Path(path).suffix.lower()
    if path != "-" and not Path(path).exists():
        raise InputError(Problem(path, None, None, "input file not found"))
    if path != "-" and Path(path).is_dir():
        raise InputError(Problem(path, None, None, "is a folder: give the files in it (e.g. folder/*.txt)"))
    if suffix == ".jsonl":
        yield from _jsonl(path, errors)
    elif suffix == ".csv":
        yield from _csv(path, errors)
    elif suffix == ".parquet":
        yield from _parquet(path)
    elif suffix in (".txt", "") or path == "-":
        yield from _text(path, lines, errors)
    else:
        raise InputError(Problem(path, None, None, f"unknown input type {suffix!r}: use .txt, .jsonl, .csv, .parquet or -"))


def _text(path: str, lines: bool, errors: str) -> Iterator[Unit]:
    doc_id = "stdin" if path == "-" else Path(path).stem
    source = "<stdin>" if path == "-" else path
    with _open_binary(path) as f:
        decoded = list(_decoded_lines(f.read().splitlines(keepends=True), source, errors))
    if not lines:
        # An article: each unit gets the one before it as context and the article's opening, as in training.
        units = segment_text("".join(text for _, text in decoded), doc_id)
        opening = opening_of([u.text for u in units])
        previous = ""
        for u in units:
            yield {**u.to_dict(), "source": source, CONTEXT: previous, OPENING: opening}
            previous = u.text
        return
    offset = 0
    for index, (_, text) in enumerate(decoded):
        body = text.rstrip("\r\n")
        yield {"id": f"{doc_id}:{index}", "doc_id": doc_id, "index": index, "text": body,
               "start": offset, "end": offset + len(body), "source": source}
        offset += len(text)


def _jsonl(path: str, errors: str) -> Iterator[Unit]:
    doc_id = Path(path).stem
    with _open_binary(path) as f:
        index = 0
        for lineno, line in _decoded_lines(f, path, errors):
            if not line.strip():
                continue
            try:
                obj = replace_lone_surrogates(json.loads(line))  # JSON is the one input that can carry them
            except json.JSONDecodeError as e:
                raise InputError(Problem(path, lineno, None,
                                         f"malformed JSON: {e.msg.removesuffix(' at')} at column {e.colno}")) from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), (str, type(None))) or "text" not in obj:
                fields = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
                raise InputError(Problem(path, lineno, "text", f"no 'text' string field; the line has {fields}"))
            yield {**_table_unit(obj, doc_id, index), WHERE: (path, lineno)}
            index += 1


def _csv(path: str, errors: str) -> Iterator[Unit]:
    doc_id = Path(path).stem
    with _open_binary(path) as f:
        text_lines = (line.removeprefix("\ufeff") if lineno == 1 else line  # Excel's "CSV UTF-8" writes a BOM
                      for lineno, line in _decoded_lines(f, path, errors))
        # A plain reader, so each record's first line is known (DictReader's line_num lags after blank
        # lines); strict: a quote left open is an error, not the rest of the file read into one cell.
        reader = csv.reader(text_lines, strict=True)
        csv.field_size_limit(MAX_CSV_FIELD)
        start = 1
        try:
            header = next(reader, None)
            if header is None or "text" not in header:
                raise InputError(Problem(path, 1, "text", f"no 'text' column; the file has columns {header or []}"))
            if twice := sorted({n for n in header if n and header.count(n) > 1}):
                raise InputError(Problem(path, 1, twice[0], f"column(s) {twice} appear more than once in the header"))
            index = 0
            while True:
                start = reader.line_num + 1
                cells = next(reader, None)
                if cells is None:
                    break
                if not cells:  # a blank line
                    continue
                if len(cells) > len(header):
                    raise InputError(Problem(path, start, None,
                                             f"{len(cells) - len(header)} cell(s) more than the header's {len(header)}"))
                unit = _table_unit(dict(zip(header, cells + [None] * (len(header) - len(cells)))), doc_id, index)
                yield {**unit, WHERE: (path, start)}
                index += 1
        except csv.Error as e:
            raise InputError(Problem(path, start, None, f"malformed CSV: {e}")) from None


PARQUET_BATCH_ROWS = 4096


def _parquet(path: str) -> Iterator[Unit]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    doc_id = Path(path).stem
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise InputError(Problem(path, None, None, f"not a readable parquet file: {e}")) from None
    names = pf.schema_arrow.names
    if "text" not in names:
        raise InputError(Problem(path, None, "text", f"no 'text' column; the file has columns {names}"))
    field = pf.schema_arrow.field("text")
    if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type) or pa.types.is_null(field.type)):
        raise InputError(Problem(path, None, "text", f"the 'text' column holds {field.type}, not strings"))
    index = 0
    for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        for row in batch.to_pylist():
            yield {**_table_unit(row, doc_id, index), WHERE: (f"{path} (row {index + 1})", None)}
            index += 1


def _table_unit(row: dict[str, Any], doc_id: str, index: int) -> Unit:
    """A unit from a JSONL object, CSV row or parquet row: its other fields ride along."""
    unit: Unit = {k: v for k, v in row.items() if k not in ("text", CONTEXT, OPENING)}
    given = lambda key: row.get(key) not in (None, "")  # noqa: E731 - an empty CSV cell is no value
    unit.update({"id": str(row["id"]) if given("id") else f"{doc_id}:{index}",
                 "doc_id": str(row["doc_id"]) if given("doc_id") else doc_id, "index": index, "text": row["text"] or ""})
    for side in (CONTEXT, OPENING):
        if isinstance(row.get(side), str):
            unit[side] = row[side]
    return unit


def read_all(paths: list[str], lines: bool = False, errors: str = "strict") -> Iterator[Unit]:
    for path in paths:
        yield from read_units(path, lines, errors)
