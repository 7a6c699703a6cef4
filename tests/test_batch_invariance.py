"""A unit gets the same labels whatever it is predicted with: alone, in a batch of 64, or in another
order. (The REST servers call this same Predictor.predict; bench/load_test.py checks that their
answers equal in-process prediction.)"""

from __future__ import annotations

import numpy as np
import pytest

from claims.predictor.predictor import Predictor
from tests.conftest import heavy_imports_after_predicting
from claims.training import loop
from claims.training.config import load_config
from claims.util.paths import CONFIGS_DIR


def _units(n: int = 96) -> tuple[list[str], list[str]]:
    """Whole articles from the end of the training data, which the shrunk packages did not see."""
    data = loop.load_data(load_config(CONFIGS_DIR / "tfidf_linear.yaml"))
    return list(data.texts[-n:]), list(data.contexts[-n:])


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
    optimised = Predictor.load(ensemble_package["package"])
    reference = Predictor.load(ensemble_package["package"], runtime="fp32")
    assert (optimised.runtime, reference.runtime) == ("onnx-encoder", "fp32")
    texts, contexts = _units()
    fast, ref = optimised.predict(texts, contexts), reference.predict(texts, contexts)
    assert np.nanmax(np.abs(fast.proba - ref.proba)) < 1e-4
    assert (fast.decisions == ref.decisions).all() and ref.decisions.any()
    assert heavy_imports_after_predicting(ensemble_package["package"]) == ("onnx-encoder", [])


@pytest.mark.parametrize("part", ["encoder.onnx", "tokenizer.json"])
def test_a_damaged_onnx_encoder_is_one_clear_error(ensemble_package, tmp_path, part):
    import shutil

    from claims.predictor.predictor import ModelFolderError

    copy = tmp_path / "pkg"
    shutil.copytree(ensemble_package["package"], copy)
    damaged = copy / "artifacts" / "model" / "encoder" / part
    damaged.write_bytes(damaged.read_bytes()[:1000])
    with pytest.raises(ModelFolderError, match="corrupt encoder"):
        Predictor.load(copy)
    assert Predictor.load(copy, runtime="fp32").runtime == "fp32"  # the torch path still works
