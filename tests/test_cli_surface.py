"""What a user sees of the command line: help with an example, and `claims compare` with spread."""

import json

import mlflow
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from claims.cli import app
from claims.training import tracking

runner = CliRunner()
COMMANDS = sorted(get_command(app).commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_an_example(command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"Example: claims {command}" in result.output


def _log_parent(store: str, config: str, metrics: dict[str, float]) -> None:
    tracking.open_store(store)
    exp = tracking.experiment_id("conflict-claims", store)
    with mlflow.start_run(experiment_id=exp, run_name=config,
                          tags={"claims.role": "parent", "claims.config": config, "claims.family": "x.v1"}):
        mlflow.log_metrics(metrics)


def test_compare_shows_mean_and_std_only_where_there_were_several_seeds(store):
    names = ("claim_type.macro_f1", "attribution.macro_f1", "withdrawal.f1")
    base = {f"{p}.{n}": 0.5 for p in ("cv", "country", "test") for n in names}
    base.update({"behaviour.pass_rate": 0.5, "time.total_seconds": 10.0})
    _log_parent(store, "one_seed", {**base, "cv.seeds": 1})
    _log_parent(store, "three_seeds", {**base, "cv.seeds": 3, "cv.claim_type.macro_f1_std": 0.0123,
                                      **{f"{p}.{n}_std": 0.02 for p in ("cv", "country") for n in names[1:]},
                                      "country.claim_type.macro_f1_std": 0.02})
    result = runner.invoke(app, ["compare", "--tracking-uri", store], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    [one] = [line for line in result.output.splitlines() if "one_seed" in line]
    [three] = [line for line in result.output.splitlines() if "three_seeds" in line]
    assert "±" not in one and "0.500±0.012" in three and "mean±std over seeds" in result.output
    rows = {r["config"]: r for r in json.loads(runner.invoke(app, ["compare", "--tracking-uri", store, "--json"]).output)}
    assert rows["three_seeds"]["a.claim_type.macro_f1_std"] == pytest.approx(0.0123)
    assert rows["one_seed"]["a.claim_type.macro_f1_std"] is None and rows["three_seeds"]["seeds"] == 3


@pytest.mark.parametrize("columns", [90, 160])
def test_compare_fits_the_terminal_without_cutting_figures(store, columns):
    names = ("claim_type.macro_f1", "attribution.macro_f1", "withdrawal.f1")
    spreads = {f"{p}.{n}_std": 0.0123 for p in ("cv", "country") for n in names}
    _log_parent(store, "seeded_xyz", {**{f"{p}.{n}": 0.5 for p in ("cv", "country", "test") for n in names},
                                               **spreads, "cv.seeds": 3, "behaviour.pass_rate": 0.5,
                                               "time.total_seconds": 10.0})
    result = runner.invoke(app, ["compare", "--tracking-uri", store], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= columns
    [row] = [line for line in lines if "seeded_xyz" in line]  # the row, not the store path
    assert "0.500±0.012" in row and "…" not in result.output
