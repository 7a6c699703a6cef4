
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from claims.training.behaviour import SUITE_DIR, cases, load_suite
from claims.cli import app
from claims.util.errors import InputError
from claims.corpus.gazetteer import load_gazetteer

runner = CliRunner()


@pytest.fixture(scope="module")
def gaz(schema):
    return load_gazetteer(schema)


def test_suite_covers_every_label_and_every_group(schema, gaz):
    suite = load_suite(schema, gaz)
    expected = {f"{t}.{label}" for t, labels in
                [(t.name, t.label_names) for t in schema.tasks if t.type == "multilabel"] for label in labels}
    mentioned = {f"{task}.{label}" for test in suite.tests for task, labels in test.expect.items()
                 if isinstance(labels, list) for label in labels}
    assert expected <= mentioned
    all_cases = cases(suite)
    group_cases = [c for c in all_cases if c.test.name == "group_claims_attack"]
    assert {a.aliases[0] for a in gaz.of_type("armed_group")} == {c.texts[0].split(" claimed")[0] for c in group_cases}
    assert {t.kind for t in suite.tests} == {"mft", "inv", "dir"}


def test_an_army_or_government_is_put_in_its_own_country(schema, gaz):
    # Beside another country's place its words would be external_observer (R96), not what the
    # templates expect; an actor whose country lists no place of the kind sits those cases out.
    suite = load_suite(schema, gaz)
    states = [a for a in gaz.actors if a.country is not None]
    own = {a.aliases[0]: set(gaz.by_country[a.country].get("towns", []) + gaz.by_country[a.country].get("bases", []))
           for a in states}
    placed = 0
    for case in cases(suite):
        if not {"town", "base"} & set(case.test.slots):
            continue
        for text in case.texts:
            names = [hit for *_, hit in gaz.find(text)]
            actor = next((a for a in names if not isinstance(a, str) and a.country is not None), None)
            if actor is not None:
                placed += 1
                places = {s for _, _, s, hit in gaz.find(text) if isinstance(hit, str)}
                assert places and places <= own[actor.aliases[0]], text
    assert placed >= 100
    unplaced = [a.aliases[0] for a in states if not own[a.aliases[0]]]
    assert unplaced and not any(a in c.texts[0] for c in cases(suite) for a in unplaced
                                if {"town", "base"} & set(c.test.slots))


def _bad_suite(tmp_path, old, new):
    folder = tmp_path / "behaviour"
    folder.mkdir()
    text = (SUITE_DIR / "suite.yaml").read_text()
    assert old in text
    (folder / "suite.yaml").write_text(text.replace(old, new, 1))
    return folder


def test_missing_slot_names_file_and_line(schema, gaz, tmp_path):
    folder = _bad_suite(tmp_path, 'template: "{group} claimed responsibility', 'template: "{gang} claimed responsibility')
    with pytest.raises(InputError) as e:
        load_suite(schema, gaz, folder)
    lines = (folder / "suite.yaml").read_text().splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "name: group_claims_attack" in t)
    assert f"suite.yaml:{line} [template]: unknown slot {{gang}}" in str(e.value)


def test_unknown_label_in_expectation(schema, gaz, tmp_path):
    folder = _bad_suite(tmp_path, "expect: {claim_type: [responsibility, attack]", "expect: {claim_type: [blame, attack]")
    with pytest.raises(InputError, match=r"suite.yaml:\d+ \[expect.claim_type\]: unknown label\(s\) \['blame'\]"):
        load_suite(schema, gaz, folder)


def test_unparsable_suite_file(schema, gaz, tmp_path):
    folder = tmp_path / "behaviour"
    folder.mkdir()
    (folder / "suite.yaml").write_text("tests:\n  - name: x\n    template: \"unclosed\n")
    with pytest.raises(InputError, match=r"suite.yaml:\d+: invalid YAML"):
        load_suite(schema, gaz, folder)


def test_check_prints_rates_logs_them_and_applies_thresholds(tfidf_package):
    pkg = str(tfidf_package["package"])
    result = runner.invoke(app, ["check", "--model", pkg, "--tracking-uri", tfidf_package["store"]])
    assert result.exit_code == 0, result.output
    assert "pass rate per test" in result.output and "group_claims_attack" in result.output
    assert "attribution.militant_group" in result.output and "overall pass rate" in result.output
    run = MlflowClient(tfidf_package["store"]).get_run(tfidf_package["run_id"])
    metrics = run.data.metrics
    assert 0 <= metrics["behaviour.pass_rate"] <= 1
    assert "behaviour.label.claim_type.attack" in metrics
    # per-template rates go to an artifact, not to dozens of metric columns
    assert not [k for k in metrics if k.startswith("behaviour.test.")]
    import mlflow

    mlflow.set_tracking_uri(tfidf_package["store"])
    details = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/behaviour.json")
    assert "inv_army" in details["per_test"] and 0 <= details["per_test"]["inv_army"] <= 1
    strict = runner.invoke(app, ["check", "--model", pkg, "--min-pass", "1.0", "--no-log"])
    assert strict.exit_code == 1 and "below threshold" in strict.output
