"""Split raw article text into units: one per sentence, page furniture lines kept as their own units.

Each non-blank line of the raw file is a block (a paragraph, a headline, a menu entry, a copyright
line). pysbd splits each block into sentences, so a line of page furniture never merges into the
prose around it. Offsets index the decoded text, so `raw[start:end] == text` holds for every unit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import pysbd

from claims.util.errors import InputError, Problem


@dataclass(frozen=True)
class Unit:
    id: str
    doc_id: str
    index: int
    text: str
    start: int
    end: int

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


def doc_id_for(path: Path | str) -> str:
    return Path(path).stem


def read_text(path: Path | str, errors: str = "strict") -> str:
    """Read a UTF-8 file; invalid bytes raise an error naming the file and line."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(Problem(path, line, None, f"invalid UTF-8 at byte {e.start}")) from None


@lru_cache(maxsize=1 << 16)
def _sentences(block: str) -> tuple[str, ...]:
    """pysbd's sentences of one block. Kept per process: pysbd builds a regular expression per
    abbreviation it meets, which overflows the `re` module's cache and compiles them anew for every
    block (15 s of `claims validate`'s 20 s on the 1,050-article corpus); a process that validates
    or segments the same articles twice (the test suite does, many times) pays once."""
    return tuple(_segmenter().segment(block))


def segment_text(raw: str, doc_id: str) -> list[Unit]:
    units: list[Unit] = []
    offset = 0
    for line in raw.splitlines(keepends=True):
        block_start = offset
        offset += len(line)
        if not line.strip():
            continue
        cursor = 0
        for sentence in _sentences(line):
            piece = sentence.strip()
            if not piece:
                continue
            # pysbd returns the block's own characters; locating each stripped piece from a moving
            # cursor turns that into exact offsets without trusting its char_span mode.
            found = line.find(piece, cursor)
            if found < 0:
                raise RuntimeError(f"segmenter returned text not in the block: {piece!r}")
            start = block_start + found
            units.append(Unit(f"{doc_id}:{len(units)}", doc_id, len(units), piece, start, start + len(piece)))
            cursor = found + len(piece)
    return units


def segment_file(path: Path | str, errors: str = "strict") -> list[Unit]:
    return segment_text(read_text(path, errors=errors), doc_id_for(path))
