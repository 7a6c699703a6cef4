"""A unit's article opening: its first units (headline, byline, dateline, lead), read as one text.

Who speaks in a sentence can depend on the whole document (R1, R14 in labels/GUIDELINES.md): every
content sentence of an army communiqué is `government_military`, of a think-tank report
`external_observer`, of a wire story the reporter's. The opening is where a document says what it is,
so the families that read it get it beside each unit. Loose sentences have none ("").
"""

from __future__ import annotations

from collections.abc import Sequence

OPENING_UNITS = 3


def opening_of(article_texts: Sequence[str]) -> str:
    """The opening of an article given its units' texts in order."""
    return " ".join(t.strip() for t in article_texts[:OPENING_UNITS])


def openings(docs: Sequence[str], texts: Sequence[str]) -> list[str]:
    """Per unit, the opening of its article; an article's units are those with its doc id, in order."""
    first: dict[str, list[str]] = {}
    for doc, text in zip(docs, texts):
        units = first.setdefault(doc, [])
        if len(units) < OPENING_UNITS:
            units.append(text)
    return [opening_of(first[doc]) for doc in docs]
