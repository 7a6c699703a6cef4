"""Shared fixtures. Everything builds on the real schema, corpus and configs, shrunk for speed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from training.paths import ANNOTATIONS_DIR, SEEDS_DIR  # noqa: E402
from training.schema import load_schema  # noqa: E402

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
