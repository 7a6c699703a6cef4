"""The `claims` command: a thin typer layer over typed functions that the tests call directly."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from claims.corpus import annotations
from claims.corpus import interchange
from claims.util.errors import InputError, Problem, fail
from claims.util.paths import ANNOTATIONS_DIR, MODELS_DIR, SCHEMA_PATH
from claims.corpus.schema import load_schema

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
err = Console(stderr=True)


def out() -> Console:
    """Standard output for tables, sized when a command prints: to the terminal (or $COLUMNS), and
    to 160 columns when piped to a file or a CI log, where there is no terminal to measure."""
    return Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160)


def reports_input_errors(fn):
    """Turn bad input into one clear message per problem and exit code 1, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as e:
            for problem in e.problems:
                typer.echo(f"error: {problem}", err=True)
            typer.echo(f"{len(e.problems)} problem(s) found", err=True)
            raise typer.Exit(1) from None
        except BrokenPipeError:  # the reader of our output stopped (`| head`): nothing more to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
        except Exception as e:
            # missing weights or GPU; a diverged fit; the system refusing a file (permissions, a
            # full disk), where OSError says which file when it knows
            if (type(e).__name__ in ("EncoderMissing", "DeviceMissing")
                    or isinstance(e, (FloatingPointError, OSError))):
                typer.echo(f"error: {e}", err=True)
                raise typer.Exit(1) from None
            raise
        except BaseException as e:
            if type(e).__name__ == "Terminated":  # SIGTERM: open runs are already marked FAILED
                typer.echo(f"stopped: {e}", err=True)
                raise typer.Exit(143) from None
            raise

    return wrapper


SchemaOpt = Annotated[Path, typer.Option("--schema", help="Label schema YAML.")]


def output_file(given: str) -> Path:
    """An `-o` path as typed: pathlib drops a trailing slash or `/.` (`out.jsonl/` becomes `out.jsonl`), but
    the user named a folder, so writing a file there would not be what was asked."""
    if os.path.basename(given) in ("", ".", ".."):
        raise typer.BadParameter(f"{given} names a folder: give a file path for the output")
    return Path(given)


@app.callback()
def quiet_libraries() -> None:
    """Library chatter says nothing to a user of this command line: MLflow's INFO log lines (store
    migrations, input-example validation) are hidden; its warnings and errors still come through."""
    # MLflow sets its loggers' level from MLFLOW_LOGGING_LEVEL when it is imported, which is after
    # this runs; a user's own setting wins.
    import logging

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("alembic").setLevel(logging.WARNING)


@app.command()
@reports_input_errors
def segment(
    files: Annotated[list[Path], typer.Argument(help="Raw article text files.", exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Option("-o", "--output", parser=output_file, help="Units as JSONL.")],
) -> None:
    """Split raw articles into sentence units with exact character offsets.

    Example: claims segment articles/new/report.txt -o units.jsonl
    """
    from claims.util import atomic
    from claims.corpus.segment import segment_file

    lines = []
    for path in files:
        for unit in segment_file(path):
            lines.append(json.dumps({**unit.to_dict(), "source": annotations.relative_source(path)}, ensure_ascii=False))
    atomic.write_text(output, "\n".join(lines) + "\n")
    err.print(f"{len(lines)} units from {len(files)} file(s) -> {output}")


@app.command()
@reports_input_errors
def validate(
    files: Annotated[Optional[list[Path]], typer.Argument(help="Annotation files (default: the whole corpus, per the manifest).")] = None,
    schema_path: SchemaOpt = SCHEMA_PATH,
    seeds: Annotated[Optional[Path], typer.Option(help="With FILES: every unit of the raw files here must be annotated.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="A missed label floor is an error (exit 1).")] = False,
) -> None:
    """Check annotations against the schema, the raw files and labels/articles.yaml; print, per split,
    articles, units, countries, styles and positives per label, marking missed label floors.

    Example: claims validate --strict
    """
    from claims.corpus.gazetteer import load_gazetteer
    from claims.corpus.manifest import load_manifest
    from claims.corpus.validate import missed_floors, split_stats
    from claims.corpus.validate import validate as run_validation
    from claims.training.behaviour import load_suite

    schema = load_schema(schema_path)
    manifest = None if files else load_manifest()
    report = run_validation(schema, files or None, seeds, manifest=manifest)
    problems = list(report.problems)
    try:  # the gazetteer and the behavioural suites are checked with the corpus
        load_suite(schema, load_gazetteer(schema))
    except InputError as e:
        problems.extend(e.problems)
    if problems:
        raise InputError(problems)
    for line in suggestion_agreement(report.records):
        err.print(line)
    if manifest is None:
        err.print(f"{len(report.records)} annotated units in {len({r.doc_id for r in report.records})} articles: valid")
        return
    stats = split_stats(report.records, manifest, schema)
    missed = missed_floors(stats, manifest.floors, schema)
    _print_split_tables(stats, manifest, schema, missed)
    if missed:
        for line in missed:
            err.print(f"[yellow]floor missed[/yellow] {line}")
        if strict:
            raise typer.Exit(1)


def suggestion_agreement(records) -> list[str]:
    """One line per model whose suggestions were annotated (`claims suggest`, then `claims import`):
    how many units the annotators accepted unchanged."""
    counts: dict[str, dict[str, int]] = {}
    for rec in records:
        model, outcome = rec.meta.get("suggested_by"), rec.meta.get("suggestion")
        if model and outcome:
            counts.setdefault(model, {}).setdefault(outcome, 0)
            counts[model][outcome] += 1
    lines = []
    for model, c in sorted(counts.items()):
        n = sum(c.values())
        lines.append(f"suggestions of {model}: {c.get('accepted', 0)} of {n} units accepted unchanged "
                     f"({c.get('accepted', 0) / n:.0%}), {c.get('corrected', 0)} corrected")
    return lines


def _print_split_tables(stats, manifest, schema, missed) -> None:
    splits = list(stats)
    table = Table(title=f"{sum(s.units for s in stats.values())} annotated units in "
                        f"{sum(s.articles for s in stats.values())} articles")
    table.add_column("")
    for split in splits:
        table.add_column(split, justify="right")
    table.add_column(f"floor ({manifest.floors.split})", justify="right")
    for name, get in [("articles", lambda s: s.articles), ("units", lambda s: s.units),
                      ("countries", lambda s: len(s.countries)), ("styles", lambda s: len(s.styles)),
                      ("no claim at all", lambda s: s.no_claim)]:
        table.add_row(name, *[str(get(stats[sp])) for sp in splits], "")
    floors = manifest.floors
    for task in schema.tasks:
        for label in task.columns:
            need = floors.binary_yes.get(task.name) if task.type == "binary" else floors.per_task.get(task.name)
            got = stats[floors.split].positives[(task.name, label)] if floors.split in stats else 0
            mark = "" if need is None else (f"{need}" if got >= need else f"[red]{need} missed[/red]")
            table.add_row(f"{task.name}/{label}", *[str(stats[sp].positives[(task.name, label)]) for sp in splits], mark)
        if task.name in floors.hard_negatives:
            need = floors.hard_negatives[task.name]
            got = stats[floors.split].hard_negatives.get(task.name, 0)
            table.add_row(f"{task.name}/hard negatives", *[str(stats[sp].hard_negatives.get(task.name, 0)) for sp in splits],
                          f"{need}" if got >= need else f"[red]{need} missed[/red]")
    out().print(table)
    for split in splits:
        if stats[split].articles:
            out().print(f"{split}: countries " + ", ".join(f"{c} {n}" for c, n in stats[split].countries.most_common())
                      + "; styles " + ", ".join(f"{c} {n}" for c, n in stats[split].styles.most_common()))


@app.command()
@reports_input_errors
def agree(
    first: Annotated[list[Path], typer.Argument(help="First annotation set: files or folders of .jsonl.")],
    second: Annotated[list[Path], typer.Option("--with", help="Second annotation set: files or folders.")],
    schema_path: SchemaOpt = SCHEMA_PATH,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Agreement between two annotations of the same units: per-label F1 and Cohen's kappa, and each
    task's macro F1. Units present in one set only, or with other text, are an error (exit 1).

    Example: claims agree labels/double/a --with labels/double/b
    """
    from claims.corpus.agreement import agreement, align

    schema = load_schema(schema_path)

    def read(paths: list[Path]):
        files = [f for p in paths for f in (sorted(p.glob("*.jsonl")) if p.is_dir() else [p])]
        if not files:
            raise fail(paths[0] if paths else "(none)", "no annotation files")
        records, problems = annotations.read_all(files)
        if problems:
            raise InputError(problems)
        return records

    result = agreement(align(read(first), read(second)), schema)
    if json_out:
        typer.echo(json.dumps({"units": result.units,
                               "tasks": {t.name: {"f1": result.task_f1(t.name), "kappa": result.task_kappa(t.name)} for t in schema.tasks},
                               "labels": [r.__dict__ for r in result.labels]}, indent=2))
        return
    table = Table(title=f"agreement on {result.units} units")
    for col in ("task", "label", "F1", "kappa", "positives (1st)", "positives (2nd)"):
        table.add_column(col, justify="left" if col in ("task", "label") else "right")
    for r in result.labels:
        table.add_row(r.task, r.label, f"{r.f1:.3f}", "n/a" if r.kappa is None else f"{r.kappa:.3f}", str(r.positives_a), str(r.positives_b))
    for task in schema.tasks:
        kappa = result.task_kappa(task.name)
        table.add_row(task.name, "[b]macro[/b]" if task.type != "binary" else "[b]positive class[/b]",
                      f"[b]{result.task_f1(task.name):.3f}[/b]", "n/a" if kappa is None else f"{kappa:.3f}", "", "")
    out().print(table)


@app.command("export")
@reports_input_errors
def export_cmd(
    output: Annotated[Path, typer.Option("-o", "--output", parser=output_file, help="Label Studio .json or Prodigy .jsonl.")],
    fmt: Annotated[interchange.Format, typer.Option("--format")] = "label-studio",
    files: Annotated[Optional[list[Path]], typer.Argument(help="Annotation or unit files (default: all).")] = None,
    schema_path: SchemaOpt = SCHEMA_PATH,
) -> None:
    """Write units, with their labels, as Label Studio tasks or Prodigy examples (unlabelled units from
    `claims segment` become empty tasks; Label Studio also gets OUTPUT's .config.xml interface).

    Example: claims export units.jsonl --format label-studio -o tasks.json
    """
    schema = load_schema(schema_path)
    # Unit files from `claims segment` have no labels yet: they export as tasks to annotate.
    records, problems = annotations.read_all(files or sorted(ANNOTATIONS_DIR.glob("*.jsonl")), require_labels=False)
    if problems:
        raise InputError(problems)
    interchange.export(records, schema, fmt, output)
    err.print(f"{len(records)} units -> {output}")


@app.command("import")
@reports_input_errors
def import_cmd(
    file: Annotated[Path, typer.Argument(help="A Label Studio JSON export or Prodigy JSONL export.", exists=True)],
    fmt: Annotated[interchange.Format, typer.Option("--format")] = "label-studio",
    annotations_dir: Annotated[Path, typer.Option(help="Where annotation files live.")] = ANNOTATIONS_DIR,
    schema_path: SchemaOpt = SCHEMA_PATH,
) -> None:
    """Read an annotation tool's export back into labels/annotations/, one file per article.

    Example: claims import label-studio-export.json --format label-studio
    """
    schema = load_schema(schema_path)
    records = interchange.import_records(file, schema, fmt)
    written = interchange.merge_into(records, annotations_dir, schema, source=file)
    err.print(f"{len(records)} units into {len(written)} file(s)")


@app.command()
@reports_input_errors
def train(
    configs: Annotated[list[Path], typer.Argument(help="Experiment configs (YAML); several run in turn.")],
    overrides: Annotated[list[str], typer.Option("--set", help="Override a config key: section.key=value.")] = [],
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow store (default: sqlite:///mlflow.db).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or tables.")] = False,
    package: Annotated[bool, typer.Option(help="Package each final model as models/<config name>/.")] = True,
    behaviour: Annotated[bool, typer.Option(help="Run the behavioural suite on each package, log it to the run.")] = True,
    models_dir: Annotated[Path, typer.Option(help="Where packages are written.")] = MODELS_DIR,
) -> None:
    """Cross-validate, fit and log each config to MLflow. Everything is checked before training starts.

    Example: claims train configs/rules.yaml configs/ensemble.yaml --set eval.folds=3
    """
    from claims.training import loop
    from claims.training import tracking
    from claims.training.pipeline import train_package_check
    from claims.training.config import load_config
    from claims.training.evaluation.metrics import BOOTSTRAP_LEVEL, headline_names, with_interval

    problems = []
    planned = []
    for path in configs:
        try:
            cfg = load_config(path, overrides)
            if lacking := cfg.model.unavailable():  # before any config trains
                problems.extend(Problem(path, None, f"model.{field}", why) for field, why in lacking.items())
                continue
            data = loop.load_data(cfg)
            planned.append((cfg, data, loop.load_test_split(cfg, data.docs),
                            tracking.resolve_uri(tracking_uri, cfg.tracking.tracking_uri)))
        except InputError as e:
            problems.extend(e.problems)
    if problems:
        raise InputError(problems)
    for uri in sorted({uri for *_, uri in planned}):
        tracking.open_store(uri)
        for run_id in tracking.fail_stale_runs(uri):
            err.print(f"marked run {run_id} FAILED: the process that ran it is gone")
    outcomes = []
    progress = None if quiet else _progress()
    with tracking.fail_on_sigterm(), progress or _nothing():
        for cfg, data, test, uri in planned:
            tracking.open_store(uri)
            outcomes.append(train_package_check(cfg, data, uri, progress, package, behaviour, models_dir, test))
    if quiet:
        for o in outcomes:
            typer.echo(f"{o.result.config.name}\t{o.result.run_id}")
        return
    names = headline_names(planned[0][1].space)
    evaluations = [(loop.GROUPED, "(a) by article"), (loop.COUNTRY, "(b) by country"), (loop.TEST, "(d) test split")]
    loose = any(loop.LOOSE in o.result.evaluations for o in outcomes)
    if loose:
        evaluations.insert(1, (loop.LOOSE, "(a) without openings"))
    table = Table(title="Headline F1 per task: (a) grouped 5-fold CV" + (" (and its units without their opening)" if loose else "")
                  + ", (b) leave-one-country-out, (d) test split")
    table.add_column("config")
    for _, title in evaluations:
        table.add_column(title + "\n" + " / ".join(n.split(".")[0] for n in names))
    for col in ("behaviour", "seconds", "run id"):
        table.add_column(col)
    for o in outcomes:
        r = o.result
        cells = [" / ".join(f"{r.evaluations[p][n]:.3f}" for n in names) if p in r.evaluations else "-"
                 for p, _ in evaluations]
        table.add_row(r.config.name, *cells, f"{o.behaviour.overall:.1%}" if o.behaviour else "-",
                      f"{r.seconds:.0f}", r.run_id)
    out().print(table)
    for r in (o.result for o in outcomes):
        if loop.TEST in r.evaluations:
            out().print(f"{r.config.name}, (d) with {BOOTSTRAP_LEVEL:.0%} intervals over the test split's articles: "
                        + " / ".join(with_interval(r.evaluations[loop.TEST], n) for n in names))
    for r in (o.result for o in outcomes):
        if r.warnings:
            err.print(f"{r.config.name}: {len(r.warnings)} warning(s), see warnings.txt in run {r.run_id}")


@app.command()
@reports_input_errors
def compare(
    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "conflict-claims",
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow store (default: sqlite:///mlflow.db).")] = None,
    schema_path: SchemaOpt = SCHEMA_PATH,
    sort: Annotated[Optional[str], typer.Option(help="Sort by this column instead of the score, e.g. "
                                                     "d.attribution.macro_f1 or seconds.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON (every column), not a table.")] = False,
    among: Annotated[Optional[list[str]], typer.Option(
        "--among", help="Only these configs (repeat the option), scored on the parts all their runs have.")] = None,
) -> None:
    """One row per config: its latest finished run's headline metrics, best first.

    Example: claims compare --sort b.withdrawal.f1
    """
    import json

    from claims.training import tracking
    from claims.training.compare import latest_runs

    uri = tracking.resolve_uri(tracking_uri, None)
    tracking.open_store(uri)
    runs = latest_runs(experiment, load_schema(schema_path), among)
    if runs.empty:
        err.print(f"no finished runs in experiment {experiment!r} at {uri}")
        raise typer.Exit(1)
    _check_among(among, runs)
    if sort is not None:
        if sort not in runs.columns:
            raise fail("--sort", f"unknown column {sort!r}; one of {', '.join(map(str, runs.columns))}")
        runs = runs.sort_values(sort, ascending=sort in ("config", "family", "seconds"),
                                kind="stable").reset_index(drop=True)
    if as_json:
        out().print_json(json.dumps([{k: (None if v != v else v) for k, v in row.items()}
                                   for row in runs.to_dict("records")]))
        return
    from claims.training.evaluation.metrics import headline_names
    from claims.corpus.labelspace import LabelSpace

    names = headline_names(LabelSpace(load_schema(schema_path)))
    console = out()
    from claims.training.compare import score_parts

    parts = [{"a": "(a)", "b": "(b)"}.get(p, p) for p in score_parts(runs, names, common=among is not None)]
    title = (f"{experiment} @ {uri}: headline F1 " + " / ".join(n.split(".")[0] for n in names)
             + "; score = mean of " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)))
    table = _compare_table(runs, names, title, narrow=False)
    # One line per config if it fits the terminal; otherwise one task per line in each cell, without
    # the family and run id columns.
    if Measurement.get(console, console.options.update(max_width=10_000), table).maximum > console.width:
        table = _compare_table(runs, names, title, narrow=True)
    console.print(table)


def _compare_table(runs, names: list[str], title: str, narrow: bool) -> Table:
    table = Table(title=title)
    groups = ([("(a)", "a"), ("(b)", "b"), ("(d)", "d")] if narrow else
              [("(a) by article", "a"), ("(b) by country", "b"), ("(d) test split", "d")])
    several = runs["seeds"] > 1
    notes = ["(a) by article, (b) by country, (d) test split"] if narrow else []
    if several.any():
        notes.append("mean±std over seeds where a config ran several (eval.seeds)")
    table.caption = "; ".join(notes) or None
    joiner = "\n" if narrow else " / "
    shown = (["config", *[g for g, _ in groups], "behav.", "score", "s"] if narrow else
             ["config", "family", *[g for g, _ in groups], "behaviour", "score", "seconds", "run id"])
    for col in shown:  # a long config name folds in a narrow terminal; figures are never cut
        table.add_column(col, no_wrap=not (narrow and col == "config"), overflow="fold")
    cell = lambda v: "-" if v != v else f"{v:.3f}"  # noqa: E731 - NaN prints as '-'

    def spread(row, key, with_std):
        std = row.get(f"{key}_std", float("nan"))
        return cell(row[key]) + (f"±{std:.3f}" if with_std and std == std else "")

    for (_, row), many in zip(runs.iterrows(), several):
        values = {"config": row["config"], "family": row["family"], "behaviour": cell(row["behaviour"]),
                  "score": cell(row["score"]), "seconds": f"{row['seconds']:.0f}", "run id": row["run_id"][:12],
                  "behav.": cell(row["behaviour"]), "s": f"{row['seconds']:.0f}",
                  **{t: joiner.join(spread(row, f"{short}.{n}", many) for n in names) for t, short in groups}}
        table.add_row(*[values[c] for c in shown])
    return table


def _check_among(among: list[str] | None, runs) -> None:
    missing = sorted(set(among or []) - set(runs["config"]))
    if missing:  # a misspelt config would otherwise just drop out of the choice
        raise fail("--among", f"no finished run of config(s) {', '.join(missing)}; runs exist for "
                              f"{', '.join(sorted(runs['config']))}")


@app.command("package")
@reports_input_errors
def package_cmd(
    run_id: Annotated[str, typer.Argument(help="A finished parent run (or the short id `claims compare` shows), "
                                                "or 'best': the top row of `claims compare` (with --among: of "
                                                "`claims compare --among ...`).")],
    name: Annotated[str, typer.Option("--name", help="Writes models/NAME/.")],
    register: Annotated[Optional[str], typer.Option(help="Also register in the MLflow model registry under this name.")] = None,
    alias: Annotated[Optional[str], typer.Option(help="Alias for the registered version, e.g. champion.")] = None,
    experiment: Annotated[str, typer.Option(help="Experiment searched for 'best'.")] = "conflict-claims",
    among: Annotated[Optional[list[str]], typer.Option(
        "--among", help="'best' among these configs only (repeat the option), ranked on what their runs have.")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow store (default: sqlite:///mlflow.db).")] = None,
    models_dir: Annotated[Path, typer.Option(help="Where packages are written.")] = MODELS_DIR,
    int8_encoder: Annotated[bool, typer.Option(
        "--int8-encoder", help="Also write a static int8 copy of the sentence encoder, used by default at prediction: "
                               "about 1.2x faster, labels as the evaluated model's on about 99.5% of (unit, label) "
                               "pairs.")] = False,
) -> None:
    """Package a run's final model as an MLflow pyfunc folder (no pickle), logged back to the run.

    Example: claims package best --name default
    """
    from claims.training import tracking
    from claims.training.compare import latest_runs
    from claims.predictor.package import package_run

    uri = tracking.resolve_uri(tracking_uri, None)
    tracking.open_store(uri)
    if among and run_id != "best":
        raise fail("--among", "only with 'best'")
    if run_id == "best":
        runs = latest_runs(experiment, load_schema(), among)
        if runs.empty:
            raise fail("tracking store", f"no finished runs in {experiment!r}"
                                         + (f" for config(s) {', '.join(among)}" if among else ""))
        _check_among(among, runs)
        run_id = runs.iloc[0]["run_id"]
        err.print(f"best run: {runs.iloc[0]['config']} ({run_id})")
    elif len(run_id) < 32:  # the short id `claims compare` prints
        runs = latest_runs(experiment, load_schema())
        matches = [r for r in runs["run_id"] if r.startswith(run_id)] if not runs.empty else []
        if len(matches) != 1:
            raise fail(run_id, f"{'no' if not matches else len(matches)} run(s) of `claims compare` start with it; "
                               "give the full run id")
        run_id = matches[0]
    try:
        target = package_run(run_id, name, out_dir=models_dir, register=register, alias=alias, tracking_uri=uri,
                             int8_encoder=int8_encoder)
    except Exception as e:
        if type(e).__name__ in ("MlflowException", "ModelFolderError", "OSError", "FileNotFoundError"):
            raise fail(run_id, str(e)) from None
        raise
    err.print(f"packaged run {run_id} -> {target}")


@app.command()
@reports_input_errors
def predict(
    inputs: Annotated[list[str], typer.Argument(help=".txt articles, .jsonl (text, id), .csv or .parquet (a text column), or - for stdin; context and opening fields are read, other fields pass through.")],
    model: Annotated[Path, typer.Option("--model", help="A packaged model folder, e.g. models/default.")],
    output: Annotated[Path, typer.Option("-o", "--output", parser=output_file, help=".jsonl, .csv or .parquet; written only when complete.")],
    lines: Annotated[bool, typer.Option("--lines", help="Text inputs: one unit per line, no segmentation.")] = False,
    summary: Annotated[bool, typer.Option("--summary", help="Also write OUTPUT.summary.jsonl (e.g. out.csv.summary.jsonl), one row per article.")] = False,
    errors: Annotated[Literal["strict", "replace"], typer.Option("--errors", help="Invalid UTF-8: fail or replace.")] = "strict",
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
    runtime: Annotated[Literal["auto", "fp32", "onnx-int8", "onnx-encoder", "onnx-encoder-int8"], typer.Option(
        help="auto: the package's optimised path where it has one (onnx-int8 for finetune; onnx-encoder-int8, "
             "else onnx-encoder, for families with a sentence encoder); fp32: the torch reference. A static "
             "encoder (ensemble_static, the default) reads its packaged vectors on every runtime but the int8 ones.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Predict labels and probabilities for every unit, streaming batch by batch.

    Example: claims predict --model models/default article.txt feed.parquet -o out.jsonl --summary
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from claims.predictor.batch import check_paths, predict_to_file, summary_path
    from claims.predictor.predictor import ModelFolderError, Predictor

    check_paths(inputs, output)  # before the model loads: a refused call costs nothing
    try:
        predictor = Predictor.load(model, runtime=runtime)
    except ModelFolderError as e:
        raise fail(model, str(e)) from None
    with Progress(SpinnerColumn(), TextColumn("{task.completed} units"), TimeElapsedColumn(),
                  console=err, disable=quiet) as bar:
        task = bar.add_task("predict", total=None)
        stats = predict_to_file(predictor, inputs, output, lines=lines, errors=errors, batch_size=batch_size,
                                summary=summary, progress=lambda n: bar.advance(task, n))
    if stats.truncated:
        err.print(f"warning: {stats.truncated} unit(s) were cut to fit the model's {predictor.max_tokens}-token input")
    if stats.units == 0:
        err.print(f"note: no units in {', '.join(inputs)} (empty input): {output} is empty")
    if not quiet:
        err.print(f"{stats.units} units ({stats.empty} empty) -> {output} (runtime {predictor.runtime})")
        if summary:
            err.print(f"summary of {len(stats.summary)} article(s) -> {summary_path(output)}")


@app.command()
@reports_input_errors
def suggest(
    files: Annotated[list[Path], typer.Argument(help=".txt articles (segmented as `claims segment` does) or .jsonl unit files.")],
    model: Annotated[Path, typer.Option("--model", help="A packaged model folder, e.g. models/default.")],
    output: Annotated[Path, typer.Option("-o", "--output", parser=output_file, help="Label Studio .json or Prodigy .jsonl; written only when complete.")],
    fmt: Annotated[interchange.Format, typer.Option("--format")] = "label-studio",
    budget: Annotated[Optional[int], typer.Option(min=1, help="Whole articles, best first, until at least this many units.")] = None,
    strategy: Annotated[Literal["uncertainty", "random", "diverse"], typer.Option(
        help="Article order: most uncertain first; a seeded shuffle; or uncertain and unlike those already taken.")] = "uncertainty",
    seed: Annotated[int, typer.Option(help="Seed of the random strategy.")] = 0,
    schema_path: SchemaOpt = SCHEMA_PATH,
) -> None:
    """Annotation tasks with a package's labels as pre-annotations, articles ranked by the model's
    uncertainty (or shuffled) and cut to a unit budget; `claims import` then records per unit whether
    the annotator accepted or corrected the suggestion.

    Example: claims suggest --model models/default articles/new/*.txt --budget 200 -o tasks.json
    """
    from claims.predictor.suggest import check_inputs, suggest as make_suggestions, write_tasks

    check_inputs(files, output)  # before the model loads: a refused call costs nothing
    schema = load_schema(schema_path)
    result = make_suggestions(files, model, schema, strategy=strategy, budget=budget, seed=seed)
    write_tasks(result, schema, fmt, output)
    err.print(f"{len(result.records)} of {result.total_units} units in {len(result.articles)} of "
              f"{result.total_articles} article(s), by {result.strategy}, suggested by {result.model_version} -> {output}")


@app.command()
@reports_input_errors
def suspects(
    oof: Annotated[Path, typer.Argument(help="A run's reports/oof_predictions.csv (in mlartifacts/ or downloaded).")],
    output: Annotated[Path, typer.Option("-o", "--output", parser=output_file, help="Ranked suspects as CSV; written only when complete.")],
    limit: Annotated[int, typer.Option(min=1, help="How many units.")] = 300,
    per_article: Annotated[int, typer.Option(min=1, help="At most this many units from one article.")] = 2,
    skip_rechecked: Annotated[bool, typer.Option(help="Leave out units already re-checked (meta.previous_labels or meta.rechecked).")] = True,
    schema_path: SchemaOpt = SCHEMA_PATH,
) -> None:
    """Training units whose labels the run's out-of-fold predictions most confidently contradict:
    candidates for a blind re-annotation (most will be the model's errors, not the labels').

    Example: claims suspects mlartifacts/<experiment>/<run>/artifacts/reports/oof_predictions.csv -o suspects.csv
    """
    from claims.corpus.labelspace import LabelSpace
    from claims.training import suspects as sus

    sus.check_paths(oof, output)
    space = LabelSpace(load_schema(schema_path))
    units = sus.read_oof(oof, space)
    skip: set[str] = set()
    if skip_rechecked:
        records, problems = annotations.read_all(sorted(ANNOTATIONS_DIR.glob("*.jsonl")))
        if problems:
            raise InputError(problems)
        skip = sus.rechecked_ids(records)
    found = sus.rank(units, space, limit, per_article, skip)
    sus.write(found, output)
    skipped = sum(u.id in skip for u in units)
    err.print(f"{len(found)} suspect unit(s) of {len(units)} ({skipped} already re-checked left out) -> {output}")


@app.command()
@reports_input_errors
def serve(
    model: Annotated[Path, typer.Option("--model", help="A package folder.")] = Path("models/default"),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 5001,
    max_bytes: Annotated[Optional[int], typer.Option(help="Largest request body (default: CLAIMS_SERVE_MAX_BYTES or 8 MiB).")] = None,
) -> None:
    """REST server for a package: MLflow's scoring app, bounded in body size, units and unit length.

    Example: claims serve --model models/default --port 5001
    """
    from claims.predictor.predictor import ModelFolderError, resolve_model_folder
    from claims.predictor.server import serve as run_server

    try:
        resolve_model_folder(model)
    except ModelFolderError as e:
        raise fail(model, str(e)) from None
    if not (model / "MLmodel").exists():
        raise fail(model, "not a package (no MLmodel file): serve a folder made by `claims package` or `claims train`")
    run_server(model, host, port, max_bytes)


@app.command("predict-spark")
@reports_input_errors
def predict_spark(
    source: Annotated[str, typer.Argument(help="Parquet file or folder with a text column.")],
    dest: Annotated[str, typer.Argument(help="Parquet folder for the predictions.")],
    model: Annotated[Path, typer.Option("--model")] = Path("models/default"),
    master: Annotated[str, typer.Option(help="Spark master: local[*] here, or your cluster's.")] = "local[*]",
    partitions: Annotated[Optional[int], typer.Option(min=1, help="Spread the rows over this many tasks "
                                                                  "(default: Spark's parallelism, a core each locally).")] = None,
) -> None:
    """Distributed batch inference with Spark (needs the [spark] extra): mlflow.pyfunc.spark_udf.

    Example: claims predict-spark feed.parquet predictions/ --model models/default --partitions 8
    """
    from claims.predictor.spark import predict_parquet

    n = predict_parquet(model, source, dest, master, partitions=partitions)
    err.print(f"{n} rows -> {dest}")


@app.command()
@reports_input_errors
def check(
    model: Annotated[Path, typer.Option("--model", help="A packaged model folder, e.g. models/default.")],
    min_pass: Annotated[float, typer.Option(help="Exit 1 if the overall pass rate is below this.")] = 0.0,
    min_label: Annotated[float, typer.Option(help="Exit 1 if any label's pass rate is below this.")] = 0.0,
    suite_dir: Annotated[Path, typer.Option("--suite", help="Folder of behavioural test files.")] = None,
    log: Annotated[bool, typer.Option(help="Log the rates to the model's MLflow run.")] = True,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow store (default: sqlite:///mlflow.db).")] = None,
) -> None:
    """Behavioural tests (CheckList-style templates) on a packaged model: pass rate per test and label.

    Example: claims check --model models/default --min-pass 0.75
    """
    from claims.training.behaviour import SUITE_DIR, check_package
    from claims.corpus.gazetteer import load_gazetteer
    from claims.predictor.predictor import ModelFolderError

    schema = load_schema()
    try:
        report = check_package(model, schema, load_gazetteer(schema), suite_dir or SUITE_DIR)
    except ModelFolderError as e:
        raise fail(model, str(e)) from None
    for title, rates in (("test", report.per_test), ("label", report.per_label)):
        table = Table(title=f"pass rate per {title}")
        table.add_column(title)
        table.add_column("pass rate", justify="right")
        for name, rate in rates.items():
            table.add_row(name, f"{rate:.0%}", style=None if rate >= max(min_label, 0.75) else "red")
        out().print(table)
    out().print(f"overall pass rate: {report.overall:.1%} ({model})")
    if log:
        _log_behaviour(model, report, tracking_uri)
    low = {k: v for k, v in report.per_label.items() if v < min_label}
    if report.overall < min_pass or low:
        err.print(f"below threshold: overall {report.overall:.1%} (min {min_pass:.0%}); labels under "
                  f"{min_label:.0%}: {', '.join(low) or 'none'}")
        raise typer.Exit(1)


def _log_behaviour(model: Path, report, tracking_uri: Optional[str]) -> None:
    from mlflow.tracking import MlflowClient

    from claims.training import tracking
    from claims.training.behaviour import log_to_run, package_run_id

    run_id = package_run_id(model)
    if not run_id:
        err.print("not logged: the package names no MLflow run")
        return
    uri = tracking.resolve_uri(tracking_uri, None)
    tracking.open_store(uri)
    try:
        MlflowClient(uri).get_run(run_id)
    except Exception:
        err.print(f"not logged: run {run_id} is not in {uri}")
        return
    log_to_run(run_id, report, uri)
    err.print(f"logged behavioural pass rates to run {run_id}")


def _progress():
    from claims.training.progress import RichProgress

    return RichProgress()


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
