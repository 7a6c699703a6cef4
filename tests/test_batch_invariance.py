"""A unit gets the same labels whatever it is predicted with: alone, in a batch of 64, or in another
order. (The REST servers call this same Predictor.predict; bench/load_test.py checks that their
answers equal in-process prediction.)"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from claims.predictor.predictor import Predictor
from tests.conftest import heavy_imports_after_predicting
from claims.training import loop
from claims.training.config import load_config
from claims.util.paths import CONFIGS_DIR


@functools.lru_cache(maxsize=1)
def _last_units() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    data = loop.load_data(load_config(CONFIGS_DIR / "tfidf_linear.yaml"))  # the whole corpus: read once
    return tuple(data.texts[-192:]), tuple(data.contexts[-192:]), tuple(data.openings[-192:])


def _units(n: int = 96) -> tuple[list[str], list[str]]:
    """Whole articles from the end of the training data, which the shrunk packages did not see."""
    texts, contexts, _ = _last_units()
    return list(texts[-n:]), list(contexts[-n:])


def _units_with_openings(n: int = 96) -> tuple[list[str], list[str], list[str]]:
    """`_units`, with each unit's article opening."""
    texts, contexts, openings = _last_units()
    return list(texts[-n:]), list(contexts[-n:]), list(openings[-n:])


@pytest.mark.parametrize("package", ["tfidf_package", "ensemble_package"])
def test_labels_do_not_depend_on_batch_size_or_order(package, request):
    predictor = Predictor.load(request.getfixturevalue(package)["package"])
    texts, contexts = _units()
    whole = predictor.predict(texts, contexts)
    alone = np.vstack([predictor.predict([t], [c]).decisions for t, c in zip(texts, contexts)])
    order = np.random.default_rng(0).permutation(len(texts))
    shuffled = np.zeros_like(whole.decisions)
    for start in range(0, len(texts), 64):
        idx = order[start:start + 64]
        shuffled[idx] = predictor.predict([texts[i] for i in idx], [contexts[i] for i in idx]).decisions
    assert (alone == whole.decisions).all() and (shuffled == whole.decisions).all()
    assert whole.decisions.any()  # something was predicted, so equality says something


def test_the_ensembles_onnx_encoder_gives_the_torch_paths_labels_without_importing_torch(ensemble_package):
    exported = Predictor.load(ensemble_package["package"], runtime="onnx-encoder")
    reference = Predictor.load(ensemble_package["package"], runtime="fp32")
    assert (exported.runtime, reference.runtime) == ("onnx-encoder", "fp32")
    texts, contexts = _units()
    fast, ref = exported.predict(texts, contexts), reference.predict(texts, contexts)
    assert np.nanmax(np.abs(fast.proba - ref.proba)) < 1e-4
    assert (fast.decisions == ref.decisions).all() and ref.decisions.any()
    assert heavy_imports_after_predicting(ensemble_package["package"]) == ("onnx-encoder", [])


@pytest.fixture(scope="module")
def int8_package(ensemble_package):
    """The same run packaged again with `--int8-encoder`."""
    from claims.predictor.package import package_run

    return package_run(ensemble_package["run_id"], "ensemble_int8", out_dir=ensemble_package["root"] / "models",
                       tracking_uri=ensemble_package["store"], int8_encoder=True)


def test_an_int8_encoder_is_opt_in_and_then_agrees_with_fp32_on_99_percent_of_labels(ensemble_package, int8_package):
    assert not (ensemble_package["package"] / "artifacts" / "model" / "encoder" / "encoder.int8.onnx").exists()
    optimised = Predictor.load(int8_package)
    reference = Predictor.load(int8_package, runtime="fp32")
    assert optimised.runtime == "onnx-encoder-int8"
    texts, contexts = _units(192)
    fast, ref = optimised.predict(texts, contexts), reference.predict(texts, contexts)
    assert (fast.decisions == ref.decisions).mean() >= 0.99
    assert not np.allclose(fast.proba, ref.proba, atol=1e-6)  # it is another network, not the fp32 one
    alone = np.vstack([optimised.predict([t], [c]).decisions for t, c in zip(texts[:64], contexts[:64])])
    assert (alone == fast.decisions[:64]).all()  # fixed scales: the batch does not change a unit's labels
    assert heavy_imports_after_predicting(int8_package) == ("onnx-encoder-int8", [])
    import json

    info = json.loads((int8_package / "artifacts" / "model" / "encoder" / "encoder.json").read_text())
    assert info["int8_calibration"]["units"] == 400 and len(info["int8_calibration"]["sha256_16"]) == 16


@pytest.mark.parametrize("part, runtime", [("encoder.onnx", "auto"), ("encoder.int8.onnx", "auto"),
                                           ("tokenizer.json", "auto"), ("encoder.onnx", "onnx-encoder")])
def test_a_damaged_onnx_encoder_is_one_clear_error(int8_package, ensemble_package, tmp_path, part, runtime):
    import shutil

    from claims.predictor.predictor import ModelFolderError

    copy = tmp_path / "pkg"
    shutil.copytree(int8_package if part == "encoder.int8.onnx" else ensemble_package["package"], copy)
    damaged = copy / "artifacts" / "model" / "encoder" / part
    damaged.write_bytes(damaged.read_bytes()[:1000])
    with pytest.raises(ModelFolderError, match="corrupt encoder"):
        Predictor.load(copy, runtime=runtime)
    assert Predictor.load(copy, runtime="fp32").runtime == "fp32"  # the torch path still works
