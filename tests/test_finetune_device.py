"""bench/finetune_device.py scores the GPU machine's fits as `claims train` scores its own: checked here
on CPU, on a shrunk config, against a real training run (same folds, seeds, thresholds and metrics)."""

import importlib.util

import numpy as np
import pytest

from claims.training import loop
from claims.util.paths import ROOT

SHRUNK = ["data.max_articles=10", "data.max_units_per_doc=8", "train.epochs=1", "train.max_length=32",
          "eval.test_annotations=[labels/annotations/w1_07.jsonl]"]


@pytest.fixture
def device_script(monkeypatch):
    # Importable by name: its worker processes (spawned) import it again.
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    return importlib.import_module("finetune_device")


def test_split_fits_score_as_the_training_loop_scores(device_script, tmp_path, store):
    from claims.training import tracking
    from claims.training.config import load_config

    export = tmp_path / "export"
    device_script.export("configs/finetune.yaml", SHRUNK, out=export, half=False)
    device_script.fit(export, tmp_path / "out", workers=1, deadline_s=3600, only=[])
    scored = device_script.score(tmp_path / "out" / "results.npz", export)["evaluations"]

    cfg = load_config(ROOT / "configs" / "finetune.yaml", SHRUNK)
    data = loop.load_data(cfg)
    tracking.open_store(store)
    expected = loop.run(cfg, data, store, test=loop.load_test_split(cfg, data.docs)).evaluations
    assert set(scored) == set(expected) == {"cv", "country", "seeds_test", "test"}
    for evaluation, metrics in expected.items():
        assert set(scored[evaluation]) == set(metrics), evaluation
        for name, value in metrics.items():
            assert np.isclose(scored[evaluation][name], value, rtol=0, atol=1e-9), (evaluation, name)

    other = tmp_path / "other-export"
    device_script.export("configs/finetune.yaml", [*SHRUNK, "data.max_units_per_doc=7"], out=other, half=False)
    with pytest.raises(SystemExit, match="fitted on another plan"):
        device_script.score(tmp_path / "out" / "results.npz", other)

    # The final model comes back in pieces and is put together as the loop would log it.
    from claims.models.families.base import load_model

    device_script.final(export, tmp_path / "returned")
    folder = device_script.assemble(tmp_path / "returned", tmp_path / "out" / "results.npz", tmp_path / "model", export)
    plan = device_script._load_plan(export)
    proba = load_model(folder).predict_proba(plan["test"]["texts"], plan["test"]["contexts"])
    assert np.array_equal(proba, np.load(tmp_path / "returned" / "final_test_proba.npy"))
    assert {"config.yaml", "schema.yaml", "thresholds.json", "metrics.json", "data.json"} <= {p.name for p in folder.iterdir()}


def test_export_refuses_a_protocol_it_cannot_score(device_script, tmp_path):
    with pytest.raises(SystemExit, match=r"\[eval.seeds\]"):
        device_script.export("configs/finetune.yaml", [*SHRUNK, "eval.seeds=2"], out=tmp_path / "export")
    with pytest.raises(SystemExit, match=r"\[eval.test_annotations\]"):
        device_script.export("configs/finetune.yaml", [*SHRUNK[:-1], "eval.test_annotations=[]"], out=tmp_path / "export")
    assert not (tmp_path / "export").exists()
