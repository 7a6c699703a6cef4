"""The static encoder (`minilm-l6-static`): word-piece vectors distilled from MiniLM, no network."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from pydantic import ValidationError

from claims.models import encoder, onnx_encoder
from claims.models.static_encoder import STATIC_FILE, StaticEncoder
from claims.predictor.predictor import LOOSE_THRESHOLDS_FILE, ModelFolderError, Predictor
from claims.util.errors import InputError
from tests.conftest import _packaged, heavy_imports_after_predicting


def _hand_made(folder, vectors):
    folder.mkdir()
    shutil.copyfile(encoder.encoder_path("minilm-l6") / onnx_encoder.TOKENIZER_FILE, folder / onnx_encoder.TOKENIZER_FILE)
    (folder / onnx_encoder.INFO_FILE).write_text(json.dumps({"encoder": "test", "max_length": 256, "static": True}))
    np.save(folder / STATIC_FILE, vectors)
    return folder


def test_a_unit_is_the_normalised_mean_of_its_pieces_alone_or_in_a_batch(tmp_path):
    tokenizer = encoder.load_tokenizer("minilm-l6")
    vectors = np.random.default_rng(0).standard_normal((tokenizer.vocab_size, 8)).astype(np.float32)
    static = StaticEncoder(_hand_made(tmp_path / "encoder", vectors))
    texts = ["A security source told AFP that 30 soldiers died.", "", "JNIM claimed the attack on Boulkessi.",
             "Ça va, dit le chef du village de Tillabéri, 北京 ☃", "\u200b", " ".join(["soldiers"] * 300)]
    batch = static.embed(texts)
    for text, row in zip(texts, batch):
        ids = tokenizer(text, add_special_tokens=False, truncation=True, max_length=256)["input_ids"]
        if not ids:
            assert not row.any()  # nothing to average: zeros, as a unit with no previous one
            continue
        mean = vectors[ids].mean(0)
        np.testing.assert_allclose(row, mean / np.linalg.norm(mean), atol=1e-6)
        np.testing.assert_array_equal(static.embed([text])[0], row)
    assert onnx_encoder.present(tmp_path / "encoder") and not onnx_encoder.present(tmp_path / "encoder", int8=True)


def test_static_vectors_that_are_not_a_float_matrix_are_refused(tmp_path):
    folder = _hand_made(tmp_path / "encoder", np.zeros((4, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="expected a float32 matrix"):
        StaticEncoder(folder)
    np.save(folder / STATIC_FILE, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):  # it would need unpickling: refused, nothing runs
        StaticEncoder(folder)
    np.save(folder / STATIC_FILE, np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="does not fit a vocabulary"):  # fewer rows than pieces
        StaticEncoder(folder)


@pytest.mark.parametrize("family", ["ensemble", "embed_linear"])
def test_a_static_encoder_takes_mean_pooling_only(family):
    from claims.models.families.embed_linear import EmbedLinearOptions
    from claims.models.families.ensemble import EnsembleOptions

    options = {"ensemble": EnsembleOptions, "embed_linear": EmbedLinearOptions}[family]
    assert options(encoder="minilm-l6-static").pooling == "mean"
    with pytest.raises(ValidationError, match="no token states to pool"):
        options(encoder="minilm-l6-static", pooling="cls")


@pytest.fixture(scope="module")
def static_package(tmp_path_factory):
    """The real ensemble_static config, shrunk, trained and packaged (distils the vectors once: ~35 s).
    A module fixture is set up before the autouse one that keeps the cache in tmp: so here too."""
    from claims.models import embedding_cache

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embedding_cache, "CACHE_DIR", tmp_path_factory.getbasetemp() / "embedding-cache")
        return _packaged(tmp_path_factory, "ensemble_static", "data.max_units_per_doc=30")


def test_the_static_package_predicts_without_torch_and_its_labels_do_not_depend_on_the_batch(static_package):
    package = static_package["package"]
    assert "static word-piece encoder" in (package / "README.md").read_text()
    vectors = np.load(package / "artifacts" / "model" / onnx_encoder.FOLDER / STATIC_FILE, allow_pickle=False)
    assert vectors.shape == (encoder.load_tokenizer("minilm-l6").vocab_size, 256)
    assert heavy_imports_after_predicting(package) == ("static-encoder", [])
    from tests.test_batch_invariance import _units_with_openings

    predictor = Predictor.load(package)
    texts, contexts, openings = _units_with_openings()
    whole = predictor.predict(texts, contexts, openings)
    alone = np.vstack([predictor.predict([t], [c], [o]).decisions for t, c, o in zip(texts, contexts, openings)])
    order = np.random.default_rng(0).permutation(len(texts))
    shuffled = predictor.predict([texts[i] for i in order], [contexts[i] for i in order],
                                 [openings[i] for i in order]).decisions
    assert (alone == whole.decisions).all() and (shuffled == whole.decisions[order]).all() and whole.decisions.any()
    assert not np.allclose(whole.proba, predictor.predict(texts, contexts).proba, equal_nan=True)  # the opening is read
    # The pyfunc (REST, `mlflow models predict`) reads the `context` and `opening` columns as the predictor does.
    import mlflow.pyfunc
    import pandas as pd

    served = mlflow.pyfunc.load_model(str(package)).predict(
        pd.DataFrame({"text": texts[:8], "context": contexts[:8], "opening": openings[:8]}))
    np.testing.assert_allclose(served["p.attribution.external_observer"].to_numpy(),
                               whole.proba[:8, predictor.space.column_names.index("attribution.external_observer")],
                               atol=1e-5)  # the rows carry probabilities to 5 places
    # The packaged vectors are those training embedded with (the cached export, in tmp for tests).
    from claims.models import embedding_cache

    np.testing.assert_array_equal(StaticEncoder(package / "artifacts" / "model" / onnx_encoder.FOLDER).embed(texts),
                                  embedding_cache.compute(texts, name="minilm-l6-static"))
    # No network to run another way: fp32 reads the package's own vectors too; int8 is refused.
    assert Predictor.load(package, runtime="fp32").runtime == "static-encoder"
    with pytest.raises(ModelFolderError, match="encoder is static"):
        Predictor.load(package, runtime="onnx-encoder-int8")


def test_the_default_package_decides_units_without_an_opening_by_their_own_head_and_thresholds(static_package,
                                                                                                 tmp_path):
    from mlflow import MlflowClient

    from tests.test_batch_invariance import _units_with_openings

    folder = tmp_path / "package"
    shutil.copytree(static_package["package"], folder)
    model = folder / "artifacts" / "model"
    assert {LOOSE_THRESHOLDS_FILE, "head_loose.skops"} <= {p.name for p in model.iterdir()}
    logged = MlflowClient(static_package["store"]).get_run(static_package["run_id"]).data.metrics
    assert "cv_loose.attribution.macro_f1" in logged and "cv_loose.attribution.macro_f1" in json.loads(
        (model / "metrics.json").read_text())
    texts, contexts, openings = _units_with_openings(30)
    texts[0] = " "  # an empty unit first: it gets no labels, and the others keep their places
    mixed = [o if k % 2 else "" for k, o in enumerate(openings)]
    before = Predictor.load(folder).predict(texts, contexts, mixed).decisions
    columns = json.loads((model / LOOSE_THRESHOLDS_FILE).read_text())
    (model / LOOSE_THRESHOLDS_FILE).write_text(json.dumps({c: 0.0 for c in columns}))
    after = Predictor.load(folder).predict(texts, contexts, mixed).decisions
    np.testing.assert_array_equal(after[1::2], before[1::2])  # units with an opening: thresholds.json
    assert not after[0].any() and after[2::2].all()  # loose units: every label at threshold 0
    assert after[2::2].sum() > before[2::2].sum()
    (model / LOOSE_THRESHOLDS_FILE).write_text("{not json")
    with pytest.raises(ModelFolderError, match="corrupt model file"):
        Predictor.load(folder)
    (model / LOOSE_THRESHOLDS_FILE).write_text(json.dumps({"claim_type.attack": 0.5}))
    with pytest.raises(ModelFolderError, match="thresholds_loose.json: no threshold for"):
        Predictor.load(folder)
    (model / LOOSE_THRESHOLDS_FILE).unlink()
    with pytest.raises(ModelFolderError, match="has a loose head but no thresholds_loose.json"):
        Predictor.load(folder)


def test_a_static_package_has_no_int8_encoder_to_make_and_a_damaged_one_is_one_error(static_package, tmp_path):
    from claims.predictor.package import package_run

    with pytest.raises(InputError, match="a static encoder has no network to quantise"):
        package_run(static_package["run_id"], "static_int8", out_dir=tmp_path / "models",
                    tracking_uri=static_package["store"], int8_encoder=True)
    assert not (tmp_path / "models" / "static_int8").exists()
    damaged = tmp_path / "damaged"
    shutil.copytree(static_package["package"], damaged)
    (damaged / "artifacts" / "model" / onnx_encoder.FOLDER / STATIC_FILE).write_bytes(b"not an array")
    with pytest.raises(ModelFolderError, match="corrupt encoder"):
        Predictor.load(damaged)
