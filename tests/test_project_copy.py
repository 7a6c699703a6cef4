"""A copied project works on its own: commands find the project from the working directory, and a
copied MLflow store reads and writes the artifacts beside it, never the original's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from claims.training import tracking
from claims.util.paths import INSTALLED_ROOT, PROJECT_MARKERS, find_root


def _make_project(folder: Path) -> Path:
    for marker in PROJECT_MARKERS:
        (folder / marker).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(INSTALLED_ROOT / marker, folder / marker)
    return folder


def test_root_is_the_nearest_project_above_the_working_directory(tmp_path):
    project = _make_project(tmp_path / "copy")
    deep = project / "articles" / "new"
    deep.mkdir(parents=True)
    assert find_root(deep) == project.resolve()
    assert find_root(tmp_path, fallback=Path("/nowhere")) == Path("/nowhere")


def test_commands_started_in_a_copy_work_on_the_copy(tmp_path):
    project = _make_project(tmp_path / "copy")
    env = {k: v for k, v in os.environ.items() if k != "CLAIMS_ROOT"}
    out = subprocess.run([sys.executable, "-c", "from claims.util import paths; print(paths.ROOT); print(paths.DEFAULT_TRACKING_URI)"],
                         cwd=project / "labels", env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(project.resolve()), f"sqlite:///{project.resolve() / 'mlflow.db'}"]


def _log_one_run(folder: Path) -> tuple[str, str]:
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    tracking.open_store(uri)
    exp = tracking.experiment_id("conflict-claims", uri)
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_text("first", "note.txt")
    return uri, run.info.run_id


def test_a_copied_store_uses_the_artifacts_beside_it(tmp_path, monkeypatch):
    # Created from the folder above the project (MLflow's default experiment then lives there), and
    # in folders whose names need escaping in a file URI.
    monkeypatch.chdir(tmp_path)
    original = tmp_path / "my original ü"
    original.mkdir()
    _, run_id = _log_one_run(original)
    assert tracking.relocate_store(original / "mlflow.db") == []  # a store in place is left alone
    copy = tmp_path / "the copy"
    shutil.copytree(original, copy)

    uri = f"sqlite:///{copy / 'mlflow.db'}"
    tracking.open_store(uri)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("conflict-claims")
    assert exp.artifact_location == (copy / "mlartifacts" / "conflict-claims").resolve().as_uri()
    assert client.get_run(run_id).info.artifact_uri.startswith((copy / "mlartifacts").resolve().as_uri())
    assert client.download_artifacts(run_id, "note.txt", str(tmp_path)) and (tmp_path / "note.txt").read_text() == "first"

    # A new process would also write to the old run's relocated folder; in this one MLflow caches the
    # run's artifact repository, so the check is on a new run.
    with mlflow.start_run(experiment_id=exp.experiment_id):
        mlflow.log_text("second", "more.txt")
    assert list((copy / "mlartifacts").rglob("more.txt"))
    assert not list((original / "mlartifacts").rglob("more.txt"))  # the original is untouched
    assert tracking.relocate_store(copy / "mlflow.db") == []  # already in place: nothing to move
