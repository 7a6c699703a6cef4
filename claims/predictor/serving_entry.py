"""Models-from-code entry point: MLflow runs this file to build the pyfunc, so nothing is pickled."""

from mlflow.models import set_model

from claims.predictor.serving import ClaimsPyfunc

set_model(ClaimsPyfunc())
