"""Where does `claims predict-spark` start to pay? Spark against in-process `claims predict` on the
same parquet files, every figure measured in this one run on this machine.

    python bench/spark_speed.py [--model models/tfidf_linear] [--rows 2000 --rows 20000 ...]

For each size, the same parquet input (training sentences, repeated and shuffled) is predicted
in-process (`predict_to_file`: one process, the package loaded once) and by `predict_parquet` on a
local Spark session with one partition per core. Spark's session start (the JVM) is timed once and
reported apart, since a cluster job pays it once for any number of files. Results are printed and
written between the spark-speed markers of bench/RESULTS.md.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import typer

from claims.predictor.batch import predict_to_file
from claims.predictor.predictor import Predictor
from claims.util.paths import MODELS_DIR, ROOT
from predict_speed import sentences
from sections import write_section

START, END = "<!-- spark-speed:start -->", "<!-- spark-speed:end -->"
RESULTS = ROOT / "bench" / "RESULTS.md"


def main(model: Path = typer.Option(MODELS_DIR / "tfidf_linear"),
         rows: list[int] = typer.Option([2000, 10000, 40000, 100000], "--rows"),
         write: bool = typer.Option(True, help="Write the section of bench/RESULTS.md.")) -> None:
    from claims.predictor.spark import predict_parquet, session

    cores = os.cpu_count()
    t0 = time.perf_counter()
    spark = session(f"local[{cores}]")
    spark.range(1).count()
    start_s = time.perf_counter() - t0
    predictor = Predictor.load(model)
    table = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # The first job starts the Python workers and loads the model in each; the UDF keeps it
            # for later jobs, as a long-running cluster job would. Timed apart, like the JVM start.
            warm = Path(tmp) / "warm.parquet"
            pd.DataFrame({"id": ["w0"], "text": sentences(1)}).to_parquet(warm)
            t = time.perf_counter()
            predict_parquet(model, str(warm), str(Path(tmp) / "warm_out"), spark=spark)
            warm_s = time.perf_counter() - t
            for n in rows:
                src = Path(tmp) / f"in{n}.parquet"
                pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": sentences(n)}).to_parquet(src)
                t = time.perf_counter()
                predict_to_file(predictor, [str(src)], Path(tmp) / f"out{n}.parquet")
                local_s = time.perf_counter() - t
                t = time.perf_counter()
                got = predict_parquet(model, str(src), str(Path(tmp) / f"spark{n}"), spark=spark)
                spark_s = time.perf_counter() - t
                assert got == n, (got, n)
                table.append((n, local_s, spark_s))
                print(f"{n} rows: in-process {local_s:.1f} s, spark {spark_s:.1f} s", flush=True)
    finally:
        spark.stop()
    lines = [START, "## Spark against in-process prediction", "",
             f"`python bench/spark_speed.py --model {model.relative_to(ROOT) if model.is_absolute() else model}`, "
             f"{cores} cores, `local[{cores}]` with one partition per core. The same parquet file is predicted "
             f"in-process (`claims predict`, one process) and by `claims predict-spark`. Spark's session start "
             f"took {start_s:.1f} s and a first one-row job (Python workers started, the model loaded in each) "
             f"{warm_s:.1f} s; neither is counted below, since a long job pays them once.", "",
             "| rows | in-process (s) | Spark (s) | in-process rows/s | Spark rows/s | Spark / in-process time |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {n:,} | {a:.1f} | {b:.1f} | {n / a:,.0f} | {n / b:,.0f} | {b / a:.2f} |" for n, a, b in table]
    faster = [n for n, a, b in table if b < a]
    lines += ["", (f"On this machine Spark is faster from about {min(faster):,} rows on (the smallest size measured "
                   "where it wins); below that, its per-job overhead dominates." if faster else
                   "Spark was not faster at any size measured here: on a machine this small, its per-job "
                   "overhead and the copy of every row between the JVM and Python outweigh the second core. "
                   "It pays on a cluster, where the rows are spread over many machines.")]
    lines.append(END)
    print("\n".join(lines))
    if write:
        write_section(RESULTS, START, END, "\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
