"""Model-assisted annotation: a package's labels as pre-annotations, and which articles to annotate first.

`claims suggest` reads raw articles (segmented exactly as `claims segment` does) or unit JSONL files,
predicts every unit with a packaged model (each unit with the previous unit of its article as
context and its article's opening, as in training) and writes Label Studio tasks or Prodigy examples with the model's labels
as pre-annotations (`claims.corpus.interchange` writes them).

Annotators read a unit with its predecessor, so articles stay whole: the strategy ranks *articles*
and `budget` takes whole articles in that order until at least that many units are included.

Uncertainty, from each label's probability relative to the package's tuned threshold:

- a column's *margin* is how far its probability p sits from its threshold t, as a fraction of the
  room on that side: (p - t) / (1 - t) above the threshold, (t - p) / t below it; 0 on the
  threshold, 1 at certainty (p = 0 or p = 1). A multiclass task, decided by argmax, has one margin:
  its top probability minus the runner-up.
- a unit's *confidence* is its smallest margin (a unit is as uncertain as its closest call), its
  uncertainty 1 - confidence; the confidence is the `score` of its pre-annotation, and each task's
  smallest margin is the `score` of that task's answer (Label Studio result, Prodigy
  `meta.task_scores`).
- an article's uncertainty is the mean uncertainty of its non-empty units (0 with none).

`uncertainty` ranks articles most uncertain first (ties keep input order); `random` is a shuffle
seeded by `seed`; `diverse` starts with the most uncertain article, then repeatedly takes the
article with the largest uncertainty x distance to the nearest article already taken (cosine
distance between the articles' TF-IDF word vectors), so a budget covers different events, places
and outlets rather than several retellings of one uncertain story.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from claims.corpus import annotations, interchange
from claims.corpus.annotations import Record
from claims.corpus.labelspace import LabelSpace
from claims.corpus.opening import opening_of
from claims.corpus.schema import Schema
from claims.corpus.segment import segment_file
from claims.predictor.predictor import ModelFolderError, Predictor
from claims.util.errors import InputError, Problem

Strategy = Literal["uncertainty", "random", "diverse"]
STRATEGIES: tuple[str, ...] = ("uncertainty", "random", "diverse")
INPUT_SUFFIXES = (".txt", ".jsonl")
BATCH = 512  # units per call to the predictor


@dataclass
class Article:
    """One article's units, in order, with the model's labels and confidence for each."""

    doc_id: str
    records: list[Record]
    labels: list[dict[str, Any]] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    task_confidence: list[dict[str, float]] = field(default_factory=list)
    uncertainty: float = 0.0


@dataclass
class Suggestions:
    articles: list[Article]  # the chosen articles, in ranked order
    total_articles: int
    total_units: int
    model_version: str
    strategy: str

    @property
    def records(self) -> list[Record]:
        return [r for a in self.articles for r in a.records]

    @property
    def predictions(self) -> dict[str, dict[str, Any]]:
        return {r.id: labels for a in self.articles for r, labels in zip(a.records, a.labels)}

    @property
    def scores(self) -> dict[str, float]:
        return {r.id: score for a in self.articles for r, score in zip(a.records, a.confidence)}

    @property
    def task_scores(self) -> dict[str, dict[str, float]]:
        return {r.id: scores for a in self.articles for r, scores in zip(a.records, a.task_confidence)}


# ---------------------------------------------------------------- inputs

def check_inputs(paths: Sequence[Path], output: Path) -> None:
    """Before the model loads: every input is a readable .txt or .jsonl file, and none is the output."""
    problems = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            problems.append(Problem(path, None, None, "is a folder: give the files in it (e.g. folder/*.txt)"))
        elif not path.exists():
            problems.append(Problem(path, None, None, "input file not found"))
        elif path.suffix.lower() not in INPUT_SUFFIXES:
            problems.append(Problem(path, None, None, f"unknown input type {path.suffix!r}: use .txt articles "
                                                      "or .jsonl units from `claims segment`"))
        elif path.resolve() == Path(output).resolve():
            problems.append(Problem(output, None, None, "the output is one of the inputs: it would be overwritten"))
        else:
            try:
                with open(path, "rb") as f:
                    f.read(1)
            except OSError as e:
                problems.append(Problem(path, None, None, f"cannot read: {e.strerror or e}"))
    if Path(output).is_dir():
        problems.append(Problem(output, None, None, "is a folder: give a file name for the tasks"))
    if problems:
        raise InputError(problems)


def read_articles(paths: Sequence[Path]) -> list[Article]:
    """Articles in order of first appearance: .txt files segmented as `claims segment` does, .jsonl
    unit files grouped by doc_id in file order. Labels in the input are not carried: these are units
    to annotate (`claims export` writes annotated units)."""
    by_doc: dict[str, Article] = {}
    seen: dict[str, tuple[Path, int | None]] = {}
    problems: list[Problem] = []
    for path in map(Path, paths):
        if path.suffix.lower() == ".txt":
            try:
                units = segment_file(path)
            except InputError as e:
                problems.extend(e.problems)
                continue
            source = annotations.relative_source(path)
            records = [Record(id=u.id, doc_id=u.doc_id, text=u.text, start=u.start, end=u.end, labels={},
                              source=source, path=path) for u in units]
        else:
            records, read_problems = annotations.read_file(path, require_labels=False)
            problems.extend(read_problems)
        for rec in records:
            if rec.id in seen:
                first, line = seen[rec.id]
                problems.append(Problem(path, rec.line, "id", f"unit {rec.id!r} also comes from {first}"
                                                              + (f":{line}" if line else "")))
                continue
            seen[rec.id] = (path, rec.line)
            rec.labels = {}
            by_doc.setdefault(rec.doc_id, Article(rec.doc_id, [])).records.append(rec)
    if problems:
        raise InputError(problems)
    return list(by_doc.values())


# ---------------------------------------------------------------- model

def load_package(model: Path, schema: Schema) -> tuple[Predictor, str]:
    """The package's predictor and its model version (`name@run_id` from the MLmodel metadata).

    Refuses a folder that is not a package, or one trained on labels the project schema lacks."""
    import yaml

    model = Path(model)
    if not model.is_dir():
        raise InputError(Problem(model, None, None, "model folder does not exist"))
    if not (model / "MLmodel").is_file():
        raise InputError(Problem(model, None, None, "not a model package (no MLmodel file): give a folder made by "
                                                    "`claims package` or `claims train`, e.g. models/default"))
    try:
        predictor = Predictor.load(model, runtime="auto")
        meta = (yaml.safe_load((model / "MLmodel").read_text(encoding="utf-8")) or {}).get("metadata") or {}
    except ModelFolderError as e:
        raise InputError(Problem(model, None, None, str(e).removeprefix(f"{model}: "))) from None
    except (OSError, yaml.YAMLError, AttributeError) as e:
        raise InputError(Problem(model / "MLmodel", None, None, f"unreadable package metadata: {e}")) from None
    for task in predictor.space.schema.tasks:
        known = schema.by_name.get(task.name)
        if known is None or known.type != task.type or known.label_names != task.label_names:
            raise InputError(Problem(model, None, f"schema.{task.name}",
                                     "the package was trained on labels the project schema does not have"))
    name = str(meta.get("claims.name") or model.resolve().name)
    run_id = str(meta.get("claims.run_id") or "")
    return predictor, f"{name}@{run_id}" if run_id else name


# ---------------------------------------------------------------- uncertainty and ranking

def unit_confidence(proba: np.ndarray, thresholds: np.ndarray, space: LabelSpace) -> np.ndarray:
    """Per unit (row of `proba`): the smallest margin between a decision and its threshold, in [0, 1].

    Rows that are all NaN (empty units, which the model does not score) get 1.0."""
    margins = column_margins(proba, thresholds, space)
    empty = np.isnan(margins).all(axis=1)
    out = np.ones(len(margins))
    if (~empty).any():
        out[~empty] = np.nanmin(margins[~empty], axis=1)
    return out


def task_confidence(proba: np.ndarray, thresholds: np.ndarray, space: LabelSpace) -> list[dict[str, float]]:
    """Per unit, per task: the smallest margin among that task's columns (1.0 for an empty unit)."""
    margins = column_margins(proba, thresholds, space)
    out = []
    for row in margins:
        out.append({name: 1.0 if np.isnan(row[s]).all() else round(float(np.nanmin(row[s])), 5)
                    for name, s in space.slices().items()})
    return out


def column_margins(proba: np.ndarray, thresholds: np.ndarray, space: LabelSpace) -> np.ndarray:
    """Each column's margin in [0, 1] (see the module docstring); NaN where the model gave no probability."""
    proba = np.asarray(proba, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)[None, :]
    above = (proba - t) / np.maximum(1.0 - t, 1e-12)
    below = (t - proba) / np.maximum(t, 1e-12)
    margins = np.clip(np.where(proba >= t, above, below), 0.0, 1.0)
    for task in space.schema.tasks:
        if task.type == "multiclass":
            s = space.slices()[task.name]
            block = np.sort(proba[:, s], axis=1)
            gap = block[:, -1] - block[:, -2] if block.shape[1] > 1 else np.ones(len(block))
            margins[:, s] = gap[:, None]
    margins[np.isnan(proba)] = np.nan
    return margins


def unit_scores(proba: np.ndarray, thresholds: np.ndarray, space: LabelSpace) -> list[float]:
    """Unit confidences as the pre-annotations carry them (5 places) and the ranking reads them."""
    return [round(float(c), 5) for c in unit_confidence(proba, thresholds, space)]


def article_uncertainties(confidence: Sequence[float], sizes: Sequence[int], empty: Sequence[bool]) -> list[float]:
    """Per article, from the flat per-unit `confidence` and `empty` of articles of `sizes` units, in order."""
    out, k = [], 0
    for n in sizes:
        out.append(article_uncertainty(confidence[k:k + n], empty[k:k + n]))
        k += n
    return out


def article_uncertainty(confidence: Sequence[float], empty: Sequence[bool] | None = None) -> float:
    """Mean of (1 - confidence) over the article's non-empty units; 0.0 when it has none."""
    values = [1.0 - c for k, c in enumerate(confidence) if not (empty and empty[k])]
    return float(np.mean(values)) if values else 0.0


def rank(uncertainties: Sequence[float], strategy: Strategy, seed: int = 0,
         texts: Sequence[str] | None = None) -> list[int]:
    """Article indices in the order to annotate them; `diverse` also needs each article's text."""
    order = list(range(len(uncertainties)))
    if strategy == "uncertainty":
        return sorted(order, key=lambda i: -uncertainties[i])  # stable: ties keep input order
    if strategy == "random":
        random.Random(seed).shuffle(order)
        return order
    if strategy == "diverse":
        if texts is None or len(texts) != len(uncertainties):
            raise ValueError("the diverse strategy needs one text per article")
        return diverse_order(uncertainties, texts)
    raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")


def diverse_order(uncertainties: Sequence[float], texts: Sequence[str]) -> list[int]:
    """Greedy uncertainty-weighted farthest-first order (see the module docstring)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not texts:
        return []
    try:
        x = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2)).fit_transform(texts)  # rows L2-normalised
    except ValueError:  # not one word in any article: nothing to tell them apart by
        return rank(uncertainties, "uncertainty")
    # A small floor keeps articles the model is sure of in play: among them, distance alone decides.
    weight = np.asarray(uncertainties, dtype=float) + 1e-6
    first = int(np.argmax(weight))  # ties: the first in input order, as `uncertainty` does
    order, taken = [first], np.zeros(len(texts), dtype=bool)
    taken[first] = True
    nearest = 1.0 - (x @ x[first].T).toarray().ravel()
    while len(order) < len(texts):
        nxt = int(np.argmax(np.where(taken, -np.inf, weight * np.clip(nearest, 0.0, None))))
        order.append(nxt)
        taken[nxt] = True
        nearest = np.minimum(nearest, 1.0 - (x @ x[nxt].T).toarray().ravel())
    return order


def take_budget(order: Sequence[int], sizes: Sequence[int], budget: int | None) -> list[int]:
    """Whole articles in `order` until at least `budget` units are in (all of them without a budget)."""
    if budget is None:
        return list(order)
    chosen, units = [], 0
    for i in order:
        if units >= budget:
            break
        chosen.append(i)
        units += sizes[i]
    return chosen


# ---------------------------------------------------------------- the whole step

def predict_articles(predictor: Predictor, articles: list[Article]) -> None:
    """Fill each article's labels, confidence and uncertainty; context = the previous unit of the
    article, and each unit has its article's opening, as in training."""
    texts = [r.text for a in articles for r in a.records]
    contexts = [a.records[k - 1].text if k else "" for a in articles for k in range(len(a.records))]
    opening = [o for a in articles for o in [opening_of([r.text for r in a.records])] * len(a.records)]
    labels: list[dict[str, Any]] = []
    confidence: list[float] = []
    per_task: list[dict[str, float]] = []
    for start in range(0, len(texts), BATCH):
        pred = predictor.predict(texts[start:start + BATCH], contexts[start:start + BATCH], opening[start:start + BATCH])
        labels += [predictor.space.decode(row) for row in pred.decisions]
        confidence += unit_scores(pred.proba, predictor.thresholds, predictor.space)
        per_task += task_confidence(pred.proba, predictor.thresholds, predictor.space)
    uncertainties = article_uncertainties(confidence, [len(a.records) for a in articles],
                                          [not r.text.strip() for a in articles for r in a.records])
    k = 0
    for a, uncertainty in zip(articles, uncertainties):
        n = len(a.records)
        a.labels, a.confidence, a.task_confidence = labels[k:k + n], confidence[k:k + n], per_task[k:k + n]
        a.uncertainty = uncertainty
        k += n


def suggest(paths: Sequence[Path], model: Path, schema: Schema, strategy: Strategy = "uncertainty",
            budget: int | None = None, seed: int = 0) -> Suggestions:
    """Predict every unit of `paths` with the package at `model`, rank the articles, apply the budget."""
    if strategy not in STRATEGIES:
        raise InputError(Problem("--strategy", None, None, f"unknown strategy {strategy!r}; expected one of {STRATEGIES}"))
    if budget is not None and budget < 1:
        raise InputError(Problem("--budget", None, None, "must be at least 1"))
    articles = read_articles(paths)
    if not articles:
        raise InputError(Problem(", ".join(map(str, paths)) or "(no files)", None, None, "no units to annotate"))
    predictor, version = load_package(model, schema)
    predict_articles(predictor, articles)
    order = rank([a.uncertainty for a in articles], strategy, seed,
                 texts=[" ".join(r.text for r in a.records) for a in articles])
    chosen = take_budget(order, [len(a.records) for a in articles], budget)
    return Suggestions([articles[i] for i in chosen], len(articles), sum(len(a.records) for a in articles),
                       version, strategy)


def write_tasks(suggestions: Suggestions, schema: Schema, fmt: interchange.Format, output: Path) -> None:
    """Label Studio JSON (plus OUTPUT.config.xml) or Prodigy JSONL, with the predictions as pre-annotations."""
    interchange.export(suggestions.records, schema, fmt, Path(output), suggestions.predictions,
                       model_version=suggestions.model_version, scores=suggestions.scores,
                       task_scores=suggestions.task_scores)
