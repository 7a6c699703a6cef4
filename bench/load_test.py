"""Load test of `claims serve` on 127.0.0.1: concurrent clients, good and malformed requests.

Bounded in time and requests. Reports latency percentiles of the good requests, the status codes
of each kind of request, and whether every good answer equals in-process prediction of the same
units. Writes its own section of bench/RESULTS.md.

    python bench/load_test.py [--model models/default] [--clients 16] [--seconds 60]
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import typer

from claims.corpus.annotations import read_all
from claims.predictor.predictor import Predictor
from claims.util.paths import ANNOTATIONS_DIR, ROOT
from sections import write_section

START, END = "<!-- load-test:start -->", "<!-- load-test:end -->"
TASKS = ("claim_type", "attribution", "withdrawal")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, data = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, data = e.code, e.read()
    except OSError:
        status, data = 0, b""
    return status, data, time.perf_counter() - started


def _split(rows: list[list]) -> bytes:
    return json.dumps({"dataframe_split": {"columns": ["id", "text"], "data": rows}}).encode()


def _requests(texts: list[str], rng: random.Random, max_units: int):
    """One request: (kind, body, ids or None)."""
    kind = rng.choices(["good", "bad_json", "no_text_column", "too_many_units", "too_large"],
                       weights=[70, 8, 8, 7, 7])[0]
    if kind == "good":
        ids = rng.sample(range(len(texts)), rng.randint(1, 16))
        return kind, _split([[str(i), texts[i]] for i in ids]), ids
    if kind == "bad_json":
        return kind, b'{"dataframe_split": {"columns": ["text"], "data": [[', None
    if kind == "no_text_column":
        return kind, json.dumps({"dataframe_split": {"columns": ["body"], "data": [["x"]]}}).encode(), None
    if kind == "too_many_units":
        return kind, _split([[str(i), "The army withdrew."] for i in range(max_units + 1)]), None
    return kind, b'{"dataframe_split": {"columns": ["text"], "data": [["' + b"x" * (9 * 1024 * 1024) + b'"]]}}', None


def main(
    model: Path = typer.Option(ROOT / "models" / "default", help="Package to serve."),
    clients: int = typer.Option(16, min=1, max=64),
    seconds: float = typer.Option(60.0, min=1, max=600),
    max_requests: int = typer.Option(20_000, help="Stop after this many requests in all."),
    out: Path = typer.Option(ROOT / "bench" / "RESULTS.md"),
) -> None:
    records, _ = read_all(sorted(ANNOTATIONS_DIR.glob("*.jsonl")))  # training texts, never the test split
    texts = [r.text for r in records][:2000]
    predictor = Predictor.load(model)
    expected = predictor.labelled_rows(predictor.predict(texts))
    max_units = 64
    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", CLAIMS_SERVE_MAX_UNITS=str(max_units))
    server = subprocess.Popen([sys.executable, "-m", "claims.cli", "serve", "--model", str(model), "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while _post(f"{url}/invocations", _split([["0", texts[0]]]))[0] != 200:
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.5)
        lock, results, sent = threading.Lock(), [], [0]
        stop_at = time.time() + seconds

        def client(seed: int) -> None:
            rng = random.Random(seed)
            while time.time() < stop_at:
                with lock:
                    if sent[0] >= max_requests:
                        return
                    sent[0] += 1
                kind, body, ids = _requests(texts, rng, max_units)
                status, data, latency = _post(f"{url}/invocations", body)
                same = None
                if kind == "good" and status == 200:
                    got = json.loads(data)["predictions"]
                    same = all(all(g[t] == expected[i][t] for t in TASKS) for g, i in zip(got, ids))
                with lock:
                    results.append((kind, status, latency, same))

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        started = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.time() - started
    finally:
        server.terminate()
        server.wait(timeout=30)

    good = np.array([lat for kind, status, lat, _ in results if kind == "good" and status == 200])
    codes: dict[str, Counter] = {}
    for kind, status, _, _ in results:
        codes.setdefault(kind, Counter())[status] += 1
    mismatched = sum(1 for *_, same in results if same is False)
    compared = sum(1 for *_, same in results if same is not None)
    lines = [START, "## Load test of `claims serve`", "",
             f"Made by `python bench/load_test.py` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC: "
             f"{clients} concurrent clients for {elapsed:.0f} s against 127.0.0.1, package `{model.name}`, "
             f"{len(os.sched_getaffinity(0))} CPU cores, {len(results)} requests "
             f"({len(results) / elapsed:.1f} per second). Good requests carry 1-16 training units; "
             f"the server ran with `CLAIMS_SERVE_MAX_UNITS={max_units}`.", "",
             "| request kind | count | status codes |", "|---|---|---|"]
    for kind, c in sorted(codes.items()):
        lines.append(f"| {kind} | {sum(c.values())} | " + ", ".join(f"{s}: {n}" for s, n in sorted(c.items())) + " |")
    if len(good):
        lines += ["", f"Latency of good requests: p50 {np.percentile(good, 50) * 1000:.0f} ms, "
                      f"p95 {np.percentile(good, 95) * 1000:.0f} ms, max {good.max() * 1000:.0f} ms."]
    lines += [f"Answers equal to in-process prediction: {compared - mismatched} of {compared} good requests."]
    if codes.get("too_large", Counter()).get(0):
        lines += ["", "Status 0 means the connection closed under the client: the server answers 413 from the "
                      "declared length without reading the 9 MiB body and closes, while the client is still "
                      "sending it. (The 413 answer itself is asserted in tests/test_serve_and_spark.py with a "
                      "body small enough to be sent whole.)"]
    lines.append(END)
    write_section(out, START, END, "\n".join(lines))
    typer.echo("\n".join(lines))


if __name__ == "__main__":
    sys.exit(typer.run(main))
