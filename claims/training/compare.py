"""Read the tracking store: the latest finished parent run of each config, best first."""

from __future__ import annotations

import numpy as np
import pandas as pd

from claims.corpus.labelspace import LabelSpace
from claims.corpus.schema import Schema
from claims.training.evaluation.metrics import headline_names

# (metric prefix, column prefix): (a) and (b) choose the default, (d) is only shown.
CHOOSING = [("cv", "a"), ("country", "b")]
SHOWN = [("test", "d")]


def latest_runs(experiment: str, schema: Schema, configs: list[str] | None = None) -> pd.DataFrame:
    """`configs`: rank only these configs' runs, on the parts all of them have (the main job runs no
    (b)), rather than ranking a run that lacks a part last."""
    import mlflow

    runs = mlflow.search_runs(
        experiment_names=[experiment],
        filter_string="tags.`claims.role` = 'parent' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    names = headline_names(LabelSpace(schema))
    cols = [f"{short}.{n}" for _, short in CHOOSING + SHOWN for n in names]
    # Spread over seeds, for stochastic families run with eval.seeds > 1 (NaN otherwise).
    stds = [f"{short}.{n}_std" for _, short in CHOOSING for n in names]
    columns = ["config", "family", *cols, *stds, "seeds", "behaviour", "score", "seconds", "run_id"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    runs = runs.drop_duplicates("tags.claims.config", keep="first")
    if configs is not None:
        runs = runs[runs["tags.claims.config"].isin(configs)]
        if runs.empty:
            return pd.DataFrame(columns=columns)
    nan = pd.Series(float("nan"), index=runs.index)
    table = pd.DataFrame({
        "config": runs["tags.claims.config"], "family": runs["tags.claims.family"],
        **{f"{short}.{n}": runs.get(f"metrics.{prefix}.{n}", nan) for prefix, short in CHOOSING + SHOWN for n in names},
        **{f"{short}.{n}_std": runs.get(f"metrics.{prefix}.{n}_std", nan) for prefix, short in CHOOSING for n in names},
        "seeds": runs.get("metrics.cv.seeds", pd.Series(1.0, index=runs.index)).fillna(1.0),
        "behaviour": runs.get("metrics.behaviour.pass_rate", nan),
        "seconds": runs.get("metrics.time.total_seconds"), "run_id": runs["run_id"],
    })
    table["score"] = score(table, names, common=configs is not None)
    return table[columns].sort_values("score", ascending=False).reset_index(drop=True)


def _parts(table: pd.DataFrame, names: list[str], common: bool) -> dict[str, pd.Series]:
    parts = {short: table[[f"{short}.{n}" for n in names]].mean(axis=1, skipna=False) for _, short in CHOOSING}
    parts["behaviour"] = table["behaviour"]
    keep = (lambda v: not v.isna().any()) if common else (lambda v: not v.isna().all())
    return {k: v for k, v in parts.items() if keep(v)}


def score_parts(table: pd.DataFrame, names: list[str], common: bool = False) -> list[str]:
    """Which of "a", "b", "behaviour" the score of `table` is made of."""
    return list(_parts(table, names, common))


def score(table: pd.DataFrame, names: list[str], common: bool = False) -> pd.Series:
    """The default-model rule, from (a), (b) and the behavioural suites only (never the test split):
    the mean of three parts, equally weighted: (a)'s mean headline F1, (b)'s mean headline F1 and
    the behavioural pass rate. A part that no run has is left out; a run that lacks a part others
    have ranks last, unless `common`: then a part that any run lacks is left out for all."""
    present = pd.DataFrame(_parts(table, names, common), index=table.index)
    if present.empty:
        return pd.Series(np.nan, index=table.index)
    return present.mean(axis=1, skipna=False).fillna(-1.0)
