"""Read the tracking store: the latest finished parent run of each config, best first."""

from __future__ import annotations

import pandas as pd

from claims.training.evaluation.metrics import headline_names
from claims.corpus.labelspace import LabelSpace
from claims.corpus.schema import Schema


def latest_runs(experiment: str, schema: Schema) -> pd.DataFrame:
    import mlflow

    runs = mlflow.search_runs(
        experiment_names=[experiment],
        filter_string="tags.`claims.role` = 'parent' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    names = headline_names(LabelSpace(schema))
    columns = ["config", "family", *names, "behaviour", "score", "seconds", "run_id"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    runs = runs.drop_duplicates("tags.claims.config", keep="first")
    table = pd.DataFrame({
        "config": runs["tags.claims.config"], "family": runs["tags.claims.family"],
        **{n: runs.get(f"metrics.cv.{n}") for n in names},
        "behaviour": runs.get("metrics.behaviour.pass_rate", pd.Series(float("nan"), index=runs.index)),
        "seconds": runs.get("metrics.time.total_seconds"), "run_id": runs["run_id"],
    })
    table["score"] = score(table, names)
    return table[columns].sort_values("score", ascending=False).reset_index(drop=True)


def score(table: pd.DataFrame, names: list[str]) -> pd.Series:
    """The default-model rule: the mean of the per-task CV headline metrics and the behavioural pass
    rate, equally weighted. Without behavioural results anywhere, the CV mean alone; a run that lacks
    them while others have them ranks last."""
    if table["behaviour"].isna().all():
        return table[names].mean(axis=1, skipna=False)
    return table[[*names, "behaviour"]].mean(axis=1, skipna=False).fillna(-1.0)
