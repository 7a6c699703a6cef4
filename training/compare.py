"""Read the tracking store: the latest finished parent run of each config, best first."""

from __future__ import annotations

import pandas as pd

from training.evaluation.metrics import headline_names
from training.labelspace import LabelSpace
from training.schema import Schema


def latest_runs(experiment: str, schema: Schema) -> pd.DataFrame:
    import mlflow

    runs = mlflow.search_runs(
        experiment_names=[experiment],
        filter_string="tags.`claims.role` = 'parent' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    names = headline_names(LabelSpace(schema))
    columns = ["config", "family", *names, "seconds", "run_id"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    runs = runs.drop_duplicates("tags.claims.config", keep="first")
    table = pd.DataFrame({
        "config": runs["tags.claims.config"], "family": runs["tags.claims.family"],
        **{n: runs.get(f"metrics.cv.{n}") for n in names},
        "seconds": runs.get("metrics.time.total_seconds"), "run_id": runs["run_id"],
    })
    table["_score"] = table[names].mean(axis=1, skipna=False)
    return table.sort_values("_score", ascending=False).drop(columns="_score").reset_index(drop=True)
