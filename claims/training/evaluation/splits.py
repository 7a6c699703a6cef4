"""Splits by article, never by sentence: the seed articles repeat each other almost word for word."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut


def outer_folds(groups: list[str], max_folds: int | None = None) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Leave-one-article-out: (held-out doc_id, train indices, test indices), in doc_id order."""
    groups_arr = np.asarray(groups)
    if len(set(groups)) < 2:
        raise ValueError("grouped cross-validation needs at least two articles")
    splits = sorted(LeaveOneGroupOut().split(groups_arr, groups=groups_arr), key=lambda s: groups_arr[s[1][0]])
    for n, (train, test) in enumerate(splits):
        if max_folds is not None and n >= max_folds:
            return
        yield str(groups_arr[test[0]]), train, test


def inner_folds(groups: np.ndarray, n_splits: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Grouped split of a training part (local indices), for tuning thresholds on unseen articles."""
    n = min(n_splits, len(set(groups.tolist())))
    if n < 2:
        return iter(())
    return GroupKFold(n_splits=n).split(np.zeros(len(groups)), groups=groups)
