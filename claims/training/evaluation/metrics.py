"""Metrics per task, as flat scalar names MLflow can chart (`claim_type.casualties.f1`)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_recall_fscore_support,
)

from claims.corpus.labelspace import LabelSpace

PER_LABEL = ("precision", "recall", "f1", "support")


def compute(y: np.ndarray, pred: np.ndarray, proba: np.ndarray, space: LabelSpace) -> dict[str, float]:
    out: dict[str, float] = {}
    for task in space.tasks():
        s = space.slices()[task.name]
        yt, yp, pp = y[:, s], pred[:, s], proba[:, s]
        name = task.name
        if task.type == "binary":
            p, r, f, _ = precision_recall_fscore_support(yt[:, 0], yp[:, 0], average="binary", zero_division=0)
            out.update({f"{name}.precision": p, f"{name}.recall": r, f"{name}.f1": f,
                        f"{name}.support": float(yt.sum()), f"{name}.accuracy": accuracy_score(yt[:, 0], yp[:, 0])})
            out[f"{name}.average_precision"] = (average_precision_score(yt[:, 0], pp[:, 0])
                                                if yt.sum() else 0.0)
            # Macro F1 over both classes, so every task has a comparable `macro_f1`.
            out[f"{name}.macro_f1"] = f1_score(yt[:, 0], yp[:, 0], average="macro", zero_division=0)
            continue
        if task.type == "multiclass":
            yt_c, yp_c = yt.argmax(1), yp.argmax(1)
            out[f"{name}.accuracy"] = accuracy_score(yt_c, yp_c)
            out[f"{name}.macro_f1"] = f1_score(yt_c, yp_c, average="macro", zero_division=0)
            p, r, f, sup = precision_recall_fscore_support(yt_c, yp_c, labels=range(len(task.columns)),
                                                           zero_division=0)
        else:
            p, r, f, sup = precision_recall_fscore_support(yt, yp, average=None, zero_division=0)
            out[f"{name}.micro_f1"] = f1_score(yt, yp, average="micro", zero_division=0)
            out[f"{name}.macro_f1"] = f1_score(yt, yp, average="macro", zero_division=0)
            out[f"{name}.exact_match"] = accuracy_score(yt, yp)
        for k, label in enumerate(task.columns):
            for metric, values in zip(PER_LABEL, (p, r, f, sup)):
                out[f"{name}.{label}.{metric}"] = float(values[k])
            if task.type == "multilabel":
                out[f"{name}.{label}.average_precision"] = (average_precision_score(yt[:, k], pp[:, k])
                                                            if yt[:, k].sum() else 0.0)
    return {k: float(v) for k, v in out.items()}


def aggregate(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Mean over seeds under each name; with several seeds, the standard deviation under `<name>_std`
    (one seed has none: a column of zeros would only crowd the MLflow runs table)."""
    out: dict[str, float] = {}
    for key in per_seed[0]:
        values = np.array([m[key] for m in per_seed])
        out[key] = float(values.mean())
        if len(per_seed) > 1 and not key.endswith(".support"):
            out[f"{key}_std"] = float(values.std())
    return out


def headline_names(space: LabelSpace) -> list[str]:
    """The one number per task that summaries show: F1 for binary tasks, macro F1 otherwise."""
    return [f"{t.name}.f1" if t.type == "binary" else f"{t.name}.macro_f1" for t in space.tasks()]


BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_LEVEL = 0.95


def _resampled_headlines(y: np.ndarray, preds: list[np.ndarray], groups, space: LabelSpace, resamples: int,
                         seed: int) -> dict[str, list[np.ndarray]]:
    """Each headline figure of each prediction matrix on the same `resamples` draws of articles with
    replacement (the same draws for every matrix, so that differences are paired).

    Counts are summed per article once, so each resample is a weighted sum, not a new pass over the
    units. F1 is computed as `compute` does (a label with no positives and none predicted gives 0).
    Multiclass tasks are left out: their macro F1 in `compute` averages only the classes present,
    which these counts would not reproduce (the schema has none today)."""
    docs, inverse = np.unique(np.asarray(groups), return_inverse=True)
    rng = np.random.default_rng(seed)
    weights = np.stack([np.bincount(rng.integers(0, len(docs), len(docs)), minlength=len(docs))
                        for _ in range(resamples)]).astype(float)
    yt = y.astype(bool)
    out: dict[str, list[np.ndarray]] = {}
    for pred in preds:
        yp = pred.astype(bool)
        per_doc = [np.zeros((len(docs), y.shape[1])) for _ in range(3)]
        for counts, hits in zip(per_doc, (yt & yp, ~yt & yp, yt & ~yp)):
            np.add.at(counts, inverse, hits)
        tp, fp, fn = (weights @ c for c in per_doc)
        denominator = 2 * tp + fp + fn
        f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
        for task, name in zip(space.tasks(), headline_names(space)):
            if task.type != "multiclass":  # macro over a multi-label task's columns; a binary task has one
                out.setdefault(name, []).append(f1[:, space.slices()[task.name]].mean(axis=1))
    return out


def article_bootstrap(y: np.ndarray, pred: np.ndarray, groups, space: LabelSpace,
                      resamples: int = BOOTSTRAP_RESAMPLES, level: float = BOOTSTRAP_LEVEL,
                      seed: int = 0) -> dict[str, float]:
    """Percentile intervals of each headline figure (`<name>.ci_low`, `<name>.ci_high`) over
    articles drawn with replacement: units of one article share a writer, a story and its errors,
    so the article, not the unit, is what a new sample of text varies. A test split of a few dozen
    articles gives wide intervals, which is what a user comparing two figures needs to know."""
    tail = (1 - level) / 2 * 100
    out: dict[str, float] = {}
    for name, (values,) in _resampled_headlines(y, [pred], groups, space, resamples, seed).items():
        low, high = np.percentile(values, [tail, 100 - tail])
        out.update({f"{name}.ci_low": float(low), f"{name}.ci_high": float(high)})
    return out


def paired_article_bootstrap(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, groups, space: LabelSpace,
                             resamples: int = BOOTSTRAP_RESAMPLES, level: float = BOOTSTRAP_LEVEL,
                             seed: int = 0) -> dict[str, float]:
    """B minus A on each headline figure, over the same draws of articles (`<name>.diff`, `.ci_low`,
    `.ci_high`, and `.p_better`, the share of draws where B is ahead). Two models scored on the same
    articles err on many of the same units, so the interval of their difference is much narrower
    than the two models' own intervals suggest: it is the one to read when asking whether B differs
    from A on these articles (a report: nothing is chosen on the test split). Ties count as B not ahead."""
    tail = (1 - level) / 2 * 100
    out: dict[str, float] = {}
    point_a, point_b = (compute(y, p, p.astype(float), space) for p in (pred_a, pred_b))
    for name, (a, b) in _resampled_headlines(y, [pred_a, pred_b], groups, space, resamples, seed).items():
        low, high = np.percentile(b - a, [tail, 100 - tail])
        out.update({f"{name}.diff": point_b[name] - point_a[name], f"{name}.ci_low": float(low),
                    f"{name}.ci_high": float(high), f"{name}.p_better": float(np.mean(b > a))})
    return out


def scores_on_test_split(y: np.ndarray, pred: np.ndarray, proba: np.ndarray, groups, space: LabelSpace) -> dict[str, float]:
    """What (c) and (d) log: `compute`'s metrics and each headline figure's interval over the articles."""
    return {**compute(y, pred, proba, space), **article_bootstrap(y, pred, groups, space)}


def with_interval(values: dict[str, float], name: str) -> str:
    """`0.837 (0.801-0.866)`: a headline figure and, where it has one, its bootstrap interval."""
    low, high = values.get(f"{name}.ci_low"), values.get(f"{name}.ci_high")
    return f"{values[name]:.3f}" + (f" ({low:.3f}-{high:.3f})" if low is not None and high is not None else "")
