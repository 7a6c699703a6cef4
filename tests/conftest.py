"""Shared fixtures. Everything builds on the real schema, corpus and configs, shrunk for speed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from claims.util.paths import ANNOTATIONS_DIR, SEEDS_DIR  # noqa: E402
from claims.corpus.schema import load_schema  # noqa: E402

SEED_DOC = "003_d1c351d7bc465a1e"


@pytest.fixture(scope="session")
def schema():
    return load_schema()


@pytest.fixture
def mini_corpus(tmp_path: Path) -> dict[str, Path]:
    """One real seed and its real annotation file, copied to a temporary folder.

    Records keep their `source` relative to the repo, so the copy points at the raw seed file.
    """
    seeds = tmp_path / "seeds"
    ann = tmp_path / "annotations"
    seeds.mkdir()
    ann.mkdir()
    shutil.copy(SEEDS_DIR / f"{SEED_DOC}.txt", seeds)
    shutil.copy(ANNOTATIONS_DIR / f"{SEED_DOC}.jsonl", ann)
    return {"seeds": seeds, "annotations": ann, "file": ann / f"{SEED_DOC}.jsonl"}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


from claims.training.config import load_config  # noqa: E402
from claims.util.paths import CONFIGS_DIR  # noqa: E402

CONFIG_FILES = sorted(CONFIGS_DIR.glob("*.yaml"))

# The real configs, shrunk: eight articles, a few units each, one fold per evaluation, one seed, one
# epoch, and a small stand-in for the sealed test split (see `sealed_stand_in`).
SHRINK = ["data.max_articles=8", "data.max_units_per_doc=14", "eval.max_folds=1", "eval.seeds=1", "train.epochs=1",
          "eval.test_annotations=[]"]


def shrunk(name: str, *extra: str):
    return load_config(CONFIGS_DIR / f"{name}.yaml", [*SHRINK, *extra])


@pytest.fixture(autouse=True)
def _embedding_cache_in_tmp(tmp_path_factory, monkeypatch):
    """Tests never write to the repository's embedding cache."""
    from claims.models import embedding_cache

    monkeypatch.setattr(embedding_cache, "CACHE_DIR", tmp_path_factory.getbasetemp() / "embedding-cache")


@pytest.fixture
def store(tmp_path) -> str:
    """A fresh MLflow store for one test."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _packaged(tmp_path_factory, config: str, *extra: str):
    from claims.training import loop
    from claims.training import tracking
    from claims.predictor.package import package_run

    root = tmp_path_factory.mktemp(f"pkg-{config}")
    store = f"sqlite:///{root / 'mlflow.db'}"
    tracking.open_store(store)
    cfg = shrunk(config, *extra)
    result = loop.run(cfg, loop.load_data(cfg), store)
    return {"store": store, "run_id": result.run_id,
            "package": package_run(result.run_id, config, out_dir=root / "models", tracking_uri=store), "root": root}


@pytest.fixture(scope="session")
def tfidf_package(tmp_path_factory):
    """A real packaged tfidf_linear model, trained on the shrunk config."""
    return _packaged(tmp_path_factory, "tfidf_linear", "data.max_units_per_doc=40")


@pytest.fixture(scope="session")
def ensemble_package(tmp_path_factory):
    """A real packaged ensemble (n-grams, frozen embeddings, rule cues), trained on the shrunk config."""
    return _packaged(tmp_path_factory, "ensemble", "data.max_units_per_doc=30")


@pytest.fixture(scope="session")
def finetune_package(tmp_path_factory):
    """A real packaged finetune model (one epoch on little data) with its ONNX int8 runtime; it reads
    (unit, previous unit) pairs, so the export carries segment ids."""
    return _packaged(tmp_path_factory, "finetune", "eval.tune_thresholds=false", "train.max_length=32",
                     "model.context=true")


def heavy_imports_after_predicting(package: Path) -> tuple[str, list[str]]:
    """In a fresh process: load `package`, predict one unit; the runtime used and which of torch and
    transformers got imported (cold start pays for every one of them)."""
    import subprocess
    import sys

    code = ("import sys\nfrom claims.predictor.predictor import Predictor\n"
            f"p = Predictor.load({str(package)!r})\n"
            "p.predict(['JNIM said it had seized the base.'])\n"
            "print(p.runtime, *sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return out[0], out[1:]
