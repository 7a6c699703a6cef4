"""Per-label decision thresholds, tuned for F1 on predictions for articles the model did not see."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from claims.training.evaluation.splits import inner_folds
from claims.corpus.labelspace import LabelSpace

GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)


def grid_f1(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """F1 of `p >= t` against `y` for every t of GRID at once (0 where nothing is predicted or true).

    The same numbers as scikit-learn's `f1_score(..., zero_division=0)` per threshold, which cost
    most of the threshold search when called 37 times per label per split.
    """
    truth = np.asarray(y).astype(bool)
    predicted = np.asarray(p)[None, :] >= GRID[:, None]
    tp = (predicted & truth[None, :]).sum(1)
    denominator = predicted.sum(1) + truth.sum()
    return np.divide(2 * tp, denominator, out=np.zeros(len(GRID)), where=denominator > 0)


def tune(y: np.ndarray, proba: np.ndarray, space: LabelSpace, default: float = 0.5) -> np.ndarray:
    """Best-F1 threshold per column; ties go to the one closest to `default`.

    A column with no positive example keeps `default`: there is nothing to tune on.
    """
    thresholds = np.full(len(space), default)
    for j in range(len(space)):
        if y[:, j].sum() == 0:
            continue
        scores = grid_f1(y[:, j], proba[:, j])
        best = np.flatnonzero(scores == scores.max())
        thresholds[j] = GRID[best[np.argmin(np.abs(GRID[best] - default))]]
    return thresholds


def inner_thresholds(
    make_model: Callable[[], object],
    texts: list[str],
    y: np.ndarray,
    groups: np.ndarray,
    space: LabelSpace,
    n_splits: int,
    default: float,
    contexts: list[str] | None = None,
    openings: list[str] | None = None,
) -> np.ndarray:
    """Thresholds from a grouped inner split of one training part: the test fold is never passed in."""
    oof = np.full(y.shape, np.nan)
    pick = lambda side, idx: [side[i] for i in idx] if side is not None else None  # noqa: E731
    for tr, va in inner_folds(groups, n_splits):
        model = make_model().fit([texts[i] for i in tr], y[tr], pick(contexts, tr), [str(g) for g in groups[tr]],
                                 pick(openings, tr))
        oof[va] = model.predict_proba([texts[i] for i in va], pick(contexts, va), pick(openings, va))
    seen = ~np.isnan(oof).any(axis=1)
    if not seen.any():
        return np.full(len(space), default)
    return tune(y[seen], oof[seen], space, default)


def from_other_folds(y: np.ndarray, oof: np.ndarray, test_folds: list[np.ndarray], space: LabelSpace,
                     default: float = 0.5) -> list[np.ndarray]:
    """Per held-out fold, thresholds tuned on the other folds' out-of-fold predictions and labels.

    A fold's own labels are never read to choose its thresholds, and no model is fitted for them: the
    inner split cost `inner_folds` extra fits per fold (two thirds of a run's fits). They can reach
    the thresholds at second order only: the other folds' predictions come from models that trained
    on this fold's units, and the thresholds see those models' scores on other articles, with those
    articles' labels. `eval.thresholds_from: inner_split` closes that path at the old cost.
    """
    out = []
    for k, test in enumerate(test_folds):
        others = np.zeros(len(y), dtype=bool)
        for j, other in enumerate(test_folds):
            if j != k:
                others[other] = True
        others &= ~np.isnan(oof).any(axis=1)
        out.append(tune(y[others], oof[others], space, default) if others.any() else np.full(len(space), default))
    return out
