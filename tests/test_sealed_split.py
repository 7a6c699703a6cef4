"""The sealed test split: no training code path reads it; only evaluation asks for it, explicitly."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from claims.corpus import dataset
from claims.corpus.manifest import load_manifest
from claims.training import loop
from claims.training.evaluation.metrics import headline_names
from claims.util.errors import InputError
from claims.util.paths import ANNOTATIONS_DIR, ROOT
from tests.conftest import SEED_DOC, shrunk

PACKAGE = ROOT / "claims"


def test_training_loader_refuses_files_in_the_sealed_folder(tmp_path, monkeypatch, schema):
    sealed = tmp_path / "sealed"
    (sealed / "annotations").mkdir(parents=True)
    f = sealed / "annotations" / f"{SEED_DOC}.jsonl"
    shutil.copy(ANNOTATIONS_DIR / f"{SEED_DOC}.jsonl", f)
    monkeypatch.setattr(dataset, "SEALED_DIR", sealed)
    with pytest.raises(InputError, match="sealed test split"):
        dataset.load_dataset([f], schema)
    assert len(dataset.load_dataset([f], schema, allow_test=True)) > 0  # evaluation may


def test_training_loader_refuses_test_articles_wherever_they_are(tmp_path, monkeypatch, schema):
    manifest = load_manifest()
    fake = [a if a.id != SEED_DOC else a.__class__(**{**a.__dict__, "split": "test"}) for a in manifest.articles]
    monkeypatch.setattr(dataset, "load_manifest", lambda: manifest.__class__(
        manifest.path, manifest.countries, manifest.styles, manifest.roots, fake, manifest.floors))
    copy = tmp_path / "elsewhere.jsonl"
    shutil.copy(ANNOTATIONS_DIR / f"{SEED_DOC}.jsonl", copy)
    with pytest.raises(InputError, match="test-split article"):
        dataset.load_dataset([copy], schema)


def test_a_config_pointing_at_the_sealed_split_fails_before_training():
    cfg = shrunk("majority", "data.annotations=[labels/sealed/annotations/*.jsonl]")
    sealed_files = sorted((ROOT / "labels" / "sealed" / "annotations").glob("*.jsonl"))
    if not sealed_files:
        pytest.skip("no sealed split in this checkout")
    with pytest.raises(InputError, match="sealed test split"):
        loop.load_data(cfg)


def test_test_split_overlapping_training_data_is_an_error():
    cfg = shrunk("majority", f"eval.test_annotations=[labels/annotations/{SEED_DOC}.jsonl]")
    data = loop.load_data(cfg)
    with pytest.raises(InputError, match="in both the training data and the test split"):
        loop.load_test_split(cfg, data.docs)


def test_only_the_evaluation_loader_asks_for_the_test_split():
    """`allow_test=True` appears in exactly one function: loop.load_test_split."""
    callers = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, ast.keyword) and node.arg == "allow_test" and \
                            not (isinstance(node.value, ast.Constant) and node.value.value is False):
                        callers.append(f"{path.relative_to(ROOT)}:{fn.name}")
    # `_read` only passes on what its two callers give it: load_data gives False, load_test_split True
    assert sorted(set(callers)) == ["claims/training/loop.py:_read", "claims/training/loop.py:load_test_split"], callers


def test_the_final_model_is_scored_on_the_test_split_and_nothing_is_chosen_on_it(store, tmp_path):
    from claims.training import tracking

    other = "001_8db37c50676f5fe9"
    cfg = shrunk("tfidf_linear", f"data.annotations=[labels/annotations/0*.jsonl]",
                 "data.max_articles=4", f"eval.test_annotations=[labels/annotations/004_d1f2d348642eda18.jsonl]")
    data = loop.load_data(cfg)
    data = data.subset([i for i, d in enumerate(data.docs) if d != "004_d1f2d348642eda18"])
    test = loop.load_test_split(cfg, data.docs)
    assert other in data.docs and set(test.docs) == {"004_d1f2d348642eda18"}
    tracking.open_store(store)
    a = loop.run(cfg, data, store, test=test)
    assert loop.TEST in a.evaluations and "claim_type.macro_f1" in a.evaluations[loop.TEST]
    for name in headline_names(data.space):  # one test article: every resample is that article
        ev = a.evaluations[loop.TEST]
        assert ev[f"{name}.ci_low"] == pytest.approx(ev[name]) == ev[f"{name}.ci_high"]
    b = loop.run(cfg, data, store, test=None)
    # thresholds and (a) do not depend on whether a test split was given
    assert a.cv == b.cv
    assert (a.thresholds == b.thresholds).all()
