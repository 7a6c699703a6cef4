"""Where the project's files live.

The project a command works on is found from the working directory, like git finds its repository:
the nearest folder at or above it that holds a project. So `claims validate` works from any
subfolder, and a copy of the project folder works on its own copy, never on the checkout the package
was installed from. Paths named on the command line are the user's and stay relative to the working
directory; paths inside configs and the manifest are the project's and resolve from its root.
"""

from __future__ import annotations

import os
from pathlib import Path

INSTALLED_ROOT = Path(__file__).resolve().parents[2]
# The code that runs, which a package copies: the installed code, whichever project is worked on.
CODE_DIR = INSTALLED_ROOT / "claims"
# What makes a folder a project: its label schema and its manifest.
PROJECT_MARKERS = (Path("labels") / "schema.yaml", Path("labels") / "articles.yaml")


def find_root(start: Path, fallback: Path = INSTALLED_ROOT) -> Path:
    """The nearest folder at or above `start` that holds a project, else `fallback`."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if all((folder / marker).is_file() for marker in PROJECT_MARKERS):
            return folder
    return fallback


ROOT = Path(os.environ["CLAIMS_ROOT"]).resolve() if os.environ.get("CLAIMS_ROOT") else find_root(Path.cwd())
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
    """Resolve a path from a config or the manifest: absolute as is, else from the project root."""
    p = Path(path)
    return p if p.is_absolute() else ROOT / p
