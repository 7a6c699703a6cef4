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
    progress = progress or loop.Progress()
    result = loop.run(cfg, data, tracking_uri, progress, test)
    if package:
        progress.step(f"packaging models/{cfg.name}")
    target = package_run(result.run_id, cfg.name, out_dir=models_dir, tracking_uri=tracking_uri) if package else None
    report = None
    if target is not None and behaviour:
        progress.step("behavioural suite on the package")
        schema = load_schema()
        report = check_package(target, schema, load_gazetteer(schema))
        log_to_run(result.run_id, report, tracking_uri)
    log_summary(result, data, report, tracking_uri)
    progress.step("done")
    return Outcome(result, target, report)


def log_summary(result: loop.Result, data: loop.Data, report: Report | None, tracking_uri: str) -> None:
    """A few short, sortable metrics on the parent run, so the MLflow UI's runs table shows what picks
    the default (`score`, from (a), (b) and behaviour, as `claims compare` computes it) and what a
    user should expect (`d_*`, the test split), and a description of the run."""
    import numpy as np
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from claims.training.compare import score
    from claims.training.evaluation.metrics import BOOTSTRAP_LEVEL, headline_names, with_interval

    names = headline_names(data.space)
    ev = result.evaluations
    row = {f"{short}.{n}": ev.get(prefix, {}).get(n, np.nan) for prefix, short in ((loop.GROUPED, "a"), (loop.COUNTRY, "b"))
           for n in names}
    row["behaviour"] = report.overall if report is not None else np.nan
    # A score without (b) (the main job's runs) would sort among three-part scores in the UI: none is logged.
    has_b = loop.COUNTRY in ev
    summary = {"score": float(score(pd.DataFrame([row]), names).iloc[0]) if has_b else float("nan"),
               "a_mean": float(np.mean([row[f"a.{n}"] for n in names])),
               "b_mean": float(np.mean([row[f"b.{n}"] for n in names])),
               **{f"d_{n.split('.')[0]}": ev[loop.TEST][n] for n in names if loop.TEST in ev}}
    summary = {k: v for k, v in summary.items() if v == v and v != -1.0}
    client = MlflowClient(tracking_uri)
    for key, value in summary.items():
        client.log_metric(result.run_id, key, value)
    cells = lambda prefix: " / ".join(f"{ev[prefix][n]:.3f}" for n in names) if prefix in ev else "-"  # noqa: E731
    client.set_tag(result.run_id, "mlflow.note.content", "\n".join([
        f"**{result.config.name}** (`{result.config.model.name}`), data digest `{data.digest}`, "
        f"{len(data.texts)} units in {len(set(data.docs))} articles.", "",
        "claim_type macro F1 / attribution macro F1 / withdrawal F1:", "",
        f"- (a) 5-fold by article: {cells(loop.GROUPED)}",
        *([f"- (a)'s units without their opening (loose sentences): {cells(loop.LOOSE)}"]
          if loop.LOOSE in ev else []),
        f"- (b) leave one country out: {cells(loop.COUNTRY)}",
        f"- (d) test split: {cells(loop.TEST)}",
        *([f"  ({BOOTSTRAP_LEVEL:.0%} intervals over its articles: "
           + " / ".join(with_interval(ev[loop.TEST], n) for n in names) + ")"] if loop.TEST in ev else []),
        f"- behaviour: {row['behaviour']:.1%}" if report is not None else "- behaviour: not checked",
        f"- score (chooses the default): {summary['score']:.3f}" if "score" in summary else
        "- score: not logged, this run has no (b) (`claims compare --among` ranks such runs on (a) and behaviour)"]))
