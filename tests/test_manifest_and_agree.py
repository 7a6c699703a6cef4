"""The article manifest's bad inputs, and `claims agree` between two annotation sets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from claims.cli import app
from claims.corpus.agreement import agreement, align
from claims.corpus.annotations import read_file
from claims.corpus.manifest import MANIFEST_PATH, check_files, load_manifest
from claims.util.errors import InputError
from claims.util.paths import ANNOTATIONS_DIR
from tests.conftest import SEED_DOC, read_jsonl, write_jsonl

runner = CliRunner()


@pytest.fixture
def manifest_copy(tmp_path) -> Path:
    p = tmp_path / "articles.yaml"
    shutil.copy(MANIFEST_PATH, p)
    return p


def _problems(path: Path) -> list[str]:
    with pytest.raises(InputError) as e:
        load_manifest(path)
    return [str(p) for p in e.value.problems]


def _replace(path: Path, old: str, new: str) -> int:
    text = path.read_text()
    assert old in text
    line = text[:text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1))
    return line


def test_committed_manifest_is_valid_and_matches_the_files():
    manifest = load_manifest()
    assert not check_files(manifest)
    assert {a.split for a in manifest.articles} >= {"seed"}


@pytest.mark.parametrize("old,new,field,message", [
    ("country: Mali,", "country: Atlantis,", "country", "unknown country"),
    ("style: wire,", "style: haiku,", "style", "unknown style"),
    ("split: seed,", "split: holdout,", "split", "unknown split"),
    ("year: 2025,", "year: soon,", "year", "expected int"),
    ("id: 000_6d991916dd06222c,", "id: ../../etc,", "id", "not a valid name"),
])
def test_bad_manifest_entry_names_file_line_and_field(manifest_copy, old, new, field, message):
    line = _replace(manifest_copy, old, new)
    problems = _problems(manifest_copy)
    assert any(f"{manifest_copy}:{line} [{field}]" in p and message in p for p in problems), problems


def test_duplicate_id_is_reported(manifest_copy):
    text = manifest_copy.read_text()
    first = [l for l in text.splitlines() if "id: 000_" in l][0]
    manifest_copy.write_text(text + first + "\n")
    assert any("duplicate id" in p for p in _problems(manifest_copy))


def test_missing_file_and_unlisted_file(tmp_path, manifest_copy):
    root = tmp_path / "repo"
    (root / "seeds").mkdir(parents=True)
    (root / "articles").mkdir()
    (root / "articles" / "stray.txt").write_text("An article nobody listed.\n")
    problems = [str(p) for p in check_files(load_manifest(manifest_copy), root)]
    assert any("[path]" in p and "not found" in p for p in problems)
    assert any("stray.txt" in p and "has no entry" in p for p in problems)


def test_validate_flags_a_test_article_annotated_as_training_data(tmp_path, monkeypatch, schema):
    from claims.corpus import validate as v

    manifest = load_manifest()
    fake = [a.__class__(**{**a.__dict__, "split": "test"}) if a.id == SEED_DOC else a for a in manifest.articles]
    m = manifest.__class__(manifest.path, manifest.countries, manifest.styles, manifest.roots, fake, manifest.floors)
    report = v.validate(schema, manifest=m)
    assert any("appears in training data" in str(p) and SEED_DOC in str(p) for p in report.problems)


def _with_split(manifest, doc_id: str, split: str):
    fake = [a.__class__(**{**a.__dict__, "split": split}) if a.id == doc_id else a for a in manifest.articles]
    return manifest.__class__(manifest.path, manifest.countries, manifest.styles, manifest.roots, fake, manifest.floors)


def test_pending_articles_need_no_labels_but_must_not_have_any(monkeypatch, schema):
    from claims.corpus import validate as v

    manifest = load_manifest()
    written = next(a.id for a in manifest.articles if a.split == "train")
    everything = v.default_paths()
    monkeypatch.setattr(v, "default_paths", lambda: [p for p in everything if p.stem != written])
    pending = _with_split(manifest, written, "pending")
    assert v.validate(schema, manifest=pending).ok  # written, not yet annotated: fine
    assert not v.validate(schema, manifest=manifest).ok  # listed as train without labels: an error

    monkeypatch.setattr(v, "default_paths", lambda: everything)
    report = v.validate(schema, manifest=pending)
    assert any("still listed as pending" in str(p) and written in str(p) for p in report.problems)


# --- agreement ------------------------------------------------------------------------------------

def _two_sets(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    shutil.copy(ANNOTATIONS_DIR / f"{SEED_DOC}.jsonl", a)
    shutil.copy(ANNOTATIONS_DIR / f"{SEED_DOC}.jsonl", b)
    return a, b


def test_identical_sets_agree_perfectly(tmp_path, schema):
    a, b = _two_sets(tmp_path)
    ra, _ = read_file(a / f"{SEED_DOC}.jsonl")
    rb, _ = read_file(b / f"{SEED_DOC}.jsonl")
    result = agreement(align(ra, rb), schema)
    assert result.task_f1("claim_type") == 1.0 and result.task_f1("withdrawal") == 1.0
    assert all(r.kappa in (None, 1.0) for r in result.labels)


def test_disagreement_lowers_f1_and_kappa_by_hand_count(tmp_path, schema):
    a, b = _two_sets(tmp_path)
    rows = read_jsonl(b / f"{SEED_DOC}.jsonl")
    flipped = [r for r in rows if r["labels"]["withdrawal"]][:1]
    flipped[0]["labels"]["withdrawal"] = False
    write_jsonl(b / f"{SEED_DOC}.jsonl", rows)
    ra, _ = read_file(a / f"{SEED_DOC}.jsonl")
    rb, _ = read_file(b / f"{SEED_DOC}.jsonl")
    pos = sum(r.labels["withdrawal"] for r in ra)
    result = agreement(align(ra, rb), schema)
    # one of `pos` positives missed: precision 1, recall (pos-1)/pos
    assert result.task_f1("withdrawal") == pytest.approx(2 * (pos - 1) / (2 * pos - 1))
    assert result.task_kappa("withdrawal") < 1.0


def test_cli_agree_prints_table_and_fails_on_misaligned_units(tmp_path):
    a, b = _two_sets(tmp_path)
    ok = runner.invoke(app, ["agree", str(a), "--with", str(b)])
    assert ok.exit_code == 0, ok.output
    assert "claim_type" in ok.output and "kappa" in ok.output
    rows = read_jsonl(b / f"{SEED_DOC}.jsonl")
    write_jsonl(b / f"{SEED_DOC}.jsonl", rows[:-1])
    bad = runner.invoke(app, ["agree", str(a), "--with", str(b)])
    assert bad.exit_code == 1
    assert f"is not in the second set" in bad.output and "Traceback" not in bad.output
    js = runner.invoke(app, ["agree", str(a), "--with", str(a), "--json"])
    assert json.loads(js.output)["tasks"]["claim_type"]["f1"] == 1.0


def test_validate_names_labels_out_of_the_schemas_order(tmp_path, schema):
    import json

    from claims.corpus import validate as v
    from claims.util.paths import ANNOTATIONS_DIR

    source = ANNOTATIONS_DIR / "000_6d991916dd06222c.jsonl"
    rows = [json.loads(line) for line in source.read_text().splitlines()]
    line = next(i for i, r in enumerate(rows) if len(r["labels"]["claim_type"]) > 1)
    rows[line]["labels"]["claim_type"].reverse()
    path = tmp_path / source.name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    report = v.validate(schema, [path], seeds_dir=tmp_path / "none")
    assert [(p.line, p.field) for p in report.problems] == [(line + 1, "labels.claim_type")]
    assert "schema's order" in report.problems[0].message
    assert v.validate(schema, [source], seeds_dir=tmp_path / "none").ok
