"""Splits by article or by country, never by sentence: units of one article share their wording."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

Fold = tuple[str, np.ndarray, np.ndarray]  # (name, train indices, test indices)


def article_folds(docs: list[str], k: int, max_folds: int | None = None) -> Iterator[Fold]:
    """(a) Grouped k-fold: every article's units fall in one test fold (k capped by the article count)."""
    groups = np.asarray(docs)
    n = min(k, len(set(docs)))
    if n < 2:
        raise ValueError("grouped cross-validation needs at least two articles")
    for i, (train, test) in enumerate(GroupKFold(n_splits=n).split(np.zeros(len(groups)), groups=groups)):
        if max_folds is not None and i >= max_folds:
            return
        yield f"fold{i + 1}", train, test


def country_folds(countries: list[str], max_folds: int | None = None) -> Iterator[Fold]:
    """(b) Leave-one-country-out, in country order; nothing when there is only one country."""
    groups = np.asarray(countries)
    if len(set(countries)) < 2:
        return
    splits = sorted(LeaveOneGroupOut().split(groups, groups=groups), key=lambda s: groups[s[1][0]])
    for i, (train, test) in enumerate(splits):
        if max_folds is not None and i >= max_folds:
            return
        yield str(groups[test[0]]), train, test


def inner_folds(groups: np.ndarray, n_splits: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Grouped split of a training part (local indices), for tuning thresholds on unseen articles."""
    n = min(n_splits, len(set(groups.tolist())))
    if n < 2:
        return iter(())
    return GroupKFold(n_splits=n).split(np.zeros(len(groups)), groups=groups)
