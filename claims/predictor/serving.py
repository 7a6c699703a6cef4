"""The MLflow pyfunc face of a packaged predictor, for `mlflow models predict/serve` and Spark."""

from __future__ import annotations

import mlflow.pyfunc


class ClaimsPyfunc(mlflow.pyfunc.PythonModel):
    """Input: a DataFrame with a `text` column (optional `id`, and `context`: the unit before it in
    its article). Output: labels and probabilities."""

    def load_context(self, context):
        from claims.predictor.predictor import Predictor

        self.predictor = Predictor.load(context.artifacts["model"])

    def predict(self, context, model_input, params=None):
        import pandas as pd
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        df = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if "text" not in df.columns:
            raise MlflowException(f"input needs a 'text' column; it has {list(df.columns)}",
                                  error_code=INVALID_PARAMETER_VALUE)
        clean = lambda col: ["" if t is None or (isinstance(t, float) and t != t) else str(t) for t in df[col]]  # noqa: E731
        contexts = clean("context") if "context" in df.columns else None
        out = pd.DataFrame(self.predictor.labelled_rows(self.predictor.predict(clean("text"), contexts)), index=df.index)
        if "id" in df.columns:
            out.insert(0, "id", df["id"])
        return out
