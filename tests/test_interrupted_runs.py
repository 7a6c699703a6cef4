"""A run whose process dies is never left RUNNING: SIGTERM marks it FAILED at once, and a run left
RUNNING by a killed process is marked FAILED by the next `claims train`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import weakref

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from claims.training import tracking
from claims.util.paths import CONFIGS_DIR


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_running_run_of_a_dead_process_is_marked_failed(store):
    tracking.open_store(store)
    exp = tracking.experiment_id("conflict-claims", store)
    with mlflow.start_run(experiment_id=exp, tags={**tracking.process_tags(), "claims.pid": str(_dead_pid())}) as dead:
        pass
    with mlflow.start_run(experiment_id=exp, tags=tracking.process_tags()) as alive:
        pass
    client = MlflowClient(store)
    for run in (dead, alive):
        client.update_run(run.info.run_id, status="RUNNING")
    assert tracking.fail_stale_runs(store) == [dead.info.run_id]
    assert client.get_run(dead.info.run_id).info.status == "FAILED"
    assert client.get_run(alive.info.run_id).info.status == "RUNNING"  # our own process is alive


def test_sigterm_marks_the_running_run_failed(store, tmp_path):
    args = [sys.executable, "-m", "claims.cli", "train", str(CONFIGS_DIR / "finetune.yaml"), "--tracking-uri", store,
            "--quiet", "--no-package", "--set", "train.epochs=200", "--set", "data.max_articles=3",
            "--set", "data.max_units_per_doc=10", "--set", "eval.tune_thresholds=false", "--set", "eval.max_folds=1",
            "--set", "eval.test_annotations=[]", "--set", "train.max_length=16"]
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    # Output to a file, not a pipe nobody reads: a full pipe would block the child in a write, and
    # then it could not act on the signal in time.
    log = open(tmp_path / "train.log", "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp)})
    client = MlflowClient(store)
    deadline = time.time() + 120
    running = []
    while time.time() < deadline and not running:
        time.sleep(1)
        try:
            running = [r for e in client.search_experiments() for r in client.search_runs(
                [e.experiment_id], filter_string="attributes.status = 'RUNNING'")]
        except Exception:  # the store is being created
            running = []
    assert running, (tmp_path / "train.log").read_text()[-2000:] if proc.poll() is not None else "no run started"
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    log.close()
    statuses = {r.info.status for e in client.search_experiments() for r in client.search_runs([e.experiment_id])}
    assert statuses == {"FAILED"}
    assert not list(tmp.iterdir())  # temporary folders are removed while unwinding


def _signal_inside_a_del():
    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            sum(range(1000))  # the handler runs here, inside the finalizer

    Finalized()  # dropped at once


def _signal_inside_a_weakref_callback():
    class Target:
        pass

    target = Target()
    ref = weakref.ref(target, lambda _: (os.kill(os.getpid(), signal.SIGTERM), sum(range(1000))))
    del target
    return ref


def _signal_inside_a_collected_generator():
    def gen():
        try:
            yield 1
        finally:
            os.kill(os.getpid(), signal.SIGTERM)
            sum(range(1000))

    g = gen()
    next(g)
    del g


def _signal_inside_a_broad_except():
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    except Exception:  # noqa: BLE001 - the point of the test
        pass


@pytest.mark.parametrize("where", [_signal_inside_a_del, _signal_inside_a_weakref_callback,
                                   _signal_inside_a_collected_generator, _signal_inside_a_broad_except])
def test_sigterm_where_python_would_drop_or_swallow_it_still_stops_the_run(where):
    """Raised inside a `__del__` the garbage collector calls, an exception is printed and dropped,
    and training went on (seen in CI); an `except Exception` must not take it for an error either."""
    before = signal.getsignal(signal.SIGTERM), sys.unraisablehook
    with pytest.raises(tracking.Terminated):
        with tracking.fail_on_sigterm():
            where()
            deadline = time.time() + 5
            while time.time() < deadline:
                time.sleep(0.01)
    assert (signal.getsignal(signal.SIGTERM), sys.unraisablehook) == before  # put back on the way out


def test_a_second_sigterm_does_not_cut_the_cleanup_short():
    cleaned = []
    with pytest.raises(tracking.Terminated):
        with tracking.fail_on_sigterm():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # while unwinding: ignored
                time.sleep(0.2)
                cleaned.append(True)
    assert cleaned == [True]
