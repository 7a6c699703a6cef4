"""Distributed batch inference: the packaged pyfunc as a Spark UDF, nothing of our own beyond the wiring.

Locally this runs Spark in local mode; on a cluster the same call runs on the executors, given
`--master` (or spark-submit's) and a model path every executor can read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def result_type(space):
    """Spark schema of the pyfunc's output columns."""
    from pyspark.sql.types import ArrayType, BooleanType, DoubleType, StringType, StructField, StructType

    fields = []
    for task in space.tasks():
        if task.type == "binary":
            fields.append(StructField(task.name, BooleanType()))
        elif task.type == "multiclass":
            fields.append(StructField(task.name, StringType()))
        else:
            fields.append(StructField(task.name, ArrayType(StringType())))
    fields += [StructField(f"p.{name}", DoubleType()) for name in space.column_names]
    return StructType(fields)


def session(master: str = "local[*]"):
    # Executors must run this interpreter (with the project installed), not the system python.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    import warnings

    from pyspark.sql import SparkSession

    # PySpark 4 warns on every pandas 3 check; predictions are checked against in-process ones in tests.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    spark = (SparkSession.builder.master(master).appName("conflict-claims")
             .config("spark.ui.enabled", "false").config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


ROW = "_claims_row"  # input order, kept through the repartition
BATCH_CONF = "spark.sql.execution.arrow.maxRecordsPerBatch"


def predict_parquet(model: Path, source: str, dest: str, master: str = "local[*]", spark=None,
                    partitions: int | None = None) -> int:
    """Read `source` (a parquet file or folder with a `text` column), write predictions to `dest`.

    The input is spread over `partitions` (default: Spark's default parallelism, one per core
    locally): a small file is otherwise read as one partition and predicted by one core. The output's
    part files, in name order, hold the rows of a single input file in its order (a folder of files:
    file by file, in the order Spark read them), with the input's other columns."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    from claims.corpus.labelspace import LabelSpace
    from claims.corpus.schema import load_schema
    from claims.predictor.predictor import resolve_model_folder
    from claims.predictor.serving import DEFAULT_MAX_UNITS, MAX_UNITS_ENV, env_limit
    from claims.util.errors import InputError, Problem

    # The schema is all the driver needs; the executors load the model.
    schema = result_type(LabelSpace(load_schema(resolve_model_folder(Path(model)) / "schema.yaml")))
    fields = schema.fields
    spark = spark or session(master)
    # The UDF hands the pyfunc one Arrow batch per call, 10,000 rows by default: more than the units
    # one pyfunc call accepts (CLAIMS_SERVE_MAX_UNITS, read here and, for the check, by each executor
    # from its own environment), so batches are cut to fit, for this job only.
    cap = env_limit(MAX_UNITS_ENV, DEFAULT_MAX_UNITS)
    previous = spark.conf.get(BATCH_CONF, None)
    if previous is None or not 0 < int(previous) <= cap:
        spark.conf.set(BATCH_CONF, str(cap))
    try:
        udf = mlflow.pyfunc.spark_udf(spark, model_uri=str(Path(model).resolve()), env_manager="local",
                                      result_type=schema)
        df = spark.read.parquet(source)
        if "text" not in df.columns:
            raise InputError(Problem(source, None, "text", f"no 'text' column; the data has columns {df.columns}"))
        n = partitions or spark.sparkContext.defaultParallelism
        # Ranges of the row number, so each partition holds consecutive rows and a sort within
        # partitions restores the order: a global sort would run the model twice (once to sample).
        spread = df.withColumn(ROW, F.monotonically_increasing_id()).repartitionByRange(n, ROW)
        pred = spread.withColumn("_pred", udf(F.struct("text")))
        names = {f.name for f in fields}
        out = pred.select(F.col(ROW), *[F.col(c) for c in df.columns if c not in names],
                          *[F.col(f"_pred.`{f.name}`").alias(f.name) for f in fields])
        out.sortWithinPartitions(ROW).drop(ROW).write.mode("overwrite").parquet(dest)
    finally:
        if previous is None:
            spark.conf.unset(BATCH_CONF)
        else:
            spark.conf.set(BATCH_CONF, previous)
    return spark.read.parquet(dest).count()

