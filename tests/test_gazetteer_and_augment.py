import random

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from tests.conftest import shrunk
from claims.training import loop
from claims.training import tracking
from claims.corpus.augment import augment, swap, variants
from claims.cli import app
from claims.util.errors import InputError
from claims.corpus.gazetteer import ACTORS_PATH, PLACES_PATH, load_gazetteer


@pytest.fixture(scope="module")
def gaz(schema):
    return load_gazetteer(schema)


def test_gazetteer_covers_the_region(gaz, schema):
    labels = {a.label for a in gaz.actors}
    assert labels == set(schema.task("attribution").label_names)
    names = {alias for a in gaz.actors for alias in a.aliases}
    for expected in ("ISWAP", "Boko Haram", "Al-Shabaab", "Ansarul Islam", "Wagner", "Africa Corps", "ACLED",
                     "Nigerien army", "Somali National Army", "MINUSMA"):
        assert expected in names, expected
    assert {"towns", "bases"} <= set(gaz.places)


def _bad_copy(tmp_path, old, new):
    path = tmp_path / "actors.yaml"
    text = ACTORS_PATH.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old, new, actor, message", [
    ("aliases: [Boko Haram, JAS,", "aliases: [Boko Haram, JNIM,", "Boko Haram",
     "[aliases]: duplicate alias 'JNIM' (first at line"),
    ("country: Chad", "country: Tchad", "Chadian army", "[country]: 'Tchad' is not a country of places.yaml"),
])
def test_a_bad_entry_names_file_and_line(schema, tmp_path, old, new, actor, message):
    path = _bad_copy(tmp_path, old, new)
    with pytest.raises(InputError) as e:
        load_gazetteer(schema, path, PLACES_PATH)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if f"name: {actor}" in text)
    assert f"actors.yaml:{line} {message}" in str(e.value)


def test_unknown_label_names_file_and_line(schema, tmp_path):
    path = _bad_copy(tmp_path, "label: militant_group", "label: militants")
    with pytest.raises(InputError, match=r"actors.yaml:\d+ \[label\]: unknown label 'militants'"):
        load_gazetteer(schema, path, PLACES_PATH)


def test_an_army_without_a_country_is_refused(schema, tmp_path):
    text = ACTORS_PATH.read_text()
    start = text.index("name: Chadian army")
    path = _bad_copy(tmp_path, text[start:text.index("country: Chad", start) + len("country: Chad\n")],
                     text[start:text.index("    country: Chad", start)])
    with pytest.raises(InputError, match=r"actors.yaml:\d+ \[country\]: required for type 'national_army'"):
        load_gazetteer(schema, path, PLACES_PATH)


def test_gazetteer_is_read_once_but_an_edited_file_is_read_again(schema, tmp_path):
    path = tmp_path / "actors.yaml"
    path.write_text(ACTORS_PATH.read_text())
    first = load_gazetteer(schema, path, PLACES_PATH)
    assert load_gazetteer(schema, path, PLACES_PATH) is first
    path.write_text(ACTORS_PATH.read_text().replace("aliases: [Boko Haram, JAS,", "aliases: [Boko Haram, JAS, Jama'atu Test,", 1))
    again = load_gazetteer(schema, path, PLACES_PATH)
    assert again is not first and "Jama'atu Test" in {a for actor in again.actors for a in actor.aliases}


def test_unparsable_gazetteer(schema, tmp_path):
    path = tmp_path / "actors.yaml"
    path.write_text("actors:\n  - name: [unclosed\n")
    with pytest.raises(InputError, match=r"actors.yaml:\d+: invalid YAML"):
        load_gazetteer(schema, path, PLACES_PATH)


def test_swap_keeps_type_and_leaves_other_text(gaz):
    rng = random.Random(0)
    text = "On Monday, JNIM said it targeted a military airport in the northern city of Timbuktu."
    out = swap(text, gaz, rng)
    groups = {a.aliases[0] for a in gaz.of_type("armed_group")} - {"JNIM"}
    assert out.startswith("On Monday, ") and " said it targeted a military airport in the northern city of " in out
    assert any(out.startswith(f"On Monday, {g} said") for g in groups)
    assert swap("Mali marked the Muslim festival of Eid el-Adha.", gaz, rng) is None


def test_augment_copies_labels(gaz):
    texts = ["The Malian army said it had been forced to pull back.", "ADVERTISEMENT"]
    y = np.array([[1, 0], [0, 1]])
    new_texts, new_y = augment(texts, y, gaz, copies=3, seed=0)
    assert new_texts[:2] == texts and len(new_texts) > 2
    armies = {a.aliases[0] for a in gaz.of_type("national_army")} - {"Malian army"}
    assert all(t in {f"The {a} said it had been forced to pull back." for a in armies} for t in new_texts[2:])
    assert (new_y[2:] == [1, 0]).all()


def test_a_units_copy_does_not_depend_on_the_other_units_of_its_training_part(gaz):
    unit = "JNIM said it had seized the army base in Boni."
    others = ["ISWAP fighters attacked Monguno.", "Al-Shabaab claimed the attack in Mogadishu."]
    alone, _ = variants([unit], gaz, copies=1, seed=3)
    after_others, rows = variants(others + [unit], gaz, copies=1, seed=3)
    assert alone and alone[0] in [t for t, r in zip(after_others, rows) if r == 2]


def test_augmentation_runs_inside_training_folds_and_is_logged(store):
    cfg = shrunk("tfidf_linear", "data.augment.enabled=true", "data.augment.copies=2")
    tracking.open_store(store)
    data = loop.load_data(cfg)
    result = loop.run(cfg, data, store)
    client = MlflowClient(store)
    [child] = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                                 filter_string=f"tags.mlflow.parentRunId = '{result.run_id}' and tags.claims.evaluation = 'cv'")
    assert child.data.metrics["data.augmented_units"] > 0
    assert client.get_run(result.run_id).data.metrics["data.augmented_units"] > 0
    assert child.data.metrics["fold.claim_type.casualties.support"] <= 14  # test fold: original units only


def test_validate_reports_gazetteer_problems(tmp_path, monkeypatch):
    from claims.corpus import gazetteer

    bad = _bad_copy(tmp_path, "label: local_source", "label: locals")
    monkeypatch.setattr(gazetteer, "ACTORS_PATH", bad)
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 1 and "actors.yaml" in result.output and "unknown label 'locals'" in result.output
