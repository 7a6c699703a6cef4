
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
    placed, seen_states = 0, set()
    for case in cases(suite):
        places = {slot: kind for slot, kind in suite.place_slots.items() if slot in case.test.slots}
        if not places:
            continue
        for text in case.texts:
            hits = gaz.find(text)
            countries = {hit.country for *_, hit in hits if not isinstance(hit, str) and hit.country}
            if not countries:
                continue
            assert len(countries) == 1, text
            home = gaz.by_country[countries.pop()]
            named = [(name, kind) for _, _, name, kind in hits if isinstance(kind, str)]
            assert named, text
            for name, kind in named:  # each place of its slot's kind, in the actor's own country
                assert kind in places.values() and name in home.get(kind, []), text
            placed += 1
            seen_states |= {hit.name for *_, hit in hits if not isinstance(hit, str) and hit.country}
    assert placed >= 100
    without_place = {a.name for a in gaz.actors if a.country and not any(gaz.by_country[a.country].values())}
    assert without_place and not (without_place & seen_states)


def test_two_states_in_one_sentence_and_a_varied_place_stay_in_one_country(schema, gaz, tmp_path):
    folder = tmp_path / "behaviour"
    folder.mkdir()
    (folder / "extra.yaml").write_text("""version: 1
slots:
  army: {actors: national_army}
  government: {actors: government}
  town: {places: towns}
tests:
  - name: two_states
    kind: mft
    template: "{government} said the {army} had pulled back from {town}."
    expect: {withdrawal: true}
  - name: vary_town
    kind: inv
    vary: town
    template: "The {army} said it had pulled back from {town}."
""")
    suite = load_suite(schema, gaz, folder)
    by_test = {}
    for case in cases(suite):
        by_test.setdefault(case.test.name, []).append(case)
        for text in case.texts:
            countries = {hit.country for *_, hit in gaz.find(text) if not isinstance(hit, str) and hit.country}
            towns = [name for _, _, name, kind in gaz.find(text) if kind == "towns"]
            assert len(countries) == 1 and towns[0] in gaz.by_country[countries.pop()]["towns"], text
    assert by_test["two_states"] and by_test["vary_town"]
    assert all(a != b for a, b in (c.texts for c in by_test["vary_town"]))


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
