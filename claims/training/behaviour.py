"""Behavioural tests of a packaged model: templated sentences from labels/behaviour/*.yaml.

Three kinds, after CheckList: `mft` (expected labels present, `expect_not` labels absent), `inv`
(swapping the `vary` slot changes no prediction) and `dir` (appending `suffix` adds the expected
labels). Pass rates are reported per test, per label and overall.
"""

from __future__ import annotations

import string
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claims.util.errors import InputError, Problem
from claims.corpus.gazetteer import Gazetteer
from claims.util.yaml_lines import load_yaml_with_lines
from claims.util.paths import ROOT
from claims.corpus.schema import Schema

SUITE_DIR = ROOT / "labels" / "behaviour"
# Per-template pass rates and failing examples, logged beside the run's metrics.
BEHAVIOUR_ARTIFACT = "behaviour.json"
KINDS = ("mft", "inv", "dir")
DEFAULT_REPEATS = 10


@dataclass
class Test:
    name: str
    kind: str
    template: str
    slots: list[str]
    expect: dict[str, Any] = field(default_factory=dict)
    expect_not: dict[str, Any] = field(default_factory=dict)
    vary: str | None = None
    suffix: str = ""
    suite: str = ""  # the file it comes from: suites by different writers are reported apart


@dataclass
class Suite:
    fillers: dict[str, list[str]]
    tests: list[Test]
    actor_slots: set[str] = field(default_factory=set)  # slots filled from the gazetteer's actors
    place_slots: dict[str, str] = field(default_factory=dict)  # slot -> kind of place ("towns", "bases")
    gazetteer: Gazetteer | None = None  # for the places of an actor's own country


def _template_slots(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def load_suite(schema: Schema, gazetteer: Gazetteer, folder: Path = SUITE_DIR) -> Suite:
    """Read every suite file; an unknown slot, kind or label is reported with its file and line."""
    problems: list[Problem] = []
    fillers: dict[str, list[str]] = {}
    actor_slots: set[str] = set()
    place_slots: dict[str, str] = {}
    tests: list[Test] = []
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise InputError(Problem(folder, None, None, "no behavioural test files (*.yaml)"))
    for path in files:
        raw = load_yaml_with_lines(path) or {}
        for name, spec in (raw.get("slots") or {}).items():
            if name == "__line__":
                continue
            line = spec.get("__line__") if isinstance(spec, dict) else None
            if not isinstance(spec, dict):
                problems.append(Problem(path, line, f"slots.{name}", "expected a mapping"))
            elif "actors" in spec:
                actors = gazetteer.of_type(spec["actors"])
                if not actors:
                    problems.append(Problem(path, line, f"slots.{name}", f"no actor of type {spec['actors']!r}; "
                                            f"the gazetteer has {gazetteer.types}"))
                fillers[name] = [a.aliases[0] for a in actors]
                actor_slots.add(name)
                place_slots.pop(name, None)
            elif "places" in spec:
                fillers[name] = list(gazetteer.places.get(spec["places"], []))
                place_slots[name] = spec["places"]
                actor_slots.discard(name)
                if not fillers[name]:
                    problems.append(Problem(path, line, f"slots.{name}", f"no places of kind {spec['places']!r}"))
            elif "values" in spec:
                fillers[name] = [str(v) for v in spec["values"]]
                actor_slots.discard(name)
                place_slots.pop(name, None)
            else:
                problems.append(Problem(path, line, f"slots.{name}", "expected actors, places or values"))
        for entry in raw.get("tests") or []:
            test_problems = _check_test(path, entry, schema, fillers)
            problems.extend(test_problems)
            if not test_problems:
                tests.append(Test(name=entry["name"], kind=entry["kind"], template=entry["template"],
                                  slots=_template_slots(entry["template"] + entry.get("suffix", "")),
                                  expect=_strip(entry.get("expect")), expect_not=_strip(entry.get("expect_not")),
                                  vary=entry.get("vary"), suffix=entry.get("suffix", ""), suite=path.stem))
    names = [t.name for t in tests]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Problem(folder, None, dup, "duplicate test name"))
    if problems:
        raise InputError(problems)
    return Suite(fillers, tests, actor_slots, place_slots, gazetteer)


def _strip(d: dict | None) -> dict:
    return {k: v for k, v in (d or {}).items() if k != "__line__"}


def _check_test(path: Path, entry: dict, schema: Schema, fillers: dict) -> list[Problem]:
    line = entry.get("__line__")
    out = []
    for key in ("name", "kind", "template"):
        if not entry.get(key):
            out.append(Problem(path, line, key, "required field is missing"))
    if out:
        return out
    if entry["kind"] not in KINDS:
        out.append(Problem(path, line, "kind", f"unknown kind {entry['kind']!r}; expected one of {KINDS}"))
    try:
        slots = _template_slots(entry["template"] + entry.get("suffix", ""))
    except ValueError as e:
        return [Problem(path, line, "template", f"malformed template: {e}")]
    for slot in slots:
        if slot not in fillers:
            out.append(Problem(path, line, "template", f"unknown slot {{{slot}}}; defined: {sorted(fillers)}"))
    if entry["kind"] == "inv" and entry.get("vary") not in slots:
        out.append(Problem(path, line, "vary", f"an inv test must vary one of its slots {slots}"))
    if entry["kind"] == "dir" and not entry.get("suffix"):
        out.append(Problem(path, line, "suffix", "a dir test needs a suffix"))
    if entry["kind"] in ("mft", "dir") and not (entry.get("expect") or entry.get("expect_not")):
        out.append(Problem(path, line, "expect", "nothing is expected"))
    for key in ("expect", "expect_not"):
        for task, value in _strip(entry.get(key)).items():
            if task not in schema.by_name:
                out.append(Problem(path, line, f"{key}.{task}", f"unknown task; the schema has {schema.task_names}"))
                continue
            t = schema.task(task)
            if t.type == "binary":
                if not isinstance(value, bool):
                    out.append(Problem(path, line, f"{key}.{task}", "a binary task expects true or false"))
            else:
                bad = [v for v in (value or []) if v not in t.label_names]
                if bad:
                    out.append(Problem(path, line, f"{key}.{task}", f"unknown label(s) {bad}"))
    return out


@dataclass
class Case:
    test: Test
    texts: list[str]  # mft: [sentence]; inv: [a, b]; dir: [before, after]


def _fill(suite: Suite, template: str, slots: list[str], i: int, salt: int,
          shift: dict[str, int] | None = None) -> str | None:
    """The template filled for case `i`, each slot in `shift` moved that many fillers on (the second
    sentence of an `inv` test); None where no place fits the sentence's army or government."""
    shift = shift or {}
    # Actor slots walk through every actor; places and values stride from a per-test offset so the
    # suite covers the whole region, not the first few towns of Mali.
    start = {s: (i if s in suite.actor_slots else i * 7 + salt) + shift.get(s, 0) for s in slots}
    values = {s: suite.fillers[s][start[s] % len(suite.fillers[s])] for s in slots}
    # A place beside an army or government is one of its own country's (R96: speaking about another
    # country's conflict, its forces are external_observer), chosen from that country's list; two
    # states of different countries in one sentence have no such place.
    gazetteer = suite.gazetteer
    countries = set()
    if gazetteer is not None:
        countries = {gazetteer.country_of(values[s]) for s in slots if s in suite.actor_slots} - {None}
    if len(countries) > 1:
        return None
    for slot in slots:
        if countries and slot in suite.place_slots:
            (country,) = countries
            local = gazetteer.by_country[country].get(suite.place_slots[slot], [])
            if not local or (slot in shift and len(local) < 2):
                return None
            values[slot] = local[start[slot] % len(local)]
    text = template.format(**values)
    return text[:1].upper() + text[1:]


def _varied(suite: Suite, test: Test, i: int, salt: int, base: str) -> str | None:
    """The second sentence of an `inv` case: the next filler of the varied slot that fits the
    sentence (an army is skipped where its country lists no place the template needs)."""
    for step in range(1, len(suite.fillers[test.vary])):
        other = _fill(suite, test.template, test.slots, i, salt, {test.vary: step})
        if other is not None and other != base:
            return other
    return None


def cases(suite: Suite) -> list[Case]:
    out = []
    for salt, test in enumerate(suite.tests):
        sized = [len(suite.fillers[s]) for s in test.slots if s in suite.actor_slots]
        n = max(sized) if sized else DEFAULT_REPEATS
        for i in range(n):
            base = _fill(suite, test.template, test.slots, i, salt * 13)
            if base is None:  # an army or government whose country lists no place of the kind
                continue
            if test.kind == "mft":
                out.append(Case(test, [base]))
            elif test.kind == "dir":
                out.append(Case(test, [base + ".", base + test.suffix]))
            elif (other := _varied(suite, test, i, salt * 13, base)) is not None:
                out.append(Case(test, [base, other]))
    return out


@dataclass
class Report:
    per_test: dict[str, float]
    per_label: dict[str, float]
    overall: float
    failures: dict[str, list[str]]
    per_suite: dict[str, float] = field(default_factory=dict)
    per_suite_label: dict[str, dict[str, float]] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Overall, per suite and per label; the per-template rates go in `details()` (an artifact),
        because dozens of template columns would bury the comparison in the MLflow runs table."""
        return {"behaviour.pass_rate": self.overall,
                **{f"behaviour.suite.{k}": v for k, v in self.per_suite.items()},
                **{f"behaviour.label.{k}": v for k, v in self.per_label.items()}}

    def details(self) -> dict[str, Any]:
        return {"overall": self.overall, "per_suite": self.per_suite, "per_label": self.per_label,
                "per_suite_label": self.per_suite_label, "per_test": self.per_test,
                "failures": self.failures}


def _holds(pred: dict, task: str, value: Any, positive: bool) -> dict[str, bool]:
    """Per label name: does the prediction meet this expectation?"""
    if isinstance(value, bool):  # expect_not {task: v} holds when the prediction is not v
        return {task: (pred[task] == value) == positive}
    return {f"{task}.{label}": (label in pred[task]) == positive for label in value}


def run(predictor, suite: Suite) -> Report:
    all_cases = cases(suite)
    texts = [t for c in all_cases for t in c.texts]
    pred = predictor.predict(texts)
    decoded = [predictor.space.decode(row) for row in pred.decisions]
    test_results: dict[str, list[bool]] = defaultdict(list)
    label_results: dict[str, list[bool]] = defaultdict(list)
    suite_results: dict[str, list[bool]] = defaultdict(list)
    suite_label_results: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    failures: dict[str, list[str]] = defaultdict(list)
    k = 0
    for case in all_cases:
        preds = decoded[k:k + len(case.texts)]
        k += len(case.texts)
        if case.test.kind == "inv":
            ok = preds[0] == preds[1]
        else:
            checks: dict[str, bool] = {}
            final = preds[-1]
            for task, value in case.test.expect.items():
                checks.update(_holds(final, task, value, True))
            for task, value in case.test.expect_not.items():
                checks.update(_holds(final, task, value, False))
            for label, passed in checks.items():
                label_results[label].append(passed)
                suite_label_results[case.test.suite][label].append(passed)
            ok = all(checks.values())
        test_results[case.test.name].append(ok)
        suite_results[case.test.suite].append(ok)
        if not ok and len(failures[case.test.name]) < 3:
            failures[case.test.name].append(" | ".join(case.texts))
    total = [r for rs in test_results.values() for r in rs]
    return Report({n: sum(r) / len(r) for n, r in test_results.items()},
                  {n: sum(r) / len(r) for n, r in sorted(label_results.items())},
                  sum(total) / len(total), dict(failures),
                  {n: sum(r) / len(r) for n, r in sorted(suite_results.items())},
                  {s: {n: sum(r) / len(r) for n, r in sorted(labels.items())} for s, labels in suite_label_results.items()})


def check_package(package: Path, schema: Schema, gazetteer: Gazetteer, folder: Path = SUITE_DIR) -> Report:
    from claims.predictor.predictor import Predictor

    return run(Predictor.load(package), load_suite(schema, gazetteer, folder))


def package_run_id(package: Path) -> str | None:
    import yaml

    mlmodel = Path(package) / "MLmodel"
    if not mlmodel.exists():
        return None
    return (yaml.safe_load(mlmodel.read_text()).get("metadata") or {}).get("claims.run_id") or None


def log_to_run(run_id: str, report: Report, tracking_uri: str | None = None) -> None:
    """Rates go to the run that trained the package, beside its cross-validation metrics."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    for key, value in report.metrics().items():
        client.log_metric(run_id, key, value)
    client.log_dict(run_id, report.details(), BEHAVIOUR_ARTIFACT)
