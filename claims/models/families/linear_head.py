"""A logistic regression per label over fixed features, shared by the linear families."""

from __future__ import annotations

import os
import warnings

import numpy as np
from joblib import Parallel, delayed, parallel_config
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import LabelBinarizer


def make_head(C: float, class_weight: str | None, seed: int) -> OneVsRestClassifier:
    # liblinear is 2-3x faster than lbfgs on these sparse, wide features. Its stopping tolerance at
    # 1e-2 (for every family built on this head): ensemble.v1 on four fifths of the 330-article data
    # fits in 12.7-13.7 s rather than 15.5 s at 1e-3, probabilities on the held-out fifth within
    # 1.1e-3 and the same macro F1 there (.7949); 1e-3 had itself saved a fifth on 1e-4.
    return OneVsRestClassifier(LogisticRegression(C=C, class_weight=class_weight, solver="liblinear", max_iter=2000,
                                                  tol=1e-2, random_state=seed),
                               n_jobs=min(2, len(os.sched_getaffinity(0))))


def _quiet():
    # Constant labels are already reported by ClaimsModel.fit; OvR would warn again.
    warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
    warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
    warnings.filterwarnings("ignore", category=ConvergenceWarning)


def _fit_part(head: OneVsRestClassifier, X, y: np.ndarray) -> list:
    with warnings.catch_warnings():  # in a worker process the caller's filters do not apply
        _quiet()
        return clone(head).set_params(n_jobs=None).fit(X, y).estimators_


def fit_head(head: OneVsRestClassifier, X, y: np.ndarray) -> OneVsRestClassifier:
    """`head.fit(X, y)`, with the labels split into one share per core.

    OneVsRestClassifier's own n_jobs sends X to a worker once per label: with ensemble.v1's features
    (8,620 units, 10 million non-zeros) that cost as much as it saved (14.7-16.8 s against 15.4 s
    in one process). One share of labels per worker sends X once per worker. Each label's
    regression is fitted exactly as OneVsRestClassifier fits it (a clone per label column, the
    same seed), so the fitted head is the same; tests/test_families.py checks it.
    """
    # Wider than tall (n-gram features): liblinear's dual problem reaches the same optimum about three
    # times faster (7.7 s against 2.3 s for ensemble.v1 on the training data; probabilities within 1e-4,
    # measured at tol 1e-3).
    head.estimator.set_params(dual=X.shape[1] > X.shape[0])
    y = np.asarray(y)
    workers = min(head.n_jobs or 1, y.shape[1]) if y.ndim == 2 else 1
    with warnings.catch_warnings():
        _quiet()
        if workers <= 1:
            head.fit(X, y)
        else:
            shares = [part for part in np.array_split(np.arange(y.shape[1]), workers) if len(part)]
            # No memory-mapping: joblib would hand large inputs to the workers read-only, which scipy's
            # in-place sparse operations refuse (liblinear is not thread-safe, so threads are no way out).
            with parallel_config(max_nbytes=None):
                parts = Parallel(n_jobs=len(shares))(delayed(_fit_part)(head, X, y[:, share]) for share in shares)
            head.label_binarizer_ = LabelBinarizer(sparse_output=True).fit(y)
            head.classes_ = head.label_binarizer_.classes_
            head.estimators_ = [estimator for part in parts for estimator in part]
            head.n_features_in_ = X.shape[1]
    # Prediction runs in the caller's process: worker processes kept alive by joblib would outlive
    # a server that is told to stop (and hold its port), and per-batch dispatch costs more than it saves.
    head.n_jobs = None
    return head
