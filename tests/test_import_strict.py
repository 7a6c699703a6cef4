"""`claims import` is strict and all-or-nothing (issue 11, item 5)."""
import json

import pytest
from typer.testing import CliRunner

from tests.conftest import SEED_DOC, read_jsonl
from claims.cli import app
from claims.corpus import annotations, interchange
from claims.util.errors import InputError
from claims.util.paths import ANNOTATIONS_DIR

runner = CliRunner()
SEED_FILE = ANNOTATIONS_DIR / f"{SEED_DOC}.jsonl"


def _ls_export(tmp_path, schema, recs, result):
    tasks = interchange.to_label_studio(recs, schema)
    for t in tasks:
        t["annotations"] = [{"completed_by": 3, "updated_at": "2026-11-30T10:00:00Z", "result": result}]
    path = tmp_path / "ls.json"
    path.write_text(json.dumps(tasks))
    return path


def _choice(task, *values):
    return {"from_name": task, "to_name": "text", "type": "choices", "value": {"choices": list(values)}}


def test_unknown_label_is_an_error_naming_the_task(tmp_path, schema):
    recs, _ = annotations.read_file(SEED_FILE)
    path = _ls_export(tmp_path, schema, recs[:1], [_choice("claim_type", "attack", "looting")])
    with pytest.raises(InputError, match=r"claim_type.*looting"):
        interchange.from_label_studio(path, schema)


def test_unknown_prodigy_option_is_an_error(tmp_path, schema):
    recs, _ = annotations.read_file(SEED_FILE)
    [item] = interchange.to_prodigy(recs[:1], schema)
    item["accept"] = ["attribution:rumour"]
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(item) + "\n")
    with pytest.raises(InputError, match=r"attribution.*rumour"):
        interchange.from_prodigy(path, schema)


def test_unanswered_binary_task_stays_not_annotated(tmp_path, schema):
    recs, _ = annotations.read_file(SEED_FILE)
    path = _ls_export(tmp_path, schema, recs[:1], [_choice("claim_type", "attack")])
    [rec] = interchange.from_label_studio(path, schema)
    assert rec.labels["withdrawal"] is None
    assert rec.labels["claim_type"] == ["attack"]


def test_text_that_differs_from_the_raw_file_is_refused_and_nothing_is_written(tmp_path, schema):
    target = tmp_path / "annotations"
    target.mkdir()
    original = SEED_FILE.read_bytes()
    (target / SEED_FILE.name).write_bytes(original)
    recs, _ = annotations.read_file(SEED_FILE)
    good, bad = recs[2], recs[3]
    good.labels = {"claim_type": ["attack"], "attribution": [], "withdrawal": False}
    bad.text = bad.text.replace("a", "o", 1)
    other = annotations.Record(**{**good.__dict__, "doc_id": "zz_new", "id": "zz_new:0"})
    with pytest.raises(InputError, match="differs from"):
        interchange.merge_into([other, good, bad], target, schema)
    assert (target / SEED_FILE.name).read_bytes() == original
    assert not (target / "zz_new.jsonl").exists()


def test_untouched_units_keep_their_provenance(tmp_path, schema):
    target = tmp_path / "annotations"
    target.mkdir()
    (target / SEED_FILE.name).write_bytes(SEED_FILE.read_bytes())
    recs, _ = annotations.read_file(SEED_FILE)
    path = _ls_export(tmp_path, schema, recs[:2], [])
    imported = interchange.from_label_studio(path, schema)
    imported[1].labels = {"claim_type": ["attack"], "attribution": [], "withdrawal": False}
    imported[0].labels = dict(recs[0].labels)  # same answer as before, through the tool
    imported[0].meta = {"annotator": "label-studio user 3"}
    interchange.merge_into(imported, target, schema)
    rows = read_jsonl(target / SEED_FILE.name)
    assert rows[0]["meta"] == recs[0].meta
    assert rows[1]["labels"]["claim_type"] == ["attack"]


def test_cli_import_of_a_bad_label_exits_non_zero_with_one_line(tmp_path, schema):
    recs, _ = annotations.read_file(SEED_FILE)
    path = _ls_export(tmp_path, schema, recs[:1], [_choice("withdrawal", "maybe")])
    target = tmp_path / "annotations"
    target.mkdir()
    r = runner.invoke(app, ["import", str(path), "--annotations-dir", str(target)])
    assert r.exit_code != 0
    assert "withdrawal" in r.output and "maybe" in r.output
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("fmt", ["label-studio", "prodigy"])
def test_tasks_from_another_schema_version_are_refused_and_nothing_is_written(tmp_path, schema, fmt):
    target = tmp_path / "annotations"
    target.mkdir()
    original = SEED_FILE.read_bytes()
    (target / SEED_FILE.name).write_bytes(original)
    recs, _ = annotations.read_file(SEED_FILE)
    if fmt == "label-studio":
        tasks = interchange.to_label_studio(recs, schema)
        assert tasks[0]["data"]["schema_version"] == schema.version
        tasks[3]["data"]["schema_version"] = schema.version + 1
        path = tmp_path / "old.json"
        path.write_text(json.dumps(tasks))
    else:
        lines = interchange.to_prodigy(recs, schema)
        lines[3]["meta"]["schema_version"] = schema.version + 1
        path = tmp_path / "old.jsonl"
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = runner.invoke(app, ["import", str(path), "--format", fmt, "--annotations-dir", str(target)])
    assert result.exit_code == 1 and "schema_version" in result.output
    assert f"schema version {schema.version + 1}" in result.output and "re-export" in result.output
    assert (target / SEED_FILE.name).read_bytes() == original
