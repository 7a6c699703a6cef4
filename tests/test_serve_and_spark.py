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


def _start(cmd: list[str], port: int, log_path, env: dict | None = None) -> subprocess.Popen:
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, env=env or _env(), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        assert proc.poll() is None, log_path.read_text()
        assert time.time() < deadline, "server did not start"
        time.sleep(0.5)


def _stops_on_sigterm(proc: subprocess.Popen, port: int) -> None:
    """SIGTERM stops the whole server (the CLI and any uvicorn workers) within seconds."""
    stopped = time.time()
    proc.terminate()
    proc.wait(timeout=10)
    while not _port_is_free(port):
        assert time.time() - stopped < 10, "a server process still holds the port after SIGTERM"
        time.sleep(0.2)


def _split(rows: list[list], columns=("id", "text")) -> bytes:
    return json.dumps({"dataframe_split": {"columns": list(columns), "data": rows}}).encode()


def test_mlflow_models_serve_answers_and_rejects_bad_requests(tfidf_package, tmp_path):
    port = _free_port()
    proc = _start([sys.executable, "-m", "mlflow", "models", "serve", "-m", str(tfidf_package["package"]),
                   "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"], port, tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        good = _split([["a", TEXTS[4]], ["b", "The army withdrew from the base."]])
        status, body = _post(f"{base}/invocations", good)
        assert status == 200, body
        preds = json.loads(body)["predictions"]
        assert [p["id"] for p in preds] == ["a", "b"] and "p.withdrawal.yes" in preds[0]

        status, body = _post(f"{base}/invocations", _split([["x"]], columns=["body"]))
        assert 400 <= status < 500 and "text" in body, (status, body)

        status, body = _post(f"{base}/invocations", b'{"dataframe_split": {"columns": [')
        assert 400 <= status < 500 and body, (status, body)

        status, _ = _post(f"{base}/invocations", good)
        assert status == 200  # still serving after bad requests
        _stops_on_sigterm(proc, port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_claims_serve_bounds_requests(tfidf_package, tmp_path):
    port = _free_port()
    env = dict(_env(), CLAIMS_SERVE_MAX_BYTES="4000", CLAIMS_SERVE_MAX_UNITS="3", CLAIMS_SERVE_MAX_CHARS="500")
    proc = _start([sys.executable, "-m", "claims.cli", "serve", "--model", str(tfidf_package["package"]),
                   "--port", str(port)], port, tmp_path / "serve.log", env)
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        status, body = _post(url, _split([["a", TEXTS[4]]]))
        assert status == 200 and json.loads(body)["predictions"][0]["id"] == "a", body
        status, body = _post(url, _split([["a", "x" * 5000]]))
        assert status == 413 and json.loads(body)["error_code"] == "REQUEST_TOO_LARGE", (status, body)
        status, body = _post(url, _split([[str(i), "The army withdrew."] for i in range(4)]))
        assert status == 400 and "at most 3" in json.loads(body)["message"], (status, body)
        status, body = _post(url, _split([["a", "y" * 600]]))
        assert status == 400 and "more than 500 characters" in json.loads(body)["message"], (status, body)
        status, _ = _post(url, _split([["a", TEXTS[4]]]))
        assert status == 200  # still serving
        _stops_on_sigterm(proc, port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_claims_serve_replaces_lone_surrogates(tfidf_package, tmp_path):
    # "\ud800" is valid JSON but has no UTF-8 form: MLflow alone answers 400 (a UnicodeEncodeError).
    port = _free_port()
    proc = _start([sys.executable, "-m", "claims.cli", "serve", "--model", str(tfidf_package["package"]),
                   "--port", str(port)], port, tmp_path / "serve.log")
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        body = _split([["a\udfff", "JNIM said \ud800 it had seized the base."], ["b", "The army withdrew \U0001F600"]])
        assert b"\\ud800" in body and b"\\ud83d\\ude00" in body  # escaped as JSON clients send them
        status, answer = _post(url, body)
        assert status == 200 and "Traceback" not in answer, (status, answer)
        preds = json.loads(answer)["predictions"]
        assert [p["id"] for p in preds] == ["a\ufffd", "b"] and all(p["p.withdrawal.yes"] is not None for p in preds)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_mending_a_json_body_touches_only_lone_surrogates():
    from claims.predictor.server import _mend_json

    assert json.loads(_mend_json(b'{"inputs": ["a\\ud800", 1.5, null]}')) == {"inputs": ["a\ufffd", 1.5, None]}
    for untouched in (b'{"inputs": ["\\ud83d\\ude00"]}',  # a real pair: an emoji
                      b'{"inputs": ["\\\\ud800"]}',  # an escaped backslash: the six characters \ud800
                      b'{"inputs": ["\\ud800"'):  # not JSON: MLflow answers it as before
        assert _mend_json(untouched) is untouched


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


def test_spark_udf_matches_in_process_predictor(tfidf_package, tmp_path, monkeypatch):
    pytest.importorskip("pyspark")
    from claims.predictor.spark import predict_parquet, session

    # Fewer units per pyfunc call than rows per partition: the UDF's Arrow batches must be cut to fit.
    monkeypatch.setenv("CLAIMS_SERVE_MAX_UNITS", "40")

    texts = (TEXTS * 2)[:300]
    src = tmp_path / "in.parquet"
    pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts, "feed": range(len(texts))}).to_parquet(src)
    spark = session("local[2]")
    try:
        n = predict_parquet(tfidf_package["package"], str(src), str(tmp_path / "out"), spark=spark, partitions=3)
    finally:
        spark.stop()
    # part files in name order hold the rows in input order (pandas and pyarrow read them that way)
    got = pd.read_parquet(tmp_path / "out")
    assert n == len(texts) and len(list((tmp_path / "out").glob("part-*.parquet"))) == 3
    # spread over three tasks, written back in input order, other columns passed through
    assert list(got["id"]) == [f"r{i}" for i in range(len(texts))] and list(got["feed"]) == list(range(len(texts)))
    predictor = Predictor.load(tfidf_package["package"])
    expected = pd.DataFrame(predictor.labelled_rows(predictor.predict(texts)))
    for col in ("claim_type", "attribution"):
        assert [list(v) for v in got[col]] == list(expected[col])
    assert list(got["withdrawal"]) == list(expected["withdrawal"])
    p_cols = [c for c in expected.columns if c.startswith("p.")]
    np.testing.assert_allclose(got[p_cols].to_numpy(float), expected[p_cols].to_numpy(float), atol=1e-9)
