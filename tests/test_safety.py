"""Names that become paths, outputs that would overwrite inputs, and file modes (issue: safe to feed)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from claims.cli import app
from claims.util import atomic
from claims.util.errors import InputError
from claims.util.names import check_name
from tests.conftest import shrunk

runner = CliRunner()


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "a/b", "..", ".hidden", "", "x" * 200, "a\\b"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(InputError, match="not a valid name"):
        check_name(name)


@pytest.mark.parametrize("name", ["default", "w1_01", "000_6d991916dd06222c", "tfidf-linear.v2"])
def test_safe_names_pass(name):
    assert check_name(name) == name


def test_import_refuses_a_doc_id_that_escapes_the_folder(tmp_path):
    export = tmp_path / "export.jsonl"
    export.write_text(json.dumps({"text": "x", "meta": {"id": "../../evil:0", "doc_id": "../../evil", "start": 0, "end": 1},
                                  "answer": "accept", "accept": []}) + "\n")
    target = tmp_path / "ann"
    target.mkdir()
    result = runner.invoke(app, ["import", str(export), "--format", "prodigy", "--annotations-dir", str(target)])
    assert result.exit_code == 1 and "not a valid name" in result.output
    assert not (tmp_path / "evil.jsonl").exists() and not list(target.iterdir())


def test_config_name_that_escapes_models_is_refused():
    with pytest.raises(InputError, match="not a valid name"):
        shrunk("majority", "name=../../x")


def test_package_name_that_escapes_models_is_refused(tmp_path):
    from claims.predictor.package import package_model_folder

    with pytest.raises(InputError, match="not a valid name"):
        package_model_folder(tmp_path, "../../x", tmp_path / "models")


def test_predict_refuses_to_overwrite_its_input(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "The army said it repelled the attack."}) + "\n")
    before = src.read_text()
    result = runner.invoke(app, ["predict", "--model", "models/does-not-matter", str(src), "-o", str(src)])
    assert result.exit_code == 1 and "would be overwritten" in result.output
    assert src.read_text() == before


def test_atomic_writes_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644


def test_an_atomic_write_to_a_symlink_replaces_the_file_it_points_to(tmp_path):
    real = tmp_path / "store" / "real.txt"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    atomic.write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    assert sorted(p.name for p in real.parent.iterdir()) == ["real.txt"]  # no temporary file left behind


def test_a_skops_file_asking_for_exec_is_refused(tfidf_package, tmp_path):
    """A crafted part that would construct builtins.exec never loads (the old loader trusted builtins.*)."""
    import shutil

    import skops.io as sio

    from claims.predictor.predictor import ModelFolderError, Predictor

    pkg = tmp_path / "pkg"
    shutil.copytree(tfidf_package["package"], pkg)
    part = pkg / "artifacts" / "model" / "head.skops"
    sio.dump({"payload": exec}, part)
    assert "builtins.exec" in sio.get_untrusted_types(file=part)
    with pytest.raises(ModelFolderError, match="builtins.exec"):
        Predictor.load(pkg)
    result = runner.invoke(app, ["predict", "--model", str(pkg), "-", "--lines", "-o", str(tmp_path / "o.jsonl")],
                           input="The army said it repelled the attack.\n")
    assert result.exit_code == 1 and "builtins.exec" in result.output and "Traceback" not in result.output


def test_a_truncated_package_part_is_one_clear_error(tfidf_package, tmp_path):
    import shutil

    from claims.predictor.predictor import ModelFolderError, Predictor

    pkg = tmp_path / "pkg"
    shutil.copytree(tfidf_package["package"], pkg)
    part = pkg / "artifacts" / "model" / "head.skops"
    part.write_bytes(part.read_bytes()[:200])
    with pytest.raises(ModelFolderError, match="head.skops"):
        Predictor.load(pkg)


@pytest.mark.parametrize("content", ['{"not": "a list"}', '[{"army": "3"}, {}]', "[]", "\u00ff not json",
                                     '[{"army": 5}, {"x": 0}]', None])
def test_a_bad_or_missing_vocabulary_sidecar_is_one_clear_error(tfidf_package, tmp_path, content):
    """Vocabularies live in plain JSON beside the skops file; a malformed or missing one names the file."""
    import shutil

    from claims.predictor.predictor import ModelFolderError, Predictor

    pkg = tmp_path / "pkg"
    shutil.copytree(tfidf_package["package"], pkg)
    sidecar = pkg / "artifacts" / "model" / "ngrams.skops.vocab.json"
    assert sidecar.exists() and b"army" not in (pkg / "artifacts" / "model" / "ngrams.skops").read_bytes()
    if content is None:
        sidecar.unlink()
    else:
        sidecar.write_text(content)
    with pytest.raises(ModelFolderError, match="ngrams.skops.vocab.json"):
        Predictor.load(pkg)


def test_a_part_saved_with_its_vocabulary_inside_still_loads(tmp_path):
    """Packages made before vocabularies had their own file keep working."""
    import json

    import skops.io as sio

    from claims.models.families import sklearn_io
    from claims.models.families.channels import ChannelOptions, ngram_features

    texts = ["JNIM claimed the attack on the camp.", "The army said it repelled the assault.", "Residents fled."]
    union = ngram_features(ChannelOptions()).fit(texts)
    old = tmp_path / "old.skops"
    sio.dump(union, old)
    (tmp_path / "old.skops.types.json").write_text(json.dumps(sorted(sio.get_untrusted_types(file=old))))
    loaded = sklearn_io.load(old)
    assert (loaded.transform(texts) != union.transform(texts)).nnz == 0
    new = tmp_path / "new.skops"
    sklearn_io.dump(union, new)
    assert (sklearn_io.load(new).transform(texts) != union.transform(texts)).nnz == 0


def test_a_folder_as_input_is_one_clear_error(tmp_path):
    result = runner.invoke(app, ["predict", "--model", "models/x", str(tmp_path), "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 1 and "is a folder" in result.output and "Traceback" not in result.output


def test_a_csv_field_over_the_csv_module_default_limit_is_read(tmp_path):
    from claims.predictor.inputs import read_units

    big = "word " * 400_000  # 2 MB in one cell
    f = tmp_path / "big.csv"
    f.write_text("id,text\na," + big + "\n")
    units = list(read_units(str(f)))
    assert len(units) == 1 and len(units[0]["text"]) == len(big)
