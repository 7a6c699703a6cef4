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
    from pyspark.sql import SparkSession

    return (SparkSession.builder.master(master).appName("conflict-claims")
            .config("spark.ui.enabled", "false").config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate())


def predict_parquet(model: Path, source: str, dest: str, master: str = "local[*]", spark=None) -> int:
    """Read `source` (a parquet file or folder with a `text` column), write predictions to `dest`."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    from claims.predictor.predictor import Predictor

    space = Predictor.load(model, runtime="fp32").space  # reads the schema only; cheap
    spark = spark or session(master)
    udf = mlflow.pyfunc.spark_udf(spark, model_uri=str(Path(model).resolve()), env_manager="local",
                                  result_type=result_type(space))
    df = spark.read.parquet(source)
    if "text" not in df.columns:
        from claims.util.errors import InputError, Problem

        raise InputError(Problem(source, None, "text", f"no 'text' column; the data has columns {df.columns}"))
    pred = df.withColumn("_pred", udf(F.struct("text")))
    cols = [F.col(f"_pred.`{f.name}`").alias(f.name) for f in result_type(space).fields]
    out = pred.select(*[F.col(c) for c in df.columns], *cols)
    out.write.mode("overwrite").parquet(dest)
    return spark.read.parquet(dest).count()
