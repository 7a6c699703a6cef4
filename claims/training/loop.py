"""One experiment, four evaluations, one final model, all in MLflow.

(a) `cv.*`: grouped k-fold by article on the training data; (b) `country.*`: leave-one-country-out;
(c) `seeds_test.*`: trained on the seed articles only, scored on the sealed test split; (d) `test.*`:
the final model (all training data, thresholds from (a)'s out-of-fold predictions), scored on the
test split. (a) and (b) choose the default; (c) and (d) are only reported.

Layout in MLflow: a parent run per config holding the resolved config, the dataset, every
evaluation's metrics, reports and the final model; a child run per (evaluation, fold, seed).
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from claims.corpus import annotations
from claims.util import atomic
from claims.training import reports
from claims.training import tracking
from claims.training.config import ExperimentConfig
from claims.corpus.dataset import files_digest, label_matrix, load_dataset
from claims.corpus.manifest import MANIFEST_PATH, load_manifest
from claims.corpus.opening import openings
from claims.util.errors import InputError, Problem
from claims.corpus.augment import Augmenting
from claims.training.evaluation import metrics, splits, thresholds
from claims.models.families.base import ClaimsModel, ConstantLabelWarning, build
from claims.predictor.predictor import LOOSE_THRESHOLDS_FILE
from claims.corpus.gazetteer import Gazetteer, load_gazetteer
from claims.corpus.labelspace import LabelSpace
from claims.util.paths import resolve
from claims.corpus.schema import Schema, load_schema
from claims.util.seeding import set_seed
from claims.corpus.validate import validate


@dataclass
class Data:
    schema: Schema
    paths: list[Path]
    digest: str
    ids: list[str]
    docs: list[str]
    texts: list[str]
    y: np.ndarray
    gazetteer: Gazetteer | None = None  # loaded when the config augments
    countries: list[str] = field(default_factory=list)  # per unit, from the manifest ("unlisted" otherwise)
    splits: list[str] = field(default_factory=list)  # per unit: the manifest split
    contexts: list[str] = field(default_factory=list)  # per unit: the unit before it in its article, or ""
    openings: list[str] = field(default_factory=list)  # per unit: its article's opening (claims.corpus.opening)

    @property
    def space(self) -> LabelSpace:
        return LabelSpace(self.schema)

    def subset(self, idx: np.ndarray) -> "Data":
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        return Data(self.schema, self.paths, self.digest, pick(self.ids), pick(self.docs), pick(self.texts),
                    self.y[idx], self.gazetteer, pick(self.countries), pick(self.splits), pick(self.contexts),
                    pick(self.openings))


@dataclass
class Result:
    config: ExperimentConfig
    run_id: str
    cv: dict[str, float]
    thresholds: np.ndarray
    seconds: float
    warnings: list[str] = field(default_factory=list)
    evaluations: dict[str, dict[str, float]] = field(default_factory=dict)  # prefix -> metrics


# Metric prefixes of the four evaluations, short so they sort and fit as MLflow columns.
GROUPED, COUNTRY, SEEDS_TEST, TEST = "cv", "country", "seeds_test", "test"
# (a)'s held-out units predicted without their article's opening (each keeps its previous unit), for a
# family that reads the opening: what a unit without one gets, decided as the package decides it (by
# thresholds.json, or by a loose head's own thresholds, tuned on such predictions of the other folds).
LOOSE = "cv_loose"


class Progress:
    """What the loop reports as it goes; the CLI shows it as progress bars, tests ignore it."""

    def start(self, name: str, total_fits: int, epochs: int | None) -> None: ...
    def step(self, what: str) -> None: ...
    def epoch(self, n: int, loss: float) -> None: ...
    def fit_done(self) -> None: ...


def load_data(cfg: ExperimentConfig) -> Data:
    """Read and validate the annotations a config names; fails before any training starts."""
    schema = _schema(cfg)
    paths = annotations.expand(cfg.data.annotations)
    missing = [p for p in paths if not p.exists()]
    if missing or not paths:
        raise InputError([Problem(p, None, None, "annotation file not found") for p in missing]
                         or [Problem(cfg.name, None, "data.annotations", f"no file matches {cfg.data.annotations}")])
    data = _read(cfg, schema, paths, allow_test=False)
    if cfg.data.max_articles:
        # In manifest order (seeds, then writers in the order they were merged), not file order: file
        # names sort w100_ before w10_, and a shrunk run would see one writer's country alone.
        listed = {d: i for i, d in enumerate(load_manifest().by_id)} if MANIFEST_PATH.exists() else {}
        in_order = sorted(dict.fromkeys(data.docs), key=lambda d: listed.get(d, len(listed)))
        keep_docs = set(in_order[:cfg.data.max_articles])
        data = data.subset(np.asarray([i for i, d in enumerate(data.docs) if d in keep_docs], dtype=int))
    if cfg.data.max_units_per_doc:
        keep, seen = [], {}
        for i, doc in enumerate(data.docs):
            seen[doc] = seen.get(doc, 0) + 1
            if seen[doc] <= cfg.data.max_units_per_doc:
                keep.append(i)
        data = data.subset(np.asarray(keep, dtype=int))
    # Checked here, with the data, so a broken gazetteer stops the run before any training.
    data.gazetteer = load_gazetteer(load_schema(resolve(cfg.data.schema_path))) if cfg.data.augment.enabled else None
    return data


def load_test_split(cfg: ExperimentConfig, train_docs: list[str]) -> Data | None:
    """The sealed test split, for (c) and (d) only; None when the config names none.

    This is the one place that reads it (`allow_test=True`); an article in both the training data
    and the test split is an error.
    """
    paths = annotations.expand(cfg.eval.test_annotations)
    paths = [p for p in paths if p.exists()]
    if not paths:
        return None
    test = _read(cfg, _schema(cfg), paths, allow_test=True)
    overlap = sorted(set(test.docs) & set(train_docs))
    if overlap:
        raise InputError([Problem(cfg.name, None, "eval.test_annotations",
                                  f"article {d!r} is in both the training data and the test split") for d in overlap])
    return test


def _schema(cfg: ExperimentConfig) -> Schema:
    try:
        return load_schema(resolve(cfg.data.schema_path)).select(cfg.data.tasks)
    except KeyError as e:
        raise InputError(Problem(cfg.name, None, "data.tasks", str(e.args[0]))) from None


def _read(cfg: ExperimentConfig, schema: Schema, paths: list[Path], allow_test: bool) -> Data:
    report = validate(load_schema(resolve(cfg.data.schema_path)), paths, seeds_dir=None)
    if not report.ok:
        raise InputError(report.problems)
    ds = load_dataset(paths, schema, allow_test=allow_test)
    manifest = load_manifest() if MANIFEST_PATH.exists() else None
    article = (lambda d: manifest.by_id.get(d)) if manifest else (lambda d: None)  # noqa: E731
    # `[:]` reads a column as a list at once; indexing the lazy column row by row cost 14 s per load.
    ids, docs, texts = ds["id"][:], ds["doc_id"][:], ds["text"][:]
    contexts = [texts[i - 1] if i and docs[i - 1] == docs[i] else "" for i in range(len(texts))]
    return Data(schema, paths, files_digest(paths), ids, docs, texts, label_matrix(ds, schema), None,
                [a.country if (a := article(d)) else "unlisted" for d in docs],
                [a.split if (a := article(d)) else "unlisted" for d in docs], contexts, openings(docs, texts))


def plan(cfg: ExperimentConfig, data: Data, test: Data | None) -> dict[str, list]:
    """The folds of each evaluation, so the fit count is known before training starts."""
    seeds_idx = np.flatnonzero(np.asarray(data.splits) == cfg.eval.seeds_only_split)
    out = {GROUPED: list(splits.article_folds(data.docs, cfg.eval.folds, cfg.eval.max_folds))}
    if cfg.eval.country_folds:
        out[COUNTRY] = list(splits.country_folds(data.countries, cfg.eval.max_folds))
    if test is not None and len(set(np.asarray(data.docs)[seeds_idx].tolist())) >= 1 and len(seeds_idx):
        out[SEEDS_TEST] = [("seeds", seeds_idx, None)]
    return out


def run(cfg: ExperimentConfig, data: Data, tracking_uri: str, progress: Progress | None = None,
        test: Data | None = None) -> Result:
    import mlflow

    progress = progress or Progress()
    space = data.space
    family = build(cfg.model, cfg.train, data.schema)
    seeds = [cfg.train.seed + k for k in range(cfg.eval.seeds if family.stochastic else 1)]
    if not family.stochastic and cfg.eval.seeds > 1:
        warnings.warn(f"{cfg.model.name} is deterministic: eval.seeds={cfg.eval.seeds} ignored, one seed used",
                      stacklevel=2)
    folds = plan(cfg, data, test)
    inner = cfg.eval.inner_folds if cfg.eval.tune_thresholds else 0
    n_fits = sum(len(f) * len(seeds) * (1 + (0 if _other_folds(cfg, f) else inner)) for f in folds.values()) + 1
    progress.start(cfg.name, n_fits, cfg.train.epochs if family.stochastic else None)
    exp_id = tracking.experiment_id(cfg.tracking.experiment, tracking_uri)
    tags = {"claims.role": "parent", "claims.config": cfg.name, "claims.family": cfg.model.name,
            "claims.tasks": ",".join(data.schema.task_names), "claims.data_digest": data.digest,
            **({"claims.test_digest": test.digest} if test else {}),
            **tracking.git_state(), **tracking.package_versions(), **tracking.process_tags()}
    gazetteer = data.gazetteer
    t0 = time.perf_counter()
    evaluations: dict[str, dict[str, float]] = {}
    with mlflow.start_run(experiment_id=exp_id, run_name=cfg.name, tags=tags) as parent, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mlflow.log_params(cfg.flat_params())
        mlflow.log_params({"eval.seeds_used": len(seeds)})
        mlflow.log_text(cfg.to_yaml(), "config.yaml")
        _log_dataset(data)

        def new_model(train_cfg) -> ClaimsModel:
            model = build(cfg.model, train_cfg, data.schema)
            model.on_epoch, model.on_fit_end = progress.epoch, progress.fit_done
            aug = cfg.data.augment
            if aug.enabled:
                return Augmenting(model, gazetteer, aug.copies, train_cfg.seed, aug.actors, aug.places)
            return model

        def fit_on(train_cfg, idx: np.ndarray) -> ClaimsModel:
            set_seed(train_cfg.seed)
            return new_model(train_cfg).fit([data.texts[i] for i in idx], data.y[idx],
                                            [data.contexts[i] for i in idx], [data.docs[i] for i in idx],
                                            [data.openings[i] for i in idx])

        def fit_with_thresholds(train_cfg, idx: np.ndarray) -> tuple[ClaimsModel, np.ndarray]:
            """Fit on `idx`; thresholds from a grouped inner split of `idx` only."""
            thr = np.full(len(space), cfg.eval.default_threshold)
            if cfg.eval.tune_thresholds:
                thr = thresholds.inner_thresholds(
                    lambda: new_model(train_cfg), [data.texts[i] for i in idx], data.y[idx],
                    np.asarray(data.docs)[idx], space, cfg.eval.inner_folds, cfg.eval.default_threshold,
                    [data.contexts[i] for i in idx], [data.openings[i] for i in idx])
            return fit_on(train_cfg, idx), thr

        def cross_validate(prefix: str, fold_list, loose: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
            """The evaluation's metrics; its mean out-of-fold predictions, the units they cover and,
            with `loose`, the mean out-of-fold predictions of the same units without their opening."""
            per_seed, oofs, per_seed_loose, oofs_loose = [], [], [], []
            covered = np.zeros(len(data.texts), dtype=bool)
            other_folds = _other_folds(cfg, fold_list)
            for seed in seeds:
                oof = np.full(data.y.shape, np.nan)
                oof_loose = np.full(data.y.shape, np.nan)
                pred = np.zeros(data.y.shape, dtype=np.int8)
                fold_runs = []
                for name, tr, te in fold_list:
                    with mlflow.start_run(experiment_id=exp_id, run_name=f"{cfg.name}/{prefix}/{name}/seed{seed}",
                                          nested=True, tags={"claims.role": "fold", "claims.config": cfg.name,
                                                             "claims.family": cfg.model.name, "claims.evaluation": prefix,
                                                             "claims.heldout": name, "claims.seed": str(seed),
                                                             **tracking.process_tags()}) as child:
                        set_seed(seed)
                        train_cfg = cfg.train.model_copy(update={"seed": seed})
                        if other_folds:  # thresholds once every fold has its predictions (below)
                            model, thr = fit_on(train_cfg, tr), None
                        else:
                            model, thr = fit_with_thresholds(train_cfg, tr)
                        oof[te] = model.predict_proba([data.texts[i] for i in te], [data.contexts[i] for i in te],
                                                      [data.openings[i] for i in te])
                        if loose:
                            oof_loose[te] = model.predict_proba([data.texts[i] for i in te],
                                                                [data.contexts[i] for i in te])
                        fold_runs.append((child.info.run_id, te, thr))
                        mlflow.log_metric("data.augmented_units", getattr(model, "augmented_units", 0))
                        for epoch, loss in enumerate(model.history_, start=1):
                            mlflow.log_metric("train.loss", loss, step=epoch)
                        _log_stopping(model, "train")
                if other_folds:
                    chosen = thresholds.from_other_folds(data.y, oof, [te for _, te, _ in fold_runs], space,
                                                         cfg.eval.default_threshold)
                    fold_runs = [(run_id, te, thr) for (run_id, te, _), thr in zip(fold_runs, chosen)]
                for run_id, te, thr in fold_runs:
                    pred[te] = space.decide(oof[te], thr)
                    mlflow.log_metrics({**{f"fold.{k}": v for k, v in metrics.compute(data.y[te], pred[te], oof[te], space).items()},
                                        **{f"threshold.{n}": float(t) for n, t in zip(space.column_names, thr)}},
                                       run_id=run_id)
                covered = ~np.isnan(oof).any(axis=1)
                per_seed.append(metrics.compute(data.y[covered], pred[covered], oof[covered], space))
                oofs.append(oof)
                if loose:
                    # A loose head's thresholds are tuned on the other folds' loose predictions, as
                    # thresholds_loose.json is tuned on all of them, even where (a)'s own come from an
                    # inner split; with one fold or untuned thresholds there is nothing to tune on.
                    own = family.has_loose_head and cfg.eval.tune_thresholds and len(fold_runs) > 1
                    per_seed_loose.append(_scored_as_loose(oof_loose, fold_runs, own, covered))
                    oofs_loose.append(oof_loose)
            evaluations[prefix] = metrics.aggregate(per_seed)
            mlflow.log_metrics({f"{prefix}.{k}": v for k, v in evaluations[prefix].items()})
            mlflow.log_metric(f"{prefix}.folds", len(fold_list))
            if loose:
                evaluations[LOOSE] = metrics.aggregate(per_seed_loose)
                mlflow.log_metrics({f"{LOOSE}.{k}": v for k, v in evaluations[LOOSE].items()})
            return np.mean(oofs, axis=0), covered, np.mean(oofs_loose, axis=0) if loose else None

        def _scored_as_loose(oof: np.ndarray, fold_runs, own_thresholds: bool, covered: np.ndarray) -> dict[str, float]:
            """Out-of-fold predictions without the opening, decided by each fold's thresholds or, with
            `own_thresholds`, by thresholds tuned on the other folds' predictions without the opening."""
            test_folds = [te for _, te, _ in fold_runs]
            chosen = (thresholds.from_other_folds(data.y, oof, test_folds, space, cfg.eval.default_threshold)
                      if own_thresholds else [thr for _, _, thr in fold_runs])
            pred = np.zeros(data.y.shape, dtype=np.int8)
            for te, thr in zip(test_folds, chosen):
                pred[te] = space.decide(oof[te], thr)
            return metrics.compute(data.y[covered], pred[covered], oof[covered], space)

        # (a) grouped k-fold by article: also gives the final model's thresholds
        progress.step(f"(a) {len(folds[GROUPED])}-fold CV by article")
        mean_oof, covered, mean_oof_loose = cross_validate(GROUPED, folds[GROUPED], loose=family.reads_openings)
        # (b) leave-one-country-out
        if folds.get(COUNTRY):
            progress.step("(b) leave one country out")
            cross_validate(COUNTRY, folds[COUNTRY])
        # (c) seeds only -> test split, thresholds from the seeds' own inner split
        if SEEDS_TEST in folds:
            progress.step("(c) seeds only, scored on the test split")
            set_seed(cfg.train.seed)
            seed_model, seed_thr = fit_with_thresholds(cfg.train, folds[SEEDS_TEST][0][1])
            evaluations[SEEDS_TEST] = _score(seed_model, seed_thr, test, space)
            mlflow.log_metrics({f"{SEEDS_TEST}.{k}": v for k, v in evaluations[SEEDS_TEST].items()})
        cv = evaluations[GROUPED]
        mlflow.log_metric("cv.seeds", len(seeds))

        # The final model: all training data, thresholds tuned on (a)'s out-of-fold predictions.
        final_thr = (thresholds.tune(data.y[covered], mean_oof[covered], space, cfg.eval.default_threshold)
                     if cfg.eval.tune_thresholds else np.full(len(space), cfg.eval.default_threshold))
        loose_thr = None  # a loose head is another model: it gets thresholds of its own
        if mean_oof_loose is not None and family.has_loose_head:
            loose_thr = (thresholds.tune(data.y[covered], mean_oof_loose[covered], space, cfg.eval.default_threshold)
                         if cfg.eval.tune_thresholds else final_thr)
        set_seed(cfg.train.seed)
        progress.step("final fit on all training data" + (", scored on the test split" if test is not None else ""))
        t_final = time.perf_counter()
        final = new_model(cfg.train).fit(list(data.texts), data.y, list(data.contexts), list(data.docs),
                                         list(data.openings))
        mlflow.log_metric("time.final_fit_seconds", time.perf_counter() - t_final)
        mlflow.log_metric("data.augmented_units", getattr(final, "augmented_units", 0))
        for epoch, loss in enumerate(final.history_, start=1):
            mlflow.log_metric("final.train.loss", loss, step=epoch)
        _log_stopping(final, "final.train")
        # (d) the final model, as packaged, on the test split
        if test is not None:
            evaluations[TEST] = _score(final, final_thr, test, space)
            mlflow.log_metrics({f"{TEST}.{k}": v for k, v in evaluations[TEST].items()})
            mlflow.log_metric("test.units", len(test.texts))
        seconds = time.perf_counter() - t0
        mlflow.log_metric("time.total_seconds", seconds)
        mean_pred = space.decide(mean_oof[covered], final_thr)
        _log_reports(cfg, data, covered, mean_oof[covered], mean_pred, cv)
        _log_model(cfg, data, final, final_thr, evaluations, loose_thr)
        messages = sorted({str(w.message) for w in caught if issubclass(w.category, ConstantLabelWarning)})
        if messages:
            mlflow.log_text("\n".join(messages) + "\n", "warnings.txt")
        run_id = parent.info.run_id
    return Result(cfg, run_id, cv, final_thr, seconds, messages, evaluations)


def _other_folds(cfg: ExperimentConfig, fold_list) -> bool:
    """Whether an evaluation's folds take their thresholds from each other (see `thresholds.from_other_folds`)."""
    return cfg.eval.tune_thresholds and cfg.eval.thresholds_from == "other_folds" and len(fold_list) > 1


def _log_stopping(model, prefix: str) -> None:
    """Per epoch, the held-out score of a family that stops early, and the epoch it kept."""
    import mlflow

    for epoch, score in enumerate(getattr(model, "validation_", None) or [], start=1):
        mlflow.log_metric(f"{prefix}.validation_map", score, step=epoch)
    if getattr(model, "validation_", None):
        mlflow.log_metric(f"{prefix}.best_epoch", model.best_epoch_)


def _score(model: ClaimsModel, thr: np.ndarray, test: Data, space: LabelSpace) -> dict[str, float]:
    """The test split's metrics, with each headline figure's interval over its articles."""
    proba = model.predict_proba(list(test.texts), list(test.contexts), list(test.openings))
    return metrics.scores_on_test_split(test.y, space.decide(proba, thr), proba, test.docs, space)


def _log_dataset(data: Data) -> None:
    import mlflow
    import pandas as pd

    df = pd.DataFrame({"id": data.ids, "doc_id": data.docs, "text": data.texts})
    for j, name in enumerate(data.space.column_names):
        df[name] = data.y[:, j]
    source = ",".join(annotations.relative_source(p) for p in data.paths)
    mlflow.log_input(mlflow.data.from_pandas(df, source=source, name="annotations", digest=data.digest),
                     context="training")


def _log_reports(cfg, data: Data, covered, proba, pred, cv) -> None:
    import mlflow

    space = data.space
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table = reports.per_label_table(cv, space)
        reports.write_per_label(table, folder)
        reports.f1_bar_chart(table, f"{cfg.name}: per-label F1", folder / "per_label_f1.png")
        reports.confusion_grid(data.y[covered], pred, space, folder / "confusion_matrices.png")
        oof = reports.oof_table([i for i, c in zip(data.ids, covered) if c], [d for d, c in zip(data.docs, covered) if c],
                                [t for t, c in zip(data.texts, covered) if c], data.y[covered], pred, proba, space)
        oof.to_csv(folder / "oof_predictions.csv", index=False)
        mlflow.log_artifacts(tmp, "reports")
        mlflow.log_table(oof, "reports/oof_predictions.json")


def _log_model(cfg: ExperimentConfig, data: Data, model: ClaimsModel, thr: np.ndarray,
               evaluations: dict[str, dict[str, float]], loose_thr: np.ndarray | None = None) -> None:
    """The final model with everything needed to use it: config, schema, thresholds (and, for a model
    with a loose head, the thresholds of units without an opening), metrics, data hash."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        with atomic.atomic_dir(Path(tmp) / "model") as build_dir:
            model.save(build_dir)
            (build_dir / "config.yaml").write_text(cfg.to_yaml())
            (build_dir / "schema.yaml").write_text(resolve(cfg.data.schema_path).read_text())
            (build_dir / "thresholds.json").write_text(json.dumps(dict(zip(data.space.column_names, thr.tolist())), indent=1))
            if loose_thr is not None:
                (build_dir / LOOSE_THRESHOLDS_FILE).write_text(
                    json.dumps(dict(zip(data.space.column_names, loose_thr.tolist())), indent=1))
            (build_dir / "metrics.json").write_text(json.dumps(
                {f"{prefix}.{k}": v for prefix, m in evaluations.items() for k, v in m.items()}, indent=1, sort_keys=True))
            (build_dir / "data.json").write_text(json.dumps(
                {"digest": data.digest, "files": [annotations.relative_source(p) for p in data.paths],
                 "units": len(data.texts)}, indent=1))
        mlflow.log_artifacts(str(Path(tmp) / "model"), "model")
