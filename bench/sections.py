"""Each bench owns one marked section of bench/RESULTS.md; writing it leaves the others as they are."""

from __future__ import annotations

from pathlib import Path

from claims.util import atomic


def write_section(path: Path, start: str, end: str, block: str) -> None:
    """Replace the text from `start` to `end` (markers included) with `block`, or append it."""
    block = block.rstrip("\n") + "\n"
    text = path.read_text() if path.exists() else "# Results\n"
    if start in text and end in text:
        tail = text[text.index(end) + len(end):]
        text = text[:text.index(start)] + block + tail.removeprefix("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    atomic.write_text(path, text)
