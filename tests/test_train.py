"""Training end to end on shrunk real configs, logged to a temporary MLflow store."""

import io
import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from tests.conftest import SHRINK, read_jsonl, shrunk, write_jsonl
from claims.training import loop
from claims.training import tracking
from claims.cli import app
from claims.util.paths import CONFIGS_DIR

runner = CliRunner()


def _run(cfg, store):
    tracking.open_store(store)
    return loop.run(cfg, loop.load_data(cfg), store)


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory):
    store = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    result = _run(shrunk("tfidf_linear"), store)
    return store, result


def test_parent_run_has_params_metrics_tags_and_dataset(tfidf_run):
    store, result = tfidf_run
    run = MlflowClient(store).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    p, m, t = run.data.params, run.data.metrics, run.data.tags
    assert p["model.name"] == "tfidf_linear.v1" and p["eval.max_folds"] == "1" and p["model.C"] == "4.0"
    for key in ("cv.claim_type.casualties.f1", "cv.claim_type.casualties.precision", "cv.claim_type.macro_f1",
                "cv.claim_type.micro_f1", "cv.claim_type.exact_match", "cv.attribution.macro_f1",
                "cv.withdrawal.f1", "cv.withdrawal.average_precision", "time.total_seconds"):
        assert key in m, key
    # One seed (a deterministic family): no standard deviations; per-fold figures live in child runs.
    assert not [k for k in m if k.endswith("_std") or k.startswith("fold.")]
    assert t["claims.family"] == "tfidf_linear.v1" and t["claims.role"] == "parent"
    assert t["claims.tasks"] == "claim_type,attribution,withdrawal"
    assert len(t["claims.data_digest"]) == 16
    assert t["claims.git_dirty"] in ("true", "false", "unknown")
    assert t["version.torch"].startswith("2.13.0")
    [ds_input] = run.inputs.dataset_inputs
    assert ds_input.dataset.digest == t["claims.data_digest"]


def test_child_runs_per_fold_and_seed(tfidf_run):
    store, result = tfidf_run
    parent = MlflowClient(store).get_run(result.run_id)
    children = MlflowClient(store).search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    # max_folds=1: one fold of (a) and one held-out country of (b); one seed (deterministic family)
    assert sorted(c.data.tags["claims.evaluation"] for c in children) == ["country", "cv"]
    [child] = [c for c in children if c.data.tags["claims.evaluation"] == "cv"]
    assert child.data.tags["claims.evaluation"] == "cv" and child.data.tags["claims.heldout"] == "fold1"
    assert "fold.claim_type.macro_f1" in child.data.metrics
    assert "threshold.withdrawal.yes" in child.data.metrics


def test_artifacts_reports_and_self_describing_model(tfidf_run, tmp_path):
    store, result = tfidf_run
    client = MlflowClient(store)
    top = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config.yaml", "reports", "model"} <= top
    reports = {Path(a.path).name for a in client.list_artifacts(result.run_id, "reports")}
    assert {"per_label_report.csv", "per_label_report.md", "per_label_f1.png", "confusion_matrices.png",
            "oof_predictions.csv", "oof_predictions.json"} <= reports
    local = Path(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="model", dst_path=tmp_path))
    assert {"family.json", "config.yaml", "schema.yaml", "thresholds.json", "metrics.json", "data.json",
            "head.skops", "ngrams.skops"} <= {p.name for p in local.iterdir()}
    # A family that does not read the opening has no loose sentences to tell apart.
    assert not {"thresholds_loose.json", "head_loose.skops"} & {p.name for p in local.iterdir()}
    assert not any(k.startswith("cv_loose.") for k in client.get_run(result.run_id).data.metrics)
    tags = client.get_run(result.run_id).data.tags
    assert json.loads((local / "data.json").read_text())["digest"] == tags["claims.data_digest"]
    thresholds = json.loads((local / "thresholds.json").read_text())
    assert list(thresholds) == loop.load_data(result.config).space.column_names
    np.testing.assert_allclose(list(thresholds.values()), result.thresholds)
    assert json.loads((local / "metrics.json").read_text()) == pytest.approx(
        {f"{prefix}.{k}": v for prefix, m in result.evaluations.items() for k, v in m.items()})


def test_scikit_learn_families_are_exactly_reproducible(store):
    a = _run(shrunk("tfidf_linear"), store)
    b = _run(shrunk("tfidf_linear"), store)
    assert a.cv == b.cv
    np.testing.assert_array_equal(a.thresholds, b.thresholds)


def test_finetune_is_reproducible_on_cpu(store):
    cfg = shrunk("finetune", "data.max_units_per_doc=8", "eval.tune_thresholds=false")
    a, b = _run(cfg, store), _run(cfg, store)
    for key in a.cv:
        assert a.cv[key] == pytest.approx(b.cv[key], abs=1e-4), key
    run = MlflowClient(store).get_run(a.run_id)
    history = MlflowClient(store).get_metric_history(a.run_id, "final.train.loss")
    assert len(history) == 1 and run.data.tags["claims.family"] == "finetune.v1"


def test_failed_run_is_marked_failed(store, monkeypatch):
    from claims.models.families.tfidf_linear import TfidfLinear

    def boom(self, texts, y, contexts):
        raise RuntimeError("boom")

    monkeypatch.setattr(TfidfLinear, "_fit", boom)
    with pytest.raises(RuntimeError):
        _run(shrunk("tfidf_linear"), store)
    runs = mlflow.search_runs(experiment_names=["conflict-claims"], filter_string="tags.`claims.role` = 'parent'")
    assert set(runs["status"]) == {"FAILED"}


# -- the CLI: bad input stops before training, with one clear message ---------------------------

def _cli(*args):
    return runner.invoke(app, ["train", *args])


def _no_runs(store: str) -> bool:
    mlflow.set_tracking_uri(store)
    exp = mlflow.get_experiment_by_name("conflict-claims")
    return exp is None or mlflow.search_runs([exp.experiment_id]).empty


def test_cli_trains_packages_checks_several_configs_and_compare_ranks_them(store, tmp_path):
    args = [str(CONFIGS_DIR / "majority.yaml"), str(CONFIGS_DIR / "tfidf_linear.yaml"), "--tracking-uri", store,
            "--quiet", "--models-dir", str(tmp_path / "models")]
    for s in SHRINK:
        args += ["--set", s]
    result = _cli(*args)
    assert result.exit_code == 0, result.output
    assert result.output.count("\t") == 2
    assert (tmp_path / "models" / "tfidf_linear" / "MLmodel").exists()
    result = runner.invoke(app, ["compare", "--tracking-uri", store])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "majority" in line or "tfidf_linear" in line]
    assert len(lines) == 2 and "tfidf_linear" in lines[0]  # best first
    assert "behaviour" in result.output and "score" in result.output
    result = runner.invoke(app, ["compare", "--tracking-uri", store, "--json", "--sort", "seconds"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["config"] for r in rows} == {"majority", "tfidf_linear"}
    assert [r["seconds"] for r in rows] == sorted(r["seconds"] for r in rows) and "score" in rows[0]
    result = runner.invoke(app, ["compare", "--tracking-uri", store, "--sort", "nonsense"])
    assert result.exit_code == 1 and "unknown column 'nonsense'" in result.output
    # The MLflow UI: a model-development experiment, and on each parent run the score that picks the
    # default (as `claims compare` computes it) and a description.
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("conflict-claims")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    by_config = {r["config"]: r for r in rows}
    for run in client.search_runs([exp.experiment_id], "tags.`claims.role` = 'parent'"):
        row = by_config[run.data.tags["claims.config"]]
        assert abs(run.data.metrics["score"] - row["score"]) < 1e-9
        assert "score (chooses the default)" in run.data.tags["mlflow.note.content"]
        # per-template behavioural rates are an artifact, not dozens of metric columns
        assert "behaviour.pass_rate" in run.data.metrics
        assert not [k for k in run.data.metrics if k.startswith("behaviour.test.")]
        details = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/behaviour.json")
        assert details["per_test"] and abs(details["overall"] - run.data.metrics["behaviour.pass_rate"]) < 1e-12
    result = runner.invoke(app, ["package", "best", "--name", "default", "--tracking-uri", store,
                                 "--models-dir", str(tmp_path / "models")])
    assert result.exit_code == 0, result.output
    assert "best run: tfidf_linear" in result.output
    assert (tmp_path / "models" / "default" / "MLmodel").exists()
    # Ranking among some configs only (`make run`: --among ensemble).
    result = runner.invoke(app, ["package", "best", "--among", "majority", "--name", "low", "--tracking-uri", store,
                                 "--models-dir", str(tmp_path / "models")])
    assert result.exit_code == 0, result.output
    assert "best run: majority" in result.output
    result = runner.invoke(app, ["package", "best", "--among", "nosuch", "--name", "x", "--tracking-uri", store,
                                 "--models-dir", str(tmp_path / "models")])
    assert result.exit_code == 1 and "for config(s) nosuch" in result.output
    result = runner.invoke(app, ["package", "best", "--among", "majority", "--among", "tfidf_linaer", "--name", "x",
                                 "--tracking-uri", store, "--models-dir", str(tmp_path / "models")])
    assert result.exit_code == 1 and "no finished run of config(s) tfidf_linaer" in " ".join(result.output.split())
    result = runner.invoke(app, ["package", rows[0]["run_id"], "--among", "majority", "--name", "x",
                                 "--tracking-uri", store, "--models-dir", str(tmp_path / "models")])
    assert result.exit_code == 1 and "only with 'best'" in result.output
    assert not (tmp_path / "models" / "x").exists()
    # A mixed store: the majority config run again without (b), as the main job runs. Among both, the
    # score drops (b) for both; in the plain ranking the run without (b) ranks last; its UI run logs no score.
    args = ["train", str(CONFIGS_DIR / "majority.yaml"), "--tracking-uri", store, "--models-dir",
            str(tmp_path / "models"), "--quiet", "--no-behaviour", "--set", "eval.country_folds=false"]
    for item in SHRINK:
        args += ["--set", item]
    assert runner.invoke(app, args).exit_code == 0
    plain = json.loads(runner.invoke(app, ["compare", "--tracking-uri", store, "--json"]).output)
    assert [r["config"] for r in plain] == ["tfidf_linear", "majority"] and plain[1]["score"] == -1.0
    among = json.loads(runner.invoke(app, ["compare", "--tracking-uri", store, "--json", "--among", "majority",
                                           "--among", "tfidf_linear"]).output)
    assert all(r["score"] > 0 for r in among)
    table = runner.invoke(app, ["compare", "--tracking-uri", store, "--among", "majority", "--among", "tfidf_linear"])
    assert "score = mean of (a)" in " ".join(table.output.split()) and "(b)" not in table.output.split("score")[1][:40]
    latest = client.search_runs([exp.experiment_id], "tags.`claims.role` = 'parent' and tags.`claims.config` = 'majority'",
                                order_by=["attributes.start_time DESC"])[0]
    assert "score" not in latest.data.metrics and "has no (b)" in latest.data.tags["mlflow.note.content"]


def test_a_run_without_b_ranks_last_among_runs_with_it_but_on_its_own_parts_among_its_peers():
    import pandas as pd

    from claims.training.compare import score

    both = pd.DataFrame({"a.m": [0.8, 0.6], "b.m": [0.7, 0.5], "behaviour": [0.9, 0.9]})
    assert list(score(both, ["m"]).round(4)) == [0.8, round((0.6 + 0.5 + 0.9) / 3, 4)]
    mixed = pd.DataFrame({"a.m": [0.8, 0.6], "b.m": [float("nan"), 0.5], "behaviour": [0.9, 0.9]})
    assert list(score(mixed, ["m"]).round(4)) == [-1.0, round((0.6 + 0.5 + 0.9) / 3, 4)]
    main_job = pd.DataFrame({"a.m": [0.8, 0.6], "b.m": [float("nan")] * 2, "behaviour": [0.9, 0.7]})
    assert list(score(main_job, ["m"]).round(4)) == [0.85, 0.65]


def test_a_normal_train_prints_progress_and_results_and_nothing_else(store, tmp_path):
    """Run as a user runs it (a new process, not --quiet): no MLflow INFO lines, no library warnings,
    no colour codes when the output is not a terminal; the results table on stdout."""
    import os
    import subprocess
    import sys

    args = [sys.executable, "-m", "claims.cli", "train", str(CONFIGS_DIR / "majority.yaml"), "--tracking-uri", store,
            "--models-dir", str(tmp_path / "models"), "--no-behaviour"]
    for s in SHRINK:
        args += ["--set", s]
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    assert "Headline F1 per task" in done.stdout and "majority" in done.stdout
    noise = [line for line in done.stderr.splitlines()
             if " INFO " in line or "Warning" in line or "\x1b[" in line or "color_warning" in line]
    assert not noise, noise


def test_cli_invalid_config_stops_before_training(store, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel:\n  name: tfidf_linear.v1\n  CC: 2\n")
    result = _cli(str(bad), "--tracking-uri", store)
    assert result.exit_code == 1 and "[model.CC]" in result.output and "Traceback" not in result.output
    assert _no_runs(store)


def test_cli_unknown_registry_name(store):
    result = _cli(str(CONFIGS_DIR / "majority.yaml"), "--set", "model.name=majority.v9", "--tracking-uri", store)
    assert result.exit_code == 1 and "unknown model family 'majority.v9'" in result.output
    assert _no_runs(store)


def test_cli_missing_annotation_file(store, tmp_path):
    result = _cli(str(CONFIGS_DIR / "majority.yaml"), "--set", f"data.annotations=[{tmp_path}/none.jsonl]",
                  "--tracking-uri", store)
    assert result.exit_code == 1 and "none.jsonl: annotation file not found" in result.output
    assert _no_runs(store)


def test_cli_invalid_annotations(store, mini_corpus):
    rows = read_jsonl(mini_corpus["file"])
    rows[3]["labels"]["claim_type"] = ["attacks"]
    write_jsonl(mini_corpus["file"], rows)
    result = _cli(str(CONFIGS_DIR / "majority.yaml"), "--set", f"data.annotations=[{mini_corpus['file']}]",
                  "--tracking-uri", store)
    assert result.exit_code == 1 and ":4 [labels.claim_type]" in result.output
    assert _no_runs(store)


def test_cli_unopenable_tracking_store(tmp_path):
    result = _cli(str(CONFIGS_DIR / "majority.yaml"), "--tracking-uri", f"sqlite:///{tmp_path}/no/such/dir/m.db")
    assert result.exit_code == 1 and "tracking store" in result.output and "does not exist" in result.output


class CountingProgress(loop.Progress):
    def __init__(self):
        self.planned, self.fits = None, 0

    def start(self, name, total_fits, epochs):
        self.planned = total_fits

    def fit_done(self):
        self.fits += 1


def test_folds_take_thresholds_from_each_other(tmp_path):
    """With several folds, (a) fits each fold once and logs every fold's metrics and thresholds to its
    own child run, the thresholds tuned on the other folds' out-of-fold predictions."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.open_store(store)
    cfg = shrunk("tfidf_linear", "eval.max_folds=3", "eval.country_folds=false")
    data, progress = loop.load_data(cfg), CountingProgress()
    result = loop.run(cfg, data, store, progress)
    assert progress.planned == progress.fits == 3 + 1  # one fit per fold, then the final fit
    client = MlflowClient(store)
    parent = client.get_run(result.run_id)
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert sorted(c.data.tags["claims.heldout"] for c in children) == ["fold1", "fold2", "fold3"]
    for child in children:
        assert "fold.claim_type.macro_f1" in child.data.metrics and "threshold.withdrawal.yes" in child.data.metrics
    counted = CountingProgress()  # the inner split: two more fits per fold
    loop.run(cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"thresholds_from": "inner_split"})}),
             data, store, counted)
    assert counted.planned == counted.fits == 3 * (1 + cfg.eval.inner_folds) + 1


def test_units_without_their_opening_are_scored_as_the_package_decides_them(tmp_path):
    """cv_loose: (a)'s held-out units without their opening. A loose head is the model without the
    opening channel, so with its own thresholds (tuned on the other folds) it scores exactly that
    model's (a); without a loose head they are logged too, but no loose thresholds are written."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.open_store(store)
    runs = {}
    for name, extra in {"loose": ["model.opening=true", "model.loose_head=true"], "plain": ["model.opening=false"],
                        "framed": ["model.opening=true"]}.items():
        cfg = shrunk("tfidf_linear", "eval.max_folds=3", "eval.country_folds=false", *extra)
        runs[name] = loop.run(cfg, loop.load_data(cfg), store)
    assert runs["loose"].evaluations["cv_loose"] == pytest.approx(runs["plain"].evaluations["cv"], abs=1e-9)
    assert runs["loose"].evaluations["cv"] == pytest.approx(runs["framed"].evaluations["cv"], abs=1e-9)
    assert "cv_loose" in runs["framed"].evaluations and "cv_loose" not in runs["plain"].evaluations
    assert runs["framed"].evaluations["cv_loose"] != pytest.approx(runs["loose"].evaluations["cv_loose"])
    client = MlflowClient(store)
    written = {name: {Path(a.path).name for a in client.list_artifacts(r.run_id, "model")} for name, r in runs.items()}
    assert {"thresholds_loose.json", "head_loose.skops"} <= written["loose"]
    assert not {"thresholds_loose.json", "head_loose.skops"} & (written["framed"] | written["plain"])


def _independent_suspects(oof: Path, limit: int, per_article: int) -> list[tuple[str, float]]:
    """The same ranking computed another way (pandas, column by column), to check `suspects.rank`."""
    import pandas as pd

    df = pd.read_csv(oof, keep_default_na=False)
    confidences = []
    for column in [c[2:] for c in df.columns if c.startswith("p.")]:
        task, label = column.split(".", 1)
        if task == "withdrawal":
            given, decided = df[f"{task}.true"].astype(str) == "True", df[f"{task}.pred"].astype(str) == "True"
        else:
            given = df[f"{task}.true"].astype(str).str.split(",").apply(lambda v: label in v)
            decided = df[f"{task}.pred"].astype(str).str.split(",").apply(lambda v: label in v)
        p = df[f"p.{column}"].astype(float)
        confidences.append(((1 - p).where(given, p)).where(given != decided))
    df["score"] = pd.concat(confidences, axis=1).max(axis=1)
    df = df.dropna(subset=["score"]).sort_values("score", ascending=False, kind="stable")
    df = df[df.groupby("doc_id").cumcount() < per_article].head(limit)
    return list(zip(df["id"], df["score"].round(6)))


def test_suspects_rank_the_runs_confident_contradictions(tfidf_run, tmp_path):
    """`claims suspects` on a real run's out-of-fold table equals an independent computation of the
    ranking; bad tables and paths are one clear line each, and nothing is written for them."""
    import csv

    from claims.corpus.labelspace import LabelSpace
    from claims.corpus.schema import load_schema
    from claims.training import suspects

    store, result = tfidf_run
    # the store named explicitly: tests before this one point MLflow's global tracking URI elsewhere
    oof = Path(MlflowClient(store).download_artifacts(result.run_id, "reports/oof_predictions.csv", str(tmp_path)))
    space = LabelSpace(load_schema())
    units = suspects.read_oof(oof, space)
    found = suspects.rank(units, space, limit=25, per_article=4)
    assert len(found) >= 5 and any(how == "missed" for s in found for _, how, _ in s.contradictions)
    assert [(s.id, round(s.score, 6)) for s in found] == _independent_suspects(oof, 25, 4)
    capped = suspects.rank(units, space, limit=25, per_article=1)
    assert len({s.doc_id for s in capped}) == len(capped) < len(found)
    assert [(s.id, round(s.score, 6)) for s in capped] == _independent_suspects(oof, 25, 1)
    assert found[0].id not in {s.id for s in suspects.rank(units, space, 25, 4, skip={found[0].id})}

    out = tmp_path / "suspects.csv"
    cli = runner.invoke(app, ["suspects", str(oof), "-o", str(out), "--limit", "3", "--no-skip-rechecked"])
    assert cli.exit_code == 0, cli.output
    assert [r["id"] for r in csv.DictReader(out.open())] == [i for i, _ in _independent_suspects(oof, 3, 2)]

    lines = oof.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    row = next(csv.reader([lines[3]]))

    def table(name: str, edit: dict[str, str]) -> Path:
        cells = [edit.get(h, v) for h, v in zip(header, row)]
        body = io.StringIO()
        csv.writer(body, lineterminator="").writerow(cells)
        # a blank line before the bad row: the error must name the file's line, not the record's number
        path = tmp_path / name
        path.write_text("\n".join(lines[:3] + ["", body.getvalue()] + lines[4:]) + "\n", encoding="utf-8")
        return path

    cases = {
        table("p.csv", {"p.withdrawal.yes": "1.7"}): ":5 [p.withdrawal.yes]: not a probability: '1.7'",
        table("w.csv", {"withdrawal.true": "yes"}): ":5 [withdrawal.true]: expected True or False, got 'yes'",
        table("l.csv", {"claim_type.true": "casualty"}): ":5 [claim_type.true]: unknown label 'casualty'",
    }
    (tmp_path / "header.csv").write_text(lines[0] + "\n", encoding="utf-8")
    cases[tmp_path / "header.csv"] = ": no units: the table has a header only"
    (tmp_path / "latin1.csv").write_bytes(oof.read_bytes() + "é".encode("latin-1"))
    cases[tmp_path / "latin1.csv"] = ": not UTF-8 text"
    cases[tmp_path] = ": is a folder"
    for path, message in cases.items():
        cli = runner.invoke(app, ["suspects", str(path), "-o", str(tmp_path / "x.csv"), "--no-skip-rechecked"])
        assert cli.exit_code == 1 and f"error: {path}{message}" in cli.output, (path, cli.output)
        assert "Traceback" not in cli.output
    assert not (tmp_path / "x.csv").exists()
    before = oof.read_bytes()
    cli = runner.invoke(app, ["suspects", str(oof), "-o", str(oof)])
    assert cli.exit_code == 1 and "the output is the input" in cli.output and oof.read_bytes() == before
