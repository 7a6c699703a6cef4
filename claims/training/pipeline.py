"""What `claims train` and the results bench do per config: run, package, behavioural check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from claims.training import loop
from claims.training.behaviour import Report, check_package, log_to_run
from claims.training.config import ExperimentConfig
from claims.corpus.gazetteer import load_gazetteer
from claims.predictor.package import package_run
from claims.util.paths import MODELS_DIR
from claims.corpus.schema import load_schema


@dataclass
class Outcome:
    result: loop.Result
    package: Path | None
    behaviour: Report | None


def train_package_check(cfg: ExperimentConfig, data: loop.Data, tracking_uri: str,
                        progress: loop.Progress | None = None, package: bool = True,
                        behaviour: bool = True, models_dir: Path = MODELS_DIR,
                        test: loop.Data | None = None) -> Outcome:
    result = loop.run(cfg, data, tracking_uri, progress, test)
    target = package_run(result.run_id, cfg.name, out_dir=models_dir, tracking_uri=tracking_uri) if package else None
    report = None
    if target is not None and behaviour:
        schema = load_schema()
        report = check_package(target, schema, load_gazetteer(schema))
        log_to_run(result.run_id, report, tracking_uri)
    return Outcome(result, target, report)
