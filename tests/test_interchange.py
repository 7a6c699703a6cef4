import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import SEED_DOC, read_jsonl
from claims.corpus import annotations
from claims.corpus import interchange
from claims.cli import app
from claims.util.paths import ANNOTATIONS_DIR

runner = CliRunner()
ALL = sorted(ANNOTATIONS_DIR.glob("*.jsonl"))


def _copy_corpus(tmp_path: Path) -> Path:
    d = tmp_path / "annotations"
    d.mkdir()
    for p in ALL:
        shutil.copy(p, d)
    return d


def _round_trip(tmp_path: Path, fmt: str, suffix: str) -> Path:
    exported = tmp_path / f"export{suffix}"
    r = runner.invoke(app, ["export", "--format", fmt, "-o", str(exported)])
    assert r.exit_code == 0, r.output
    target = tmp_path / "imported"
    target.mkdir()
    r = runner.invoke(app, ["import", str(exported), "--format", fmt, "--annotations-dir", str(target)])
    assert r.exit_code == 0, r.output
    return target


def test_label_studio_round_trip_changes_nothing(tmp_path):
    target = _round_trip(tmp_path, "label-studio", ".json")
    for p in ALL:
        assert (target / p.name).read_bytes() == p.read_bytes(), p.name
    assert "<Choices name=\"claim_type\"" in (tmp_path / "export.config.xml").read_text()


def test_prodigy_round_trip_changes_nothing(tmp_path):
    target = _round_trip(tmp_path, "prodigy", ".jsonl")
    for p in ALL:
        assert (target / p.name).read_bytes() == p.read_bytes(), p.name


def test_not_annotated_survives_a_round_trip(tmp_path, schema):
    recs, _ = annotations.read_file(ALL[0])
    recs[0].labels = {"claim_type": ["attack"], "attribution": None, "withdrawal": None}
    for fmt, to, back in [("label-studio", interchange.to_label_studio, interchange.from_label_studio),
                          ("prodigy", interchange.to_prodigy, interchange.from_prodigy)]:
        path = tmp_path / f"x.{fmt}"
        items = to(recs[:1], schema)
        path.write_text(json.dumps(items) if fmt == "label-studio" else json.dumps(items[0]) + "\n")
        assert back(path, schema)[0].labels == recs[0].labels


def test_label_studio_user_annotation_is_read(tmp_path, schema):
    """An export as Label Studio writes it after a person labels a unit in its interface."""
    recs, _ = annotations.read_file(ALL[3])
    [task] = interchange.to_label_studio(recs[11:12], schema)  # "The Malian army said it had been forced to pull back."
    task["annotations"] = [{"completed_by": 7, "updated_at": "2026-11-20T10:00:00Z", "result": [
        {"from_name": "attribution", "to_name": "text", "type": "choices", "value": {"choices": ["government_military"]}},
        {"from_name": "withdrawal", "to_name": "text", "type": "choices", "value": {"choices": ["yes"]}},
    ]}]
    path = tmp_path / "ls.json"
    path.write_text(json.dumps([task]))
    [rec] = interchange.from_label_studio(path, schema)
    assert rec.labels == {"claim_type": [], "attribution": ["government_military"], "withdrawal": True}
    assert rec.meta["annotator"] == "label-studio user 7"


def test_prodigy_rejected_examples_are_skipped(tmp_path, schema):
    recs, _ = annotations.read_file(ALL[3])
    items = interchange.to_prodigy(recs[:2], schema)
    items[0]["answer"] = "reject"
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in items))
    assert [r.id for r in interchange.from_prodigy(path, schema)] == [recs[1].id]


def test_import_merges_into_existing_file(tmp_path, schema):
    target = _copy_corpus(tmp_path)
    recs, _ = annotations.read_file(target / f"{SEED_DOC}.jsonl")
    recs[5].labels = {"claim_type": ["attack"], "attribution": [], "withdrawal": False}
    interchange.merge_into([recs[5]], target, schema)
    rows = read_jsonl(target / f"{SEED_DOC}.jsonl")
    assert len(rows) == len(recs)
    assert rows[5]["labels"]["claim_type"] == ["attack"]
    assert rows[6] == read_jsonl(ANNOTATIONS_DIR / f"{SEED_DOC}.jsonl")[6]


def test_adding_an_article_chain_segment_export_import_validate(tmp_path):
    """The README's workflow: segment -> export (empty tasks) -> annotate in Label Studio -> import -> validate."""
    import json

    from typer.testing import CliRunner

    from claims.cli import app
    from claims.util.paths import ANNOTATIONS_DIR, SEEDS_DIR

    run = CliRunner().invoke
    doc = "000_6d991916dd06222c"
    units, tasks, gold_tasks = tmp_path / "units.jsonl", tmp_path / "tasks.json", tmp_path / "gold.json"
    assert run(app, ["segment", str(SEEDS_DIR / f"{doc}.txt"), "-o", str(units)]).exit_code == 0
    result = run(app, ["export", str(units), "--format", "label-studio", "-o", str(tasks)])
    assert result.exit_code == 0, result.output
    empty = json.loads(tasks.read_text())
    assert empty and all(t["annotations"] == [] for t in empty)
    # "annotating": the gold labels, as Label Studio would export them, put on the empty tasks
    assert run(app, ["export", str(ANNOTATIONS_DIR / f"{doc}.jsonl"), "--format", "label-studio",
                     "-o", str(gold_tasks)]).exit_code == 0
    gold = {t["data"]["id"]: t["annotations"] for t in json.loads(gold_tasks.read_text())}
    for t in empty:
        t["annotations"] = gold[t["data"]["id"]]
    tasks.write_text(json.dumps(empty))
    target = tmp_path / "annotations"
    result = run(app, ["import", str(tasks), "--format", "label-studio", "--annotations-dir", str(target)])
    assert result.exit_code == 0, result.output
    result = run(app, ["validate", str(target / f"{doc}.jsonl"), "--seeds", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    imported = [json.loads(l)["labels"] for l in (target / f"{doc}.jsonl").read_text().splitlines()]
    expected = [json.loads(l)["labels"] for l in (ANNOTATIONS_DIR / f"{doc}.jsonl").read_text().splitlines()]
    assert imported == expected
