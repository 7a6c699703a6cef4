import datasets
import numpy as np
import pytest
import yaml

from claims.corpus.dataset import files_digest, label_matrix, load_dataset
from claims.util.errors import InputError
from claims.util.paths import ANNOTATIONS_DIR, ROOT, SCHEMA_PATH
from claims.corpus.schema import load_schema


def test_schema_has_the_three_tasks(schema):
    assert schema.task_names == ["claim_type", "attribution", "withdrawal"]
    assert [t.type for t in schema.tasks] == ["multilabel", "multilabel", "binary"]
    assert schema.task("withdrawal").columns == ["yes"]
    assert all(label.definition for t in schema.tasks for label in t.labels)


def test_no_label_list_is_written_in_code(schema):
    """labels/schema.yaml is the single source of truth: no label name appears quoted in code."""
    code = "\n".join(p.read_text() for p in (ROOT / "claims").rglob("*.py"))
    for task in schema.tasks:
        for label in task.label_names:
            if label in ("yes", "no"):
                continue
            assert f'"{label}"' not in code and f"'{label}'" not in code, label


def test_schema_errors_name_the_field(tmp_path):
    raw = yaml.safe_load(SCHEMA_PATH.read_text())
    raw["tasks"][0]["kind"] = "multilabel"
    bad = tmp_path / "schema.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError) as e:
        load_schema(bad)
    assert "tasks.0.kind" in str(e.value)


def test_dataset_features_follow_the_schema(schema):
    ds = load_dataset(sorted(ANNOTATIONS_DIR.glob("*.jsonl")), schema)
    assert isinstance(ds.features["claim_type"], datasets.Sequence)
    assert ds.features["claim_type"].feature.names == schema.task("claim_type").label_names
    assert ds.features["attribution"].feature.names == schema.task("attribution").label_names
    assert isinstance(ds.features["withdrawal"], datasets.ClassLabel)
    assert ds.features["withdrawal"].names == ["no", "yes"]
    files = sorted(ANNOTATIONS_DIR.glob("*.jsonl"))
    assert len(set(ds["doc_id"])) == len(files)
    assert len(ds) == sum(len(f.read_text(encoding="utf-8").splitlines()) for f in files)


def test_label_matrix_matches_records(schema):
    ds = load_dataset(sorted(ANNOTATIONS_DIR.glob("*.jsonl")), schema)
    y = label_matrix(ds, schema)
    assert y.shape == (len(ds), 5 + 5 + 1)
    row = ds["id"].index("000_6d991916dd06222c:9")  # "... they had abandoned the camp," an official said
    ct = schema.task("claim_type").label_names
    assert y[row, ct.index("territorial_control")] == 1
    assert y[row, -1] == 1  # withdrawal
    assert y[:, -1].sum() == sum(ds["withdrawal"])
    assert np.all((y == 0) | (y == 1))


def test_partially_annotated_records_are_refused(schema, mini_corpus):
    from tests.conftest import read_jsonl, write_jsonl

    rows = read_jsonl(mini_corpus["file"])
    rows[4]["labels"]["attribution"] = None
    write_jsonl(mini_corpus["file"], rows)
    with pytest.raises(InputError, match=r":5 \[labels.attribution\]"):
        load_dataset([mini_corpus["file"]], schema)


def test_digest_changes_with_content(mini_corpus):
    before = files_digest([mini_corpus["file"]])
    mini_corpus["file"].write_text(mini_corpus["file"].read_text() + "\n")
    assert files_digest([mini_corpus["file"]]) != before
