"""Where the project's files live.

The package is installed in editable mode from the repository, so defaults are anchored at the
repository root rather than the working directory: `claims validate` works from any folder.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("CLAIMS_ROOT", Path(__file__).resolve().parents[2]))
SCHEMA_PATH = ROOT / "labels" / "schema.yaml"
ANNOTATIONS_DIR = ROOT / "labels" / "annotations"
# The sealed test split's annotations: outside every training glob, read only by evaluation.
SEALED_DIR = ROOT / "labels" / "sealed"
# Both independent annotations of every written unit, before adjudication.
DOUBLE_DIR = ROOT / "labels" / "double"
SEEDS_DIR = ROOT / "seeds"
CONFIGS_DIR = ROOT / "configs"
MODELS_DIR = ROOT / "models"
CACHE_DIR = ROOT / ".cache"
DEFAULT_TRACKING_URI = f"sqlite:///{ROOT / 'mlflow.db'}"


def resolve(path: str | Path) -> Path:
    """Resolve a path from a config or the command line: absolute as is, else from the repo root."""
    p = Path(path)
    return p if p.is_absolute() else ROOT / p
