"""A second regression for units that come without an article opening (loose sentences).

A family that reads the opening learns to lean on it, and no training unit lacks one: a loose
sentence's opening block is all zeros, a case the head never saw. Measured on (a)'s held-out units
with the opening blanked, the default lost .011 attribution F1 against the same family without the
channel (bench/RESULTS.md, "Loose sentences and the opening"). The loose head is that family without
the channel: the same regression fitted on the same features less the opening's columns. A unit
with an opening keeps the main head, so nothing predicted for an article changes.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from claims.models.families import sklearn_io
from claims.models.families.base import loose_rows
from claims.models.families.linear_head import fit_head

FILE = "head_loose.skops"


def without_opening(X, columns: tuple[int, int]):
    """`X` less the opening's columns [start, end)."""
    start, end = columns
    return sparse.hstack([X[:, :start], X[:, end:]], format="csr")


def fit(head, X, y: np.ndarray, columns: tuple[int, int]):
    return fit_head(head, without_opening(X, columns), y)


def predict_proba(head, loose, X, openings: list[str], columns: tuple[int, int]) -> np.ndarray:
    """The main head's probabilities, and the loose head's for the units without an opening."""
    rows = loose_rows(openings)
    if not len(rows):
        return head.predict_proba(X)
    proba = np.empty((X.shape[0], len(head.estimators_)))
    framed = np.setdiff1d(np.arange(X.shape[0]), rows)
    if len(framed):
        proba[framed] = head.predict_proba(X[framed])
    proba[rows] = loose.predict_proba(without_opening(X[rows], columns))
    return proba


def save(loose, path) -> None:
    if loose is not None:
        sklearn_io.dump(loose, path / FILE)


def load(path, expected: bool):
    return sklearn_io.load(path / FILE) if expected else None
