"""Packaging: a self-describing MLflow pyfunc folder that loads without pickle."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from claims.predictor import package
from claims.util.paths import SEEDS_DIR
from claims.predictor.predictor import ModelFolderError, Predictor
from claims.corpus.segment import segment_file

TEXTS = [u.text for u in segment_file(SEEDS_DIR / "000_6d991916dd06222c.txt")]


def test_package_describes_itself(tfidf_package):
    pkg = tfidf_package["package"]
    mlmodel = yaml.safe_load((pkg / "MLmodel").read_text())
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert [(c["name"], c["required"]) for c in inputs] == [("text", True), ("id", False), ("context", False),
                                                                      ("opening", False)]
    assert (pkg / mlmodel["saved_input_example_info"]["artifact_path"]).exists()
    reqs = (pkg / "requirements.txt").read_text()
    assert "torch==2.13.0" in reqs and "scikit-learn==" in reqs and "skops==" in reqs
    assert (pkg / "code" / "claims" / "predictor" / "predictor.py").exists()
    model = pkg / "artifacts" / "model"
    for name in ("config.yaml", "schema.yaml", "thresholds.json", "metrics.json", "data.json", "family.json"):
        assert (model / name).exists(), name
    card = (pkg / "README.md").read_text()
    assert "## Intended use" in card and "## Limits" in card and "counter_claim" in card
    assert not [p for p in pkg.rglob("*") if p.suffix in (".pkl", ".pickle")], "a pickle file in the package"


def test_round_trip_predictions_equal(tfidf_package, tmp_path):
    """The package predicts exactly what the run's final model predicts."""
    run_model = package.download_run_model(tfidf_package["run_id"], tmp_path, tfidf_package["store"])
    direct = Predictor.load(run_model).predict(TEXTS)
    pyfunc = mlflow.pyfunc.load_model(str(tfidf_package["package"]))
    out = pyfunc.predict(pd.DataFrame({"text": TEXTS}))
    probs = out[[c for c in out.columns if c.startswith("p.")]].to_numpy(dtype=float)
    np.testing.assert_allclose(probs, direct.proba, atol=5e-6)  # outputs carry 5 decimals
    space = Predictor.load(run_model).space
    for task in ("claim_type", "attribution", "withdrawal"):
        assert list(out[task]) == [space.decode(row)[task] for row in direct.decisions], task


def test_loads_with_pickle_deserialisation_disabled(tfidf_package, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    model = mlflow.pyfunc.load_model(str(tfidf_package["package"]))
    out = model.predict(pd.DataFrame({"text": ["JNIM claimed the attack on the base."], "id": ["a"]}))
    assert list(out["id"]) == ["a"] and "claim_type" in out.columns


def test_package_is_logged_to_the_run_and_can_be_registered(tfidf_package):
    client = MlflowClient(tfidf_package["store"])
    assert "package" in {a.path for a in client.list_artifacts(tfidf_package["run_id"])}
    mlflow.set_tracking_uri(tfidf_package["store"])
    package.package_run(tfidf_package["run_id"], "registered", out_dir=tfidf_package["root"] / "models",
                        register="conflict-claims", alias="champion", tracking_uri=tfidf_package["store"])
    version = client.get_model_version_by_alias("conflict-claims", "champion")
    loaded = mlflow.pyfunc.load_model("models:/conflict-claims@champion")
    assert version.run_id == tfidf_package["run_id"]
    assert len(loaded.predict(pd.DataFrame({"text": TEXTS[:3]}))) == 3


def test_failed_packaging_leaves_previous_package_untouched(tfidf_package, monkeypatch, tmp_path):
    pkg = tfidf_package["package"]
    before = {p: p.read_bytes() for p in pkg.rglob("*") if p.is_file()}

    def boom(**kwargs):
        Path(kwargs["path"]).mkdir()
        (Path(kwargs["path"]) / "half-written").write_text("x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(mlflow.pyfunc, "save_model", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        package.package_model_folder(pkg, pkg.name, out_dir=pkg.parent)
    after = {p: p.read_bytes() for p in pkg.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in pkg.parent.iterdir() if p.name.startswith(".")], "temporary folder left behind"


def test_missing_or_corrupt_model_folder_says_what_is_missing(tfidf_package, tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        Predictor.load(tmp_path / "nope")
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tfidf_package["package"], broken)
    (broken / "artifacts" / "model" / "thresholds.json").unlink()
    with pytest.raises(ModelFolderError, match="missing thresholds.json"):
        Predictor.load(broken)
    shutil.copy(tfidf_package["package"] / "artifacts" / "model" / "thresholds.json",
                broken / "artifacts" / "model" / "thresholds.json")
    (broken / "artifacts" / "model" / "family.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match="corrupt"):
        Predictor.load(broken)


def test_finetune_package_has_onnx_runtime_close_to_fp32(finetune_package):
    pkg = finetune_package["package"]
    assert (pkg / "artifacts" / "model" / "onnx" / "model.int8.onnx").exists()
    fast = Predictor.load(pkg)
    ref = Predictor.load(pkg, runtime="fp32")
    assert fast.runtime == "onnx-int8" and ref.runtime == "fp32"
    a, b = fast.predict(TEXTS), ref.predict(TEXTS)
    assert np.nanmax(np.abs(a.proba - b.proba)) < 0.05
    contexts = ["", *TEXTS[:-1]]  # as in an article: each unit after the one before
    a, b = fast.predict(TEXTS, contexts), ref.predict(TEXTS, contexts)
    assert np.nanmax(np.abs(a.proba - b.proba)) < 0.05
    assert not np.allclose(b.proba, ref.predict(TEXTS).proba, equal_nan=True)  # the context is read


@pytest.mark.filterwarnings("ignore:.*were cut to fit")
@pytest.mark.parametrize("runtime", ["onnx-int8", "fp32"])
def test_finetune_predicts_the_same_from_concurrent_threads(finetune_package, runtime):
    # As under `claims serve`, where MLflow predicts each request in a worker thread. Long units make
    # the truncation count tokenize without truncation or padding while other threads tokenize with
    # both, on the model's one tokenizer: unlocked, batches came out ragged or untruncated.
    from concurrent.futures import ThreadPoolExecutor

    predictor = Predictor.load(finetune_package["package"], runtime=runtime)
    texts = ["The army said it had retaken the town after heavy fighting overnight. " * 40,
             "JNIM claimed the attack.", "Residents said the militants withdrew before dawn."] * 10
    ref = predictor.predict(texts).proba

    def predict_often(_):
        return [predictor.predict(texts).proba for _ in range(8)]

    with ThreadPoolExecutor(6) as pool:
        results = [p for batch in pool.map(predict_often, range(6)) for p in batch]
    assert len(results) == 48
    assert all(np.allclose(p, ref, atol=1e-6, equal_nan=True) for p in results)


def test_pyfunc_replaces_lone_surrogates_its_caller_passes(finetune_package):
    # An object-dtype DataFrame keeps lone surrogates as given; the HF tokenizer refused them (TypeError).
    model = mlflow.pyfunc.load_model(str(finetune_package["package"]))
    df = pd.DataFrame({"text": ["JNIM said \ud800 it had seized the base."], "context": ["x\udfff"]}, dtype=object)
    assert model.predict(df)["p.withdrawal.yes"].notna().all()


def test_a_linear_package_loads_and_predicts_without_importing_torch(tfidf_package):
    # Cold start of the linear families: torch (and its second of imports) is for the encoders only.
    from tests.conftest import heavy_imports_after_predicting

    assert heavy_imports_after_predicting(tfidf_package["package"]) == ("fp32", [])


def test_package_takes_the_short_run_id_that_compare_prints(tfidf_package, tmp_path):
    from typer.testing import CliRunner

    from claims.cli import app

    short = tfidf_package["run_id"][:12]
    args = ["package", short, "--name", "short", "--tracking-uri", tfidf_package["store"],
            "--models-dir", str(tmp_path)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "short" / "MLmodel").exists()
    r = CliRunner().invoke(app, ["package", "ffffffff", "--name", "x", "--tracking-uri", tfidf_package["store"],
                                 "--models-dir", str(tmp_path)])
    assert r.exit_code == 1 and "give the full run id" in r.output


def test_a_package_that_carries_an_encoder_is_written_under_the_name_asked_for(ensemble_package):
    package = ensemble_package["package"]
    assert package.name == "ensemble" and package.parent == ensemble_package["root"] / "models"
    assert (package / "artifacts" / "model" / "encoder" / "encoder.onnx").is_file()


def test_int8_encoder_on_a_family_without_an_encoder_is_refused_and_writes_nothing(tfidf_package, tmp_path):
    from claims.predictor.package import package_run
    from claims.util.errors import InputError

    with pytest.raises(InputError, match="no sentence encoder to quantise"):
        package_run(tfidf_package["run_id"], "x", out_dir=tmp_path, tracking_uri=tfidf_package["store"], int8_encoder=True)
    assert not (tmp_path / "x").exists()


def test_model_card_says_when_its_run_had_no_b(tfidf_package, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tfidf_package["package"] / "artifacts" / "model", folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert any(k.startswith("country.") for k in metrics)
    assert "(b) was not run" not in package.model_card(folder, "x", None)
    (folder / "metrics.json").write_text(json.dumps({k: v for k, v in metrics.items() if not k.startswith("country.")}))
    assert "(b) was not run for this model" in package.model_card(folder, "x", None)


def test_model_card_gives_d_with_its_intervals_when_they_were_measured(tfidf_package, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tfidf_package["package"] / "artifacts" / "model", folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    bare = {k: v for k, v in metrics.items() if not k.endswith((".ci_low", ".ci_high"))}
    (folder / "metrics.json").write_text(json.dumps(bare))
    assert "95% intervals" not in package.model_card(folder, "x", None)
    metrics = {**bare, "test.claim_type.macro_f1": 0.8, "test.claim_type.macro_f1.ci_low": 0.75,
               "test.claim_type.macro_f1.ci_high": 0.85, "test.withdrawal.f1": 0.9,
               "test.withdrawal.f1.ci_low": 0.85, "test.withdrawal.f1.ci_high": 0.95}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    card = package.model_card(folder, "x", None)
    assert "claim_type 0.800 (0.750-0.850); withdrawal 0.900 (0.850-0.950)." in card


def test_model_card_warns_about_loose_sentences_only_when_the_model_reads_the_opening(tfidf_package, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tfidf_package["package"] / "artifacts" / "model", folder)
    family = json.loads((folder / "family.json").read_text())
    assert not family["options"].get("opening")
    card = package.model_card(folder, "x", None)
    assert "reads the article's opening" not in card and "Units are read whole" in card  # n-grams only
    family["options"]["opening"] = True
    (folder / "family.json").write_text(json.dumps(family))
    card = package.model_card(folder, "x", None)
    assert "scores lower on attribution" in card and "predicted without their opening" not in card  # no cv_loose
    family["options"]["loose_head"] = True
    (folder / "family.json").write_text(json.dumps(family))
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.update({f"cv_loose.{k[3:]}": 0.123 for k in list(metrics) if k.startswith("cv.")})
    (folder / "metrics.json").write_text(json.dumps(metrics))
    card = package.model_card(folder, "x", None)
    assert "second regression" in card and "scores lower on attribution" not in card
    assert "their opening (claim_type.macro_f1 / attribution.macro_f1 / withdrawal.f1): 0.123 / 0.123 / 0.123" in card
    assert f"against {metrics['cv.claim_type.macro_f1']:.3f} / " in card
    family["options"]["features"] = ["embeddings", "rules"]  # an ensemble without tfidf reads no opening
    (folder / "family.json").write_text(json.dumps(family))
    card = package.model_card(folder, "x", None)
    assert "reads the article's opening" not in card and "first 256 word pieces" in card


def test_bench_paired_test_scores_two_packages_on_the_test_split(tfidf_package, monkeypatch):
    """bench/paired_test.py: a package against itself differs by nothing on any draw."""
    import importlib

    from claims.util.paths import ROOT

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    out = importlib.import_module("paired_test").paired(tfidf_package["package"], tfidf_package["package"])
    assert {k.rsplit(".", 1)[1] for k in out} == {"diff", "ci_low", "ci_high", "p_better"}
    assert all(v == 0 for k, v in out.items() if not k.endswith("p_better"))
