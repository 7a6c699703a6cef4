
from typer.testing import CliRunner

from tests.conftest import SEED_DOC, read_jsonl, write_jsonl
from claims.cli import app
from claims.corpus.manifest import load_manifest
from claims.corpus.segment import segment_file
from claims.corpus.validate import validate
from claims.util.paths import ROOT

runner = CliRunner()


def _expected_units() -> tuple[int, int]:
    """Units and articles the manifest promises annotated: every unit of every non-pending article."""
    manifest = load_manifest()
    listed = [a for a in manifest.articles if a.split != "pending"]
    return sum(len(segment_file(ROOT / a.path)) for a in listed), len(manifest.articles)


def test_committed_corpus_is_valid_and_complete(schema):
    report = validate(schema)
    assert report.ok, "\n".join(map(str, report.problems))
    units, _ = _expected_units()
    assert len(report.records) == units
    assert {r.doc_id for r in report.records} >= {a.id for a in load_manifest().articles if a.split == "seed"}


def test_cli_validate_passes_and_prints_counts():
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    units, articles = _expected_units()
    assert f"{units} annotated units in {articles} articles" in result.output
    assert "territorial_control" in result.output


def _problems(schema, corpus) -> list[str]:
    report = validate(schema, [corpus["file"]], corpus["seeds"])
    return [str(p) for p in report.problems]


def _mutate(corpus, fn):
    rows = read_jsonl(corpus["file"])
    fn(rows)
    write_jsonl(corpus["file"], rows)


def test_fixture_starts_valid(schema, mini_corpus):
    assert _problems(schema, mini_corpus) == []


def test_malformed_json_line(schema, mini_corpus):
    lines = mini_corpus["file"].read_text().splitlines()
    lines[2] = lines[2][:-5]
    mini_corpus["file"].write_text("\n".join(lines) + "\n")
    probs = _problems(schema, mini_corpus)
    assert any(f"{SEED_DOC}.jsonl:3: malformed JSON" in p for p in probs), probs


def test_unknown_task(schema, mini_corpus):
    _mutate(mini_corpus, lambda rows: rows[1]["labels"].update(stance=["pro"]))
    probs = _problems(schema, mini_corpus)
    assert any(":2 [labels.stance]: unknown task" in p for p in probs), probs


def test_unknown_label(schema, mini_corpus):
    _mutate(mini_corpus, lambda rows: rows[2]["labels"].update(claim_type=["casualty"]))
    probs = _problems(schema, mini_corpus)
    assert any(":3 [labels.claim_type]: unknown label(s) ['casualty']" in p for p in probs), probs


def test_missing_task(schema, mini_corpus):
    _mutate(mini_corpus, lambda rows: rows[3]["labels"].pop("withdrawal"))
    probs = _problems(schema, mini_corpus)
    assert any(":4 [labels.withdrawal]: task not annotated" in p for p in probs), probs


def test_wrong_type_for_binary(schema, mini_corpus):
    _mutate(mini_corpus, lambda rows: rows[3]["labels"].update(withdrawal="yes"))
    probs = _problems(schema, mini_corpus)
    assert any(":4 [labels.withdrawal]: binary task expects true or false" in p for p in probs), probs


def test_duplicate_id(schema, mini_corpus):
    _mutate(mini_corpus, lambda rows: rows.append(dict(rows[5])))
    probs = _problems(schema, mini_corpus)
    n = len(read_jsonl(mini_corpus["file"]))
    assert any(f":{n} [id]: duplicate id" in p and ":6)" in p for p in probs), probs


def test_text_differs_from_raw_file(schema, mini_corpus):
    _mutate(mini_corpus, lambda rows: rows[8].update(text=rows[8]["text"].replace("30", "300")))
    probs = _problems(schema, mini_corpus)
    assert any(":9 [text]: differs from seeds/" in p for p in probs), probs


def test_unit_of_a_seed_without_annotation(schema, mini_corpus):
    _mutate(mini_corpus, lambda rows: rows.pop(10))
    probs = _problems(schema, mini_corpus)
    assert any(f"{SEED_DOC}.txt [{SEED_DOC}:10]: unit has no annotation" in p for p in probs), probs


def test_every_error_is_reported_in_one_run(schema, mini_corpus):
    def break_many(rows):
        rows[1]["labels"]["stance"] = []
        rows[2]["labels"]["claim_type"] = ["casualty"]
        rows[3]["labels"].pop("withdrawal")
        rows.pop(10)
    _mutate(mini_corpus, break_many)
    assert len(_problems(schema, mini_corpus)) == 4


def test_cli_exits_nonzero_naming_file_line_and_field(mini_corpus):
    _mutate(mini_corpus, lambda rows: rows[2]["labels"].update(attribution=["army"]))
    result = runner.invoke(app, ["validate", str(mini_corpus["file"]), "--seeds", str(mini_corpus["seeds"])])
    assert result.exit_code == 1
    assert f"{SEED_DOC}.jsonl:3 [labels.attribution]" in result.output
