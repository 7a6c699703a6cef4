"""The MLflow pyfunc face of a packaged predictor, for `mlflow models predict/serve` and Spark."""

from __future__ import annotations

import os

import mlflow.pyfunc
import pandas as pd

# Work per request is bounded by the number of units and their length, so a request that outlives
# the server's timeout cannot keep a worker busy for long. Both apply under `mlflow models serve`
# and `claims serve` alike; set them in the server's environment.
MAX_UNITS_ENV = "CLAIMS_SERVE_MAX_UNITS"
MAX_CHARS_ENV = "CLAIMS_SERVE_MAX_CHARS"
DEFAULT_MAX_UNITS = 2048
DEFAULT_MAX_CHARS = 20_000


def env_limit(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


class ClaimsPyfunc(mlflow.pyfunc.PythonModel):
    """Input: a DataFrame with a `text` column (optional `id`, `context`: the unit before it in its
    article, and `opening`: its article's opening, claims.corpus.opening). Output: labels and probabilities."""

    def load_context(self, context):
        from claims.predictor.predictor import Predictor

        self.predictor = Predictor.load(context.artifacts["model"])

    # The DataFrame hint is one MLflow infers no schema from: inputs are still checked against the
    # package's explicit signature, and MLflow stops advising (in colour codes) to add type hints.
    def predict(self, context, model_input: pd.DataFrame, params=None):
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        from claims.predictor.inputs import replace_lone_surrogates

        df = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if "text" not in df.columns:
            raise MlflowException(f"input needs a 'text' column; it has {list(df.columns)}",
                                  error_code=INVALID_PARAMETER_VALUE)
        max_units = env_limit(MAX_UNITS_ENV, DEFAULT_MAX_UNITS)
        if len(df) > max_units:
            raise MlflowException(f"{len(df)} units in one request; at most {max_units} ({MAX_UNITS_ENV})",
                                  error_code=INVALID_PARAMETER_VALUE)
        # A caller's own object-dtype DataFrame may hold lone surrogates, which the tokenizers refuse.
        clean = lambda col: ["" if t is None or (isinstance(t, float) and t != t)  # noqa: E731
                             else replace_lone_surrogates(str(t)) for t in df[col]]
        texts = clean("text")
        max_chars = env_limit(MAX_CHARS_ENV, DEFAULT_MAX_CHARS)
        too_long = [i for i, t in enumerate(texts) if len(t) > max_chars]
        if too_long:
            raise MlflowException(f"unit {too_long[0]} has more than {max_chars} characters ({MAX_CHARS_ENV})",
                                  error_code=INVALID_PARAMETER_VALUE)
        side = lambda col: clean(col) if col in df.columns else None  # noqa: E731
        out = pd.DataFrame(self.predictor.labelled_rows(self.predictor.predict(texts, side("context"), side("opening"))),
                           index=df.index)
        if "id" in df.columns:
            out.insert(0, "id", df["id"])
        return out
