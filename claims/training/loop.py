"""One experiment: grouped cross-validation over seeds, then a final fit on all data, all in MLflow.

Layout in MLflow: a parent run per config holding the resolved config, the dataset, the aggregated
`cv.*` metrics, reports and the final model; a child run per (held-out article, seed) holding that
fold's metrics, thresholds and training loss.
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
from claims.util.errors import InputError, Problem
from claims.corpus.augment import Augmenting
from claims.training.evaluation import metrics, splits, thresholds
from claims.models.families.base import ClaimsModel, ConstantLabelWarning, build
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

    @property
    def space(self) -> LabelSpace:
        return LabelSpace(self.schema)


@dataclass
class Result:
    config: ExperimentConfig
    run_id: str
    cv: dict[str, float]
    thresholds: np.ndarray
    seconds: float
    warnings: list[str] = field(default_factory=list)


class Progress:
    """What the loop reports as it goes; the CLI shows it as progress bars, tests ignore it."""

    def start(self, name: str, total_fits: int, epochs: int | None) -> None: ...
    def epoch(self, n: int, loss: float) -> None: ...
    def fit_done(self) -> None: ...


def load_data(cfg: ExperimentConfig) -> Data:
    """Read and validate the annotations a config names; fails before any training starts."""
    schema = load_schema(resolve(cfg.data.schema_path))
    try:
        schema = schema.select(cfg.data.tasks)
    except KeyError as e:
        raise InputError(Problem(cfg.name, None, "data.tasks", str(e.args[0]))) from None
    paths = annotations.expand(cfg.data.annotations)
    missing = [p for p in paths if not p.exists()]
    if missing or not paths:
        raise InputError([Problem(p, None, None, "annotation file not found") for p in missing]
                         or [Problem(cfg.name, None, "data.annotations", f"no file matches {cfg.data.annotations}")])
    report = validate(load_schema(resolve(cfg.data.schema_path)), paths, seeds_dir=None)
    if not report.ok:
        raise InputError(report.problems)
    ds = load_dataset(paths, schema)
    if cfg.data.max_units_per_doc:
        keep, seen = [], {}
        for i, doc in enumerate(ds["doc_id"]):
            seen[doc] = seen.get(doc, 0) + 1
            if seen[doc] <= cfg.data.max_units_per_doc:
                keep.append(i)
        ds = ds.select(keep)
    # Checked here, with the data, so a broken gazetteer stops the run before any training.
    gazetteer = load_gazetteer(load_schema(resolve(cfg.data.schema_path))) if cfg.data.augment.enabled else None
    return Data(schema, paths, files_digest(paths), ds["id"], ds["doc_id"], ds["text"], label_matrix(ds, schema),
                gazetteer)


def run(cfg: ExperimentConfig, data: Data, tracking_uri: str, progress: Progress | None = None) -> Result:
    import mlflow

    progress = progress or Progress()
    space = data.space
    family = build(cfg.model, cfg.train, data.schema)
    seeds = [cfg.train.seed + k for k in range(cfg.eval.seeds if family.stochastic else 1)]
    folds = list(splits.outer_folds(data.docs, cfg.eval.max_folds))
    inner = cfg.eval.inner_folds if cfg.eval.tune_thresholds else 0
    progress.start(cfg.name, len(seeds) * len(folds) * (1 + inner) + 1,
                   cfg.train.epochs if family.stochastic else None)
    exp_id = tracking.experiment_id(cfg.tracking.experiment, tracking_uri)
    tags = {"claims.role": "parent", "claims.config": cfg.name, "claims.family": cfg.model.name,
            "claims.tasks": ",".join(data.schema.task_names), "claims.data_digest": data.digest,
            **tracking.git_state(), **tracking.package_versions()}
    gazetteer = data.gazetteer
    t0 = time.perf_counter()
    with mlflow.start_run(experiment_id=exp_id, run_name=cfg.name, tags=tags) as parent, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mlflow.log_params(cfg.flat_params())
        mlflow.log_text(cfg.to_yaml(), "config.yaml")
        _log_dataset(data)

        def new_model(train_cfg) -> ClaimsModel:
            model = build(cfg.model, train_cfg, data.schema)
            model.on_epoch, model.on_fit_end = progress.epoch, progress.fit_done
            aug = cfg.data.augment
            if aug.enabled:
                return Augmenting(model, gazetteer, aug.copies, train_cfg.seed, aug.actors, aug.places)
            return model

        def fitted(train_cfg, idx: np.ndarray) -> ClaimsModel:
            return new_model(train_cfg).fit([data.texts[i] for i in idx], data.y[idx])

        per_seed, oofs, covered = [], [], np.zeros(len(data.texts), dtype=bool)
        for seed in seeds:
            oof = np.full(data.y.shape, np.nan)
            pred = np.zeros(data.y.shape, dtype=np.int8)
            for doc, tr, te in folds:
                with mlflow.start_run(experiment_id=exp_id, run_name=f"{cfg.name}/{doc}/seed{seed}", nested=True, tags={
                        "claims.role": "fold", "claims.config": cfg.name, "claims.family": cfg.model.name,
                        "claims.heldout_doc": doc, "claims.seed": str(seed)}):
                    set_seed(seed)
                    train_cfg = cfg.train.model_copy(update={"seed": seed})
                    thr = np.full(len(space), cfg.eval.default_threshold)
                    if cfg.eval.tune_thresholds:
                        thr = thresholds.inner_thresholds(
                            lambda: new_model(train_cfg),
                            [data.texts[i] for i in tr], data.y[tr], np.asarray(data.docs)[tr], space,
                            cfg.eval.inner_folds, cfg.eval.default_threshold)
                    set_seed(seed)
                    model = fitted(train_cfg, tr)
                    proba = model.predict_proba([data.texts[i] for i in te])
                    oof[te], pred[te] = proba, space.decide(proba, thr)
                    mlflow.log_metric("data.augmented_units", getattr(model, "augmented_units", 0))
                    fold = metrics.compute(data.y[te], pred[te], proba, space)
                    mlflow.log_metrics({f"fold.{k}": v for k, v in fold.items()})
                    mlflow.log_metrics({f"threshold.{n}": float(t) for n, t in zip(space.column_names, thr)})
                    for epoch, loss in enumerate(model.history_, start=1):
                        mlflow.log_metric("train.loss", loss, step=epoch)
            covered = ~np.isnan(oof).any(axis=1)
            per_seed.append(metrics.compute(data.y[covered], pred[covered], oof[covered], space))
            oofs.append(oof)
        cv = metrics.aggregate(per_seed)
        mlflow.log_metrics({f"cv.{k}": v for k, v in cv.items()})
        mlflow.log_metric("cv.seeds", len(seeds))
        mlflow.log_metric("cv.folds", len(folds))

        # Final thresholds: tuned on out-of-fold predictions of the full data (mean over seeds).
        mean_oof = np.mean(oofs, axis=0)
        final_thr = (thresholds.tune(data.y[covered], mean_oof[covered], space, cfg.eval.default_threshold)
                     if cfg.eval.tune_thresholds else np.full(len(space), cfg.eval.default_threshold))
        set_seed(cfg.train.seed)
        t_final = time.perf_counter()
        final = fitted(cfg.train, np.arange(len(data.texts)))
        mlflow.log_metric("time.final_fit_seconds", time.perf_counter() - t_final)
        mlflow.log_metric("data.augmented_units", getattr(final, "augmented_units", 0))
        for epoch, loss in enumerate(final.history_, start=1):
            mlflow.log_metric("final.train.loss", loss, step=epoch)
        seconds = time.perf_counter() - t0
        mlflow.log_metric("time.total_seconds", seconds)
        mean_pred = space.decide(mean_oof[covered], final_thr)
        _log_reports(cfg, data, covered, mean_oof[covered], mean_pred, cv)
        _log_model(cfg, data, final, final_thr, cv)
        messages = sorted({str(w.message) for w in caught if issubclass(w.category, ConstantLabelWarning)})
        if messages:
            mlflow.log_text("\n".join(messages) + "\n", "warnings.txt")
        run_id = parent.info.run_id
    return Result(cfg, run_id, cv, final_thr, seconds, messages)


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


def _log_model(cfg: ExperimentConfig, data: Data, model: ClaimsModel, thr: np.ndarray, cv: dict) -> None:
    """The final model with everything needed to use it: config, schema, thresholds, metrics, data hash."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        with atomic.atomic_dir(Path(tmp) / "model") as build_dir:
            model.save(build_dir)
            (build_dir / "config.yaml").write_text(cfg.to_yaml())
            (build_dir / "schema.yaml").write_text(resolve(cfg.data.schema_path).read_text())
            (build_dir / "thresholds.json").write_text(json.dumps(dict(zip(data.space.column_names, thr.tolist())), indent=1))
            (build_dir / "metrics.json").write_text(json.dumps(cv, indent=1, sort_keys=True))
            (build_dir / "data.json").write_text(json.dumps(
                {"digest": data.digest, "files": [annotations.relative_source(p) for p in data.paths],
                 "units": len(data.texts)}, indent=1))
        mlflow.log_artifacts(str(Path(tmp) / "model"), "model")
