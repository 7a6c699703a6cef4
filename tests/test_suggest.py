"""`claims suggest`: model-assisted annotation tasks, article ranking and budget, provenance on import."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from claims.cli import app
from claims.corpus.labelspace import LabelSpace
from claims.corpus.opening import OPENING_UNITS, opening_of
from claims.corpus.segment import segment_file
from claims.predictor import suggest
from claims.predictor.predictor import Predictor
from claims.util.paths import SEEDS_DIR
from tests.conftest import read_jsonl

runner = CliRunner()
SEEDS = sorted(SEEDS_DIR.glob("*.txt"))
SEED = SEEDS[0]


def _expected(package: Path, path: Path) -> tuple[list[str], list[dict], np.ndarray]:
    """Unit ids, the predictor's labels and probabilities for one article, context = previous unit,
    and the article's opening."""
    predictor = Predictor.load(package)
    units = segment_file(path)
    texts = [u.text for u in units]
    pred = predictor.predict(texts, [""] + texts[:-1], [opening_of(texts[:OPENING_UNITS])] * len(texts))
    return [u.id for u in units], [predictor.space.decode(row) for row in pred.decisions], pred.proba


def _version(tfidf_package) -> str:
    return f"tfidf_linear@{tfidf_package['run_id']}"


def _suggest(tfidf_package, tmp_path, *args: str, name: str = "tasks.json", files=(SEED,)) -> Path:
    out = tmp_path / name
    r = runner.invoke(app, ["suggest", "--model", str(tfidf_package["package"]), *map(str, files), "-o", str(out), *args])
    assert r.exit_code == 0, r.output
    return out


def test_label_studio_pre_annotations_are_the_predictors_decisions(tfidf_package, tmp_path, schema):
    from claims.corpus import interchange

    out = _suggest(tfidf_package, tmp_path)
    tasks = json.loads(out.read_text())
    ids, labels, _ = _expected(tfidf_package["package"], SEED)
    assert [t["data"]["id"] for t in tasks] == ids
    assert (tmp_path / "tasks.config.xml").exists()
    for task, want in zip(tasks, labels):
        assert task["annotations"] == []
        [prediction] = task["predictions"]
        assert prediction["model_version"] == _version(tfidf_package)
        assert 0.0 <= prediction["score"] <= 1.0
        # each task's answer carries the model's confidence in it; the unit's is the smallest
        task_scores = [r.pop("score") for r in prediction["result"]]
        assert all(0.0 <= x <= 1.0 for x in task_scores)
        assert not task_scores or abs(min(task_scores) - prediction["score"]) < 1e-4
        assert prediction["result"] == interchange._ls_result(schema, want)
    # the tasks are the units `claims segment` writes, offsets and source included
    units = tmp_path / "units.jsonl"
    assert runner.invoke(app, ["segment", str(SEED), "-o", str(units)]).exit_code == 0
    for task, unit in zip(tasks, read_jsonl(units)):
        assert {k: task["data"][k] for k in ("id", "doc_id", "source", "start", "end", "text")} == \
               {k: unit[k] for k in ("id", "doc_id", "source", "start", "end", "text")}


def test_prodigy_pre_annotations_and_unit_jsonl_input(tfidf_package, tmp_path):
    units = tmp_path / "units.jsonl"
    assert runner.invoke(app, ["segment", str(SEED), "-o", str(units)]).exit_code == 0
    out = _suggest(tfidf_package, tmp_path, "--format", "prodigy", name="tasks.jsonl", files=(units,))
    items = read_jsonl(out)
    ids, labels, _ = _expected(tfidf_package["package"], SEED)
    assert [x["meta"]["id"] for x in items] == ids
    for item, want in zip(items, labels):
        expected = {f"claim_type:{c}" for c in want["claim_type"]} | {f"attribution:{a}" for a in want["attribution"]} \
            | ({"withdrawal:yes"} if want["withdrawal"] else set())
        assert set(item["accept"]) == expected
        assert item["meta"]["suggested"] == want
        assert item["meta"]["suggested_by"] == _version(tfidf_package)
        assert 0.0 <= item["meta"]["score"] <= 1.0
        assert set(item["meta"]["task_scores"]) == {"claim_type", "attribution", "withdrawal"}
        assert abs(min(item["meta"]["task_scores"].values()) - item["meta"]["score"]) < 1e-4


def test_ranking_on_hand_made_probabilities(schema):
    space = LabelSpace(schema)
    c = len(space)
    thresholds = np.full(c, 0.5)
    thresholds[0] = 0.2  # a low threshold: 0.2 is on it, 0.6 is half-way to certainty
    sure = np.where(np.arange(c) % 2 == 0, 0.0, 1.0)  # every column at p = 0 or 1: margin 1
    on_threshold = sure.copy()
    on_threshold[0] = 0.2
    half = sure.copy()
    half[0] = 0.6  # (0.6 - 0.2) / (1 - 0.2) = 0.5
    below = sure.copy()
    below[0] = 0.1  # (0.2 - 0.1) / 0.2 = 0.5
    empty = np.full(c, np.nan)
    conf = suggest.unit_confidence(np.vstack([sure, on_threshold, half, below, empty]), thresholds, space)
    assert conf == pytest.approx([1.0, 0.0, 0.5, 0.5, 1.0])

    # article uncertainty: the mean of (1 - confidence) over non-empty units
    articles = {"sure": [1.0, 1.0], "mixed": [1.0, 0.0], "halves": [0.5, 0.5, 1.0], "empty": [1.0]}
    unc = [suggest.article_uncertainty(v, [False] * (len(v) - (k == "empty")) + [k == "empty"])
           for k, v in articles.items()]
    assert unc == pytest.approx([0.0, 0.5, 1 / 3, 0.0])
    assert suggest.rank(unc, "uncertainty") == [1, 2, 0, 3]  # ties keep input order

    # the budget takes whole articles in that order until at least N units are in
    sizes = [2, 2, 3, 1]
    assert suggest.take_budget([1, 2, 0, 3], sizes, 1) == [1]
    assert suggest.take_budget([1, 2, 0, 3], sizes, 2) == [1]
    assert suggest.take_budget([1, 2, 0, 3], sizes, 3) == [1, 2]
    assert suggest.take_budget([1, 2, 0, 3], sizes, 100) == [1, 2, 0, 3]
    assert suggest.take_budget([1, 2, 0, 3], sizes, None) == [1, 2, 0, 3]


def test_budget_keeps_whole_articles_most_uncertain_first(tfidf_package, tmp_path, schema):
    files = SEEDS[:3]
    full = suggest.suggest(files, tfidf_package["package"], schema)
    assert full.total_articles == 3 and len(full.articles) == 3
    unc = [a.uncertainty for a in full.articles]
    assert unc == sorted(unc, reverse=True)
    predictor = Predictor.load(tfidf_package["package"])
    for article in full.articles:  # the article's score recomputed from the predictor's probabilities
        path = next(p for p in files if p.stem == article.doc_id)
        ids, labels, proba = _expected(tfidf_package["package"], path)
        assert [r.id for r in article.records] == ids and article.labels == labels
        conf = suggest.unit_confidence(proba, predictor.thresholds, predictor.space)
        assert article.uncertainty == pytest.approx(float(np.mean(1 - conf)), abs=1e-4)

    first = len(full.articles[0].records)
    out = _suggest(tfidf_package, tmp_path, "--budget", "1", files=files)
    tasks = json.loads(out.read_text())
    assert [t["data"]["id"] for t in tasks] == [r.id for r in full.articles[0].records]
    out = _suggest(tfidf_package, tmp_path, "--budget", str(first + 1), name="two.json", files=files)
    assert [t["data"]["id"] for t in json.loads(out.read_text())] == \
           [r.id for a in full.articles[:2] for r in a.records]


def test_random_strategy_is_reproducible_with_a_seed(tfidf_package, tmp_path):
    orders = {seed: suggest.rank([0.0] * 5, "random", seed) for seed in range(4)}
    assert orders[0] == suggest.rank([0.0] * 5, "random", 0)
    assert len({tuple(o) for o in orders.values()}) > 1  # the seed matters
    assert all(sorted(o) == list(range(5)) for o in orders.values())

    args = ("--strategy", "random", "--seed", "7", "--budget", "30")
    a = _suggest(tfidf_package, tmp_path, *args, name="a.json", files=SEEDS)
    b = _suggest(tfidf_package, tmp_path, *args, name="b.json", files=SEEDS)
    assert a.read_bytes() == b.read_bytes()
    docs = list(dict.fromkeys(t["data"]["doc_id"] for t in json.loads(a.read_text())))
    assert docs == [SEEDS[i].stem for i in suggest.rank([0.0] * len(SEEDS), "random", 7)][:len(docs)]


def test_diverse_strategy_skips_a_retelling_of_what_it_already_took(tfidf_package, tmp_path):
    mali = "JNIM fighters attacked the army camp at Boulkessi and claimed to have killed forty soldiers."
    retold = "JNIM fighters attacked the army camp at Boulkessi and claimed to have killed forty soldiers, AFP said."
    other = "Residents of Palma in Cabo Delgado said insurgents burned the market before Rwandan troops arrived."
    unc = [0.50, 0.49, 0.30]
    assert suggest.rank(unc, "uncertainty") == [0, 1, 2]
    assert suggest.rank(unc, "diverse", texts=[mali, retold, other]) == [0, 2, 1]
    # with equal uncertainty it is farthest-first; with no words at all, the uncertainty order
    assert suggest.rank([0.0, 0.0, 0.0], "diverse", texts=[mali, retold, other])[:2] == [0, 2]
    assert suggest.rank([0.1, 0.3], "diverse", texts=["", " "]) == [1, 0]
    with pytest.raises(ValueError, match="one text per article"):
        suggest.rank(unc, "diverse")

    out = _suggest(tfidf_package, tmp_path, "--strategy", "diverse", "--budget", "60", name="d.json", files=SEEDS)
    docs = list(dict.fromkeys(t["data"]["doc_id"] for t in json.loads(out.read_text())))
    assert docs and set(docs) <= {p.stem for p in SEEDS}


def _choice(task: str, *values: str) -> dict:
    return {"from_name": task, "to_name": "text", "type": "choices", "value": {"choices": list(values)}}


def test_label_studio_round_trip_marks_accepted_and_corrected(tfidf_package, tmp_path):
    out = _suggest(tfidf_package, tmp_path)
    tasks = json.loads(out.read_text())
    # "annotating" in Label Studio: the pre-annotation submitted as is, except task 1, which is
    # corrected, and the last task, which is skipped
    for t in tasks[:-1]:
        t["annotations"] = [{"completed_by": 4, "updated_at": "2026-12-01T09:00:00Z",
                             "result": json.loads(json.dumps(t["predictions"][0]["result"]))}]
    edited = tasks[1]["annotations"][0]["result"]
    old = next(r for r in edited if r["from_name"] == "claim_type")["value"]["choices"]
    new = ["casualties"] if old != ["casualties"] else ["attack"]
    tasks[1]["annotations"][0]["result"] = [r for r in edited if r["from_name"] != "claim_type"] + [_choice("claim_type", *new)]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    target = tmp_path / "annotations"
    r = runner.invoke(app, ["import", str(export), "--format", "label-studio", "--annotations-dir", str(target)])
    assert r.exit_code == 0, r.output
    rows = {row["id"]: row for row in read_jsonl(target / f"{SEED.stem}.jsonl")}
    _, labels, _ = _expected(tfidf_package["package"], SEED)
    for k, t in enumerate(tasks):
        meta = rows[t["data"]["id"]]["meta"]
        if k == len(tasks) - 1:
            assert "suggestion" not in meta and "suggested_by" not in meta  # not annotated: no provenance
            continue
        assert meta["suggested_by"] == _version(tfidf_package)
        assert meta["suggestion"] == ("corrected" if k == 1 else "accepted"), k
        assert meta["tool"] == "label-studio"
        if k != 1:
            assert rows[t["data"]["id"]]["labels"] == labels[k]
    assert rows[tasks[1]["data"]["id"]]["labels"]["claim_type"] == new
    # `claims validate` reports the agreement between the model and the annotator
    from claims.cli import suggestion_agreement
    from claims.corpus.annotations import read_all

    [line] = suggestion_agreement(read_all([target / f"{SEED.stem}.jsonl"])[0])
    assert f"{_version(tfidf_package)}: {len(tasks) - 2} of {len(tasks) - 1} units accepted unchanged" in line
    assert line.endswith("1 corrected")


def test_prodigy_round_trip_marks_accepted_and_corrected(tfidf_package, tmp_path):
    out = _suggest(tfidf_package, tmp_path, "--format", "prodigy", name="tasks.jsonl")
    items = read_jsonl(out)
    for x in items:  # as Prodigy writes its answers
        x.update({"_session_id": "s1", "_timestamp": 1764579600})
    items[2]["accept"] = [o for o in items[2]["accept"] if not o.startswith("withdrawal:")] + \
        ([] if "withdrawal:yes" in items[2]["accept"] else ["withdrawal:yes"])
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(x) + "\n" for x in items))
    target = tmp_path / "annotations"
    r = runner.invoke(app, ["import", str(export), "--format", "prodigy", "--annotations-dir", str(target)])
    assert r.exit_code == 0, r.output
    rows = read_jsonl(target / f"{SEED.stem}.jsonl")
    assert [row["meta"]["suggestion"] for row in rows] == ["corrected" if k == 2 else "accepted" for k in range(len(rows))]
    assert {row["meta"]["suggested_by"] for row in rows} == {_version(tfidf_package)}


def test_tasks_without_predictions_import_as_before(tmp_path, schema):
    """Plain `claims export` tasks carry no predictions: import adds no provenance."""
    from claims.corpus import interchange
    from claims.corpus.annotations import Record

    units = segment_file(SEED)[:2]
    recs = [Record(id=u.id, doc_id=u.doc_id, text=u.text, start=u.start, end=u.end, labels={}) for u in units]
    tasks = interchange.to_label_studio(recs, schema)
    for t in tasks:
        t["annotations"] = [{"completed_by": 1, "result": [_choice("claim_type", "attack")]}]
    path = tmp_path / "ls.json"
    path.write_text(json.dumps(tasks))
    for rec in interchange.from_label_studio(path, schema):
        assert "suggestion" not in rec.meta and "suggested_by" not in rec.meta


def test_a_suggestion_off_the_schema_or_from_an_earlier_round_gives_no_provenance(tmp_path, schema):
    """The annotators' work counts even when the model's suggestion no longer fits the schema, and a
    unit relabelled from a plain export loses the provenance of an earlier suggestion."""
    from claims.corpus import interchange
    from claims.corpus.annotations import Record

    units = segment_file(SEED)[:2]
    recs = [Record(id=u.id, doc_id=u.doc_id, text=u.text, start=u.start, end=u.end, labels={},
                   meta={"suggested_by": "old@run", "suggestion": "accepted"}) for u in units]
    tasks = interchange.to_label_studio(recs, schema)
    for t in tasks:
        t["annotations"] = [{"completed_by": 1, "result": [_choice("claim_type", "attack")]}]
    tasks[0]["predictions"] = [{"model_version": "m@1", "result": [_choice("claim_type", "retired_label")]}]
    path = tmp_path / "ls.json"
    path.write_text(json.dumps(tasks))
    records = interchange.from_label_studio(path, schema)
    assert [r.labels["claim_type"] for r in records] == [["attack"], ["attack"]]
    for rec in records:
        assert "suggestion" not in rec.meta and "suggested_by" not in rec.meta


def test_not_a_package_exits_non_zero_with_one_line_and_writes_nothing(tfidf_package, tmp_path):
    folder = tmp_path / "not_a_model"
    folder.mkdir()
    out = tmp_path / "tasks.json"
    r = runner.invoke(app, ["suggest", "--model", str(folder), str(SEED), "-o", str(out)])
    assert r.exit_code == 1
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(folder) in errors[0] and "not a model package" in errors[0], r.output
    assert "Traceback" not in r.output and not out.exists()

    # the bare model folder inside a package is not a package either
    r = runner.invoke(app, ["suggest", "--model", str(tfidf_package["package"] / "artifacts" / "model"), str(SEED), "-o", str(out)])
    assert r.exit_code == 1 and "not a model package" in r.output and not out.exists()


def test_unreadable_input_names_the_file_and_writes_nothing(tfidf_package, tmp_path):
    out = tmp_path / "tasks.json"
    out.write_text("previous")
    missing = tmp_path / "missing.txt"
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"A fine line.\n\xff\xfe broken\n")
    for path, message in ((missing, "input file not found"), (bad, "invalid UTF-8")):
        r = runner.invoke(app, ["suggest", "--model", str(tfidf_package["package"]), str(SEED), str(path), "-o", str(out)])
        assert r.exit_code == 1, r.output
        errors = [line for line in r.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and str(path) in errors[0] and message in errors[0], r.output
        assert out.read_text() == "previous"
