"""Embed each distinct text once: shared by the training cache and the packaged ONNX encoder."""

from __future__ import annotations

import numpy as np


def each_once(texts: list[str], embed_distinct) -> np.ndarray:
    """`embed_distinct` called on the distinct texts only (a unit is often also the next unit's
    context), its rows given back in the order and multiplicity of `texts`."""
    distinct = list(dict.fromkeys(texts))
    if len(distinct) == len(texts):
        return embed_distinct(texts)
    vectors = embed_distinct(distinct)
    row = {t: i for i, t in enumerate(distinct)}
    return vectors[[row[t] for t in texts]]
