"""MLflow's own tools on the package: `mlflow models predict`, `mlflow models serve`, Spark UDF."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from claims.util.paths import ANNOTATIONS_DIR
from claims.predictor.predictor import Predictor
from claims.corpus.annotations import read_all

TEXTS = [r.text for r in read_all(sorted(ANNOTATIONS_DIR.glob("*.jsonl")))[0]]


def _env():
    env = dict(os.environ, HF_HUB_OFFLINE="1", MLFLOW_ALLOW_PICKLE_DESERIALIZATION="false")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def test_mlflow_models_predict(tfidf_package, tmp_path):
    src = tmp_path / "in.json"
    src.write_text(json.dumps({"dataframe_split": {"columns": ["text"], "data": [[t] for t in TEXTS[:5]]}}))
    out = tmp_path / "out.json"
    subprocess.run([sys.executable, "-m", "mlflow", "models", "predict", "-m", str(tfidf_package["package"]),
                    "-i", str(src), "-t", "json", "-o", str(out), "--env-manager", "local"],
                   check=True, env=_env(), capture_output=True, timeout=180)
    predictions = json.loads(out.read_text())["predictions"]
    assert len(predictions) == 5 and "claim_type" in predictions[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_mlflow_models_serve_answers_and_rejects_bad_requests(tfidf_package, tmp_path):
    port = _free_port()
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", str(tfidf_package["package"]),
                             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
                            env=_env(), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.time() < deadline, "server did not start"
            time.sleep(0.5)
        good = json.dumps({"dataframe_split": {"columns": ["id", "text"],
                                               "data": [["a", TEXTS[4]], ["b", "The army withdrew from the base."]]}})
        status, body = _post(f"{base}/invocations", good.encode())
        assert status == 200, body
        preds = json.loads(body)["predictions"]
        assert [p["id"] for p in preds] == ["a", "b"] and "p.withdrawal.yes" in preds[0]

        status, body = _post(f"{base}/invocations",
                             json.dumps({"dataframe_split": {"columns": ["body"], "data": [["x"]]}}).encode())
        assert 400 <= status < 500 and "text" in body, (status, body)

        status, body = _post(f"{base}/invocations", b'{"dataframe_split": {"columns": [')
        assert 400 <= status < 500 and body, (status, body)

        status, _ = _post(f"{base}/invocations", good.encode())
        assert status == 200  # still serving after bad requests

        # SIGTERM stops the whole server (the CLI and its uvicorn workers) within seconds.
        stopped = time.time()
        proc.terminate()
        proc.wait(timeout=10)
        while not _port_is_free(port):
            assert time.time() - stopped < 10, "a server process still holds the port after SIGTERM"
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        log.close()


def _port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        # SO_REUSEADDR: connections in TIME_WAIT do not count, a listening socket still does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_spark_udf_matches_in_process_predictor(tfidf_package, tmp_path):
    pytest.importorskip("pyspark")
    from claims.predictor.spark import predict_parquet, session

    texts = (TEXTS * 2)[:300]
    src = tmp_path / "in.parquet"
    pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts}).to_parquet(src)
    spark = session("local[2]")
    try:
        n = predict_parquet(tfidf_package["package"], str(src), str(tmp_path / "out"), spark=spark)
        got = spark.read.parquet(str(tmp_path / "out")).toPandas().set_index("id").loc[[f"r{i}" for i in range(len(texts))]]
    finally:
        spark.stop()
    assert n == len(texts)
    predictor = Predictor.load(tfidf_package["package"])
    expected = pd.DataFrame(predictor.labelled_rows(predictor.predict(texts)))
    for col in ("claim_type", "attribution"):
        assert [list(v) for v in got[col]] == list(expected[col])
    assert list(got["withdrawal"]) == list(expected["withdrawal"])
    p_cols = [c for c in expected.columns if c.startswith("p.")]
    np.testing.assert_allclose(got[p_cols].to_numpy(float), expected[p_cols].to_numpy(float), atol=1e-9)
