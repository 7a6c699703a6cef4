"""Round trips with annotation tools: Label Studio task JSON and Prodigy JSONL.

Both tools see one unit per task. Our record (id, offsets, source, meta) travels in the task's
data or meta, so an export followed by an import reproduces the annotation files exactly.
Which tasks a unit was annotated for travels too: "not annotated" must not come back as "no".

Tasks may carry a model's labels as pre-annotations (`claims suggest`): Label Studio `predictions`
(with `model_version` and `score`), Prodigy pre-accepted options (with `meta.score`,
`meta.suggested_by` and `meta.suggested`). Reading back an annotated unit from such a task records
in its `meta` which model suggested it (`suggested_by`) and whether the annotator's labels equal the
suggestion (`suggestion`: `accepted`) or not (`corrected`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

from claims.corpus import annotations
from claims.util import atomic
from claims.corpus.annotations import Record
from claims.util.errors import InputError, Problem
from claims.util.names import check_name
from claims.corpus.schema import Schema, Task
from claims.corpus.segment import read_text
from claims.corpus.validate import check_text

Format = Literal["label-studio", "prodigy"]
_TEXT_KEYS = ("id", "doc_id", "source", "start", "end")
# Exported tasks carry the schema version they were made under; importing them under another
# version is refused, since label names or meanings may have changed in between.
SCHEMA_VERSION = "schema_version"


def _check_version(value: Any, schema: Schema, path: Path, line: int | None, where: str) -> None:
    """Tasks made elsewhere (no version) are checked label by label as usual."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise InputError(Problem(path, line, where, f"expected the schema version as an integer, got {value!r:.40}"))
    if value is not None and value != schema.version:
        raise InputError(Problem(path, line, where, f"tasks exported under schema version {value!r}, but "
                                 f"labels/schema.yaml is version {schema.version}: re-export the units with "
                                 "`claims export` and annotate them under the current schema"))


def _choices(task: Task, value: Any) -> list[str]:
    if task.type == "binary":
        return ["yes" if value else "no"]
    if task.type == "multiclass":
        return [value]
    return list(value)


def _from_choices(task: Task, chosen: list[str], where: tuple[Path, int | None, str]) -> Any:
    """The task's value from the tool's chosen options; an option the schema does not know is an error."""
    known = ["yes", "no"] if task.type == "binary" else task.label_names
    unknown = [c for c in chosen if c not in known]
    if unknown:
        path, line, field = where
        raise InputError(Problem(path, line, field, f"unknown {task.name} label(s) {unknown}; expected {known}"))
    if task.type == "binary":
        # A binary task left unanswered stays unannotated (None), not a negative answer.
        return None if not chosen else "yes" in chosen
    if task.type == "multiclass":
        return chosen[0] if chosen else None
    return [name for name in task.label_names if name in chosen]


# ---------------------------------------------------------------- Label Studio

def label_studio_config(schema: Schema) -> str:
    """The labelling interface for these tasks, to paste into a Label Studio project."""
    parts = ['<View>', '  <Text name="text" value="$text"/>']
    for task in schema.tasks:
        choice = "multiple" if task.type == "multilabel" else "single"
        parts.append(f'  <Header value={quoteattr(task.name + ": " + task.description)}/>')
        parts.append(f'  <Choices name="{task.name}" toName="text" choice="{choice}" showInline="true">')
        for label in task.labels:
            parts.append(f'    <Choice value="{label.name}" hint={quoteattr(label.definition)}/>')
        parts.append("  </Choices>")
    parts.append("</View>")
    return "\n".join(parts) + "\n"


def _ls_result(schema: Schema, labels: dict[str, Any]) -> list[dict]:
    return [
        {"from_name": t.name, "to_name": "text", "type": "choices", "value": {"choices": _choices(t, labels[t.name])}}
        for t in schema.tasks if labels.get(t.name) is not None
    ]


DEFAULT_MODEL_VERSION = "conflict-claims"
ACCEPTED, CORRECTED = "accepted", "corrected"


def _with_provenance(meta: dict[str, Any], labels: dict[str, Any],
                     suggested: tuple[str, dict[str, Any]] | None) -> dict[str, Any]:
    """An annotated unit's meta: provenance from this task's suggestion, and none carried over from an
    earlier round (a unit relabelled from a plain export is no longer the model's)."""
    meta = {k: v for k, v in meta.items() if k not in ("suggested_by", "suggestion")}
    return {**meta, **_provenance(labels, suggested[1], suggested[0])} if suggested else meta


def _provenance(labels: dict[str, Any], predicted: dict[str, Any], model_version: str) -> dict[str, str]:
    """`meta` entries for a unit annotated from a suggestion: accepted when every predicted task's
    answer equals the prediction (an unanswered task counts as a correction)."""
    same = all(labels.get(task) == value for task, value in predicted.items())
    return {"suggested_by": model_version, "suggestion": ACCEPTED if same else CORRECTED}


def to_label_studio(records: list[Record], schema: Schema, predictions: dict[str, dict] | None = None, *,
                    model_version: str = DEFAULT_MODEL_VERSION, scores: dict[str, float] | None = None,
                    task_scores: dict[str, dict[str, float]] | None = None) -> list[dict]:
    """One task per unit; `predictions` (unit id -> labels) become pre-annotations from `model_version`,
    with `scores[id]` (the model's confidence in the unit) on the prediction and `task_scores[id][task]`
    (its confidence in that task's answer) on each result, where given."""
    tasks = []
    for rec in records:
        data = {"text": rec.text, **{k: getattr(rec, k) for k in _TEXT_KEYS}, "meta": rec.meta,
                "annotated_tasks": [t.name for t in schema.tasks if rec.labels.get(t.name) is not None],
                SCHEMA_VERSION: schema.version}
        item: dict[str, Any] = {"data": data, "annotations": []}
        if data["annotated_tasks"]:
            item["annotations"] = [{"result": _ls_result(schema, rec.labels)}]
        if predictions and rec.id in predictions:
            prediction: dict[str, Any] = {"model_version": model_version, "result": _ls_result(schema, predictions[rec.id])}
            for result in prediction["result"]:
                if task_scores and result["from_name"] in task_scores.get(rec.id, {}):
                    result["score"] = task_scores[rec.id][result["from_name"]]
            if scores and rec.id in scores:
                prediction["score"] = scores[rec.id]
            item["predictions"] = [prediction]
        tasks.append(item)
    return tasks


_UNIT_TYPES = {"id": str, "doc_id": str, "text": str, "start": int, "end": int}


def _unit_fields(fields: dict, path: Path, line: int | None, where: str) -> None:
    for key, kind in _UNIT_TYPES.items():
        value = fields.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InputError(Problem(path, line, f"{where}.{key}", f"expected {kind.__name__}, got {value!r:.60}"))


def _shape(value: Any, kind: type, path: Path, line: int | None, where: str) -> Any:
    if not isinstance(value, kind):
        raise InputError(Problem(path, line, where, f"expected a JSON {'object' if kind is dict else 'list'}"))
    return value


def from_label_studio(path: Path, schema: Schema) -> list[Record]:
    try:
        items = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise InputError(Problem(path, e.lineno, None, f"malformed JSON: {e.msg}")) from None
    if not isinstance(items, list):
        raise InputError(Problem(path, None, None, "expected a JSON list of Label Studio tasks"))
    records = []
    for n, item in enumerate(items):
        item = _shape(item, dict, path, None, f"[{n}]")
        data = _shape(item.get("data", {}), dict, path, None, f"[{n}].data")
        where = f"[{n}].data"
        missing = [k for k in ("text", "id", "doc_id", "start", "end") if k not in data]
        if missing:
            raise InputError(Problem(path, None, where, f"missing {missing}; was this task exported by `claims export`?"))
        _unit_fields(data, path, None, where)
        _check_version(data.get(SCHEMA_VERSION), schema, path, None, f"{where}.{SCHEMA_VERSION}")
        annotated = _shape(item.get("annotations") or [], list, path, None, f"[{n}].annotations")
        for k, a in enumerate(annotated):
            _shape(a, dict, path, None, f"[{n}].annotations[{k}]")
            results = _shape(a.get("result", []), list, path, None, f"[{n}].annotations[{k}].result")
            for j, r in enumerate(results):
                where_r = f"[{n}].annotations[{k}].result[{j}]"
                _shape(r, dict, path, None, where_r)
                if r.get("type") == "choices":
                    choices = _shape(r.get("value"), dict, path, None, where_r + ".value").get("choices", [])
                    if not isinstance(r.get("from_name"), str) or not isinstance(choices, list) \
                            or not all(isinstance(c, str) for c in choices):
                        raise InputError(Problem(path, None, where_r, "expected from_name and a list of choices"))
            for stamp in ("updated_at", "created_at"):
                if a.get(stamp) is not None and not isinstance(a[stamp], str):
                    raise InputError(Problem(path, None, f"[{n}].annotations[{k}].{stamp}", "expected a string"))
        suggested = _ls_prediction(item.get("predictions"), schema, path, n)
        # The newest completed annotation wins; a task with none keeps whatever it had before.
        latest = max(annotated, key=lambda a: a.get("updated_at") or a.get("created_at") or "", default=None)
        labels: dict[str, Any] = {t.name: None for t in schema.tasks}
        meta = dict(_shape(data.get("meta") or {}, dict, path, None, where + ".meta"))
        if not isinstance(data.get("annotated_tasks", []), list):
            raise InputError(Problem(path, None, where + ".annotated_tasks", "expected a list"))
        if latest is not None:
            chosen = {r["from_name"]: r.get("value", {}).get("choices", []) for r in latest.get("result", [])
                      if r.get("type") == "choices"}
            unknown_tasks = sorted(set(chosen) - {t.name for t in schema.tasks})
            if unknown_tasks:
                raise InputError(Problem(path, None, f"[{n}].annotations", f"unknown task(s) {unknown_tasks}"))
            # Label Studio omits a Choices control left empty: for the tasks the annotator had in
            # front of them, absent means "none of these".
            for task in schema.tasks:
                if task.name in chosen or "completed_by" in latest or task.name in data.get("annotated_tasks", []):
                    labels[task.name] = _from_choices(task, chosen.get(task.name, []),
                                                      (path, None, f"[{n}].annotations.{task.name}"))
            if "completed_by" in latest:
                meta = {**meta, "annotator": f"label-studio user {latest['completed_by']}", "tool": "label-studio",
                        "annotated_at": latest.get("updated_at") or latest.get("created_at")}
            if any(v is not None for v in labels.values()):
                meta = _with_provenance(meta, labels, suggested)
        records.append(Record(id=data["id"], doc_id=data["doc_id"], text=data["text"], start=data["start"],
                              end=data["end"], labels=labels, source=data.get("source"), meta=meta))
    return records


def _ls_prediction(predictions: Any, schema: Schema, path: Path, n: int) -> tuple[str, dict[str, Any]] | None:
    """(model_version, labels) of a task's latest prediction, or None when it carries none.

    Entries that are not objects (some Label Studio exports list prediction ids) are skipped."""
    entries = [p for p in _shape(predictions or [], list, path, None, f"[{n}].predictions") if isinstance(p, dict)]
    if not entries:
        return None
    k = len(entries) - 1
    where = f"[{n}].predictions[{k}]"
    latest = entries[-1]
    results = _shape(latest.get("result", []), list, path, None, where + ".result")
    version = latest.get("model_version")
    if version is not None and not isinstance(version, str):
        raise InputError(Problem(path, None, where + ".model_version", "expected a string"))
    chosen: dict[str, list[str]] = {}
    for j, r in enumerate(results):
        _shape(r, dict, path, None, f"{where}.result[{j}]")
        if r.get("type") != "choices":
            continue
        choices = _shape(r.get("value"), dict, path, None, f"{where}.result[{j}].value").get("choices", [])
        if not isinstance(r.get("from_name"), str) or not isinstance(choices, list) \
                or not all(isinstance(c, str) for c in choices):
            raise InputError(Problem(path, None, f"{where}.result[{j}]", "expected from_name and a list of choices"))
        if r["from_name"] not in schema.by_name:
            return None  # a prediction for another schema (or another backend's control): no provenance
        chosen[r["from_name"]] = choices
    try:
        labels = {task.name: _from_choices(task, chosen[task.name], (path, None, f"{where}.{task.name}"))
                  for task in schema.tasks if task.name in chosen}
    except InputError:  # a label the schema no longer has: the annotation still counts, without provenance
        return None
    return version or DEFAULT_MODEL_VERSION, labels


# ---------------------------------------------------------------- Prodigy

def _option_id(task: Task, label: str) -> str:
    return f"{task.name}:{label}"


def to_prodigy(records: list[Record], schema: Schema, predictions: dict[str, dict] | None = None, *,
               model_version: str = DEFAULT_MODEL_VERSION, scores: dict[str, float] | None = None,
               task_scores: dict[str, dict[str, float]] | None = None) -> list[dict]:
    """Prodigy `choice` tasks: one option per task label, accepted options are the labels.

    With `predictions` (unit id -> labels), a unit's predicted labels are its pre-accepted options, and
    its meta names the model (`suggested_by`), the prediction (`suggested`) and `score` where given."""
    options = [{"id": _option_id(t, label), "text": f"{t.name}: {label}"}
               for t in schema.tasks for label in (["yes"] if t.type == "binary" else t.label_names)]
    lines = []
    for rec in records:
        labels = predictions.get(rec.id, rec.labels) if predictions else rec.labels
        accept = []
        for task in schema.tasks:
            value = labels.get(task.name)
            if value is not None:
                accept += [_option_id(task, c) for c in _choices(task, value) if not (task.type == "binary" and c == "no")]
        meta = {**{k: getattr(rec, k) for k in _TEXT_KEYS}, "record_meta": rec.meta,
                "annotated_tasks": [t.name for t in schema.tasks if rec.labels.get(t.name) is not None],
                SCHEMA_VERSION: schema.version}
        if predictions and rec.id in predictions:
            meta["suggested_by"] = model_version
            meta["suggested"] = {t.name: predictions[rec.id][t.name] for t in schema.tasks
                                 if predictions[rec.id].get(t.name) is not None}
            if scores and rec.id in scores:
                meta["score"] = scores[rec.id]
            if task_scores and rec.id in task_scores:
                meta["task_scores"] = task_scores[rec.id]
        lines.append({"text": rec.text, "options": options, "accept": accept, "answer": "accept", "meta": meta})
    return lines


def from_prodigy(path: Path, schema: Schema) -> list[Record]:
    records = []
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            eg = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(Problem(path, lineno, None, f"malformed JSON: {e.msg}")) from None
        eg = _shape(eg, dict, path, lineno, "example")
        meta = _shape(eg.get("meta") or {}, dict, path, lineno, "meta")
        missing = [k for k in ("id", "doc_id", "start", "end") if k not in meta]
        if missing or "text" not in eg:
            raise InputError(Problem(path, lineno, "meta", f"missing {missing or ['text']}; was this exported by `claims export`?"))
        _unit_fields({**meta, "text": eg["text"]}, path, lineno, "meta")
        _check_version(meta.get(SCHEMA_VERSION), schema, path, lineno, f"meta.{SCHEMA_VERSION}")
        accept = _shape(eg.get("accept") or [], list, path, lineno, "accept")
        if not all(isinstance(o, str) for o in accept):
            raise InputError(Problem(path, lineno, "accept", "expected a list of option ids"))
        for key, kind in (("record_meta", dict), ("annotated_tasks", list), ("suggested", dict)):
            if meta.get(key) is not None:
                _shape(meta[key], kind, path, lineno, f"meta.{key}")
        if meta.get("suggested_by") is not None and not isinstance(meta["suggested_by"], str):
            raise InputError(Problem(path, lineno, "meta.suggested_by", "expected a string"))
        if eg.get("answer", "accept") != "accept":
            continue  # rejected or ignored in Prodigy: the unit stays as it was
        accepted = set(accept)
        unknown_tasks = sorted({o.split(":", 1)[0] for o in accepted} - {t.name for t in schema.tasks})
        if unknown_tasks:
            raise InputError(Problem(path, lineno, "accept", f"unknown task(s) {unknown_tasks}"))
        # A unit passed through Prodigy has all its tasks answered, whatever it had before; its
        # binary tasks offer only "yes", so an accepted unit without it answered "no".
        labels = {}
        for task in schema.tasks:
            chosen = [o.split(":", 1)[1] for o in accepted if o.split(":", 1)[0] == task.name]
            value = _from_choices(task, chosen, (path, lineno, f"accept.{task.name}"))
            labels[task.name] = False if task.type == "binary" and value is None else value
        if "_session_id" not in eg and "_timestamp" not in eg:
            labels = {t: (v if t in meta.get("annotated_tasks", []) else None) for t, v in labels.items()}
        record_meta = dict(meta.get("record_meta") or {})
        if "_timestamp" in eg:
            record_meta.update({"annotator": f"prodigy session {eg.get('_session_id', '?')}", "tool": "prodigy",
                                "annotated_at": eg["_timestamp"]})
        if any(v is not None for v in labels.values()):
            suggested = _prodigy_suggestion(meta.get("suggested"), schema, path, lineno)
            record_meta = _with_provenance(record_meta, labels, suggested and (
                meta.get("suggested_by") or DEFAULT_MODEL_VERSION, suggested))
        records.append(Record(id=meta["id"], doc_id=meta["doc_id"], text=eg["text"], start=meta["start"],
                              end=meta["end"], labels=labels, source=meta.get("source"), meta=record_meta))
    return records


def _prodigy_suggestion(suggested: Any, schema: Schema, path: Path, lineno: int) -> dict[str, Any] | None:
    """The predicted labels carried in `meta.suggested`, normalised; None when there are none or they
    do not fit the schema (the annotation still counts, without provenance)."""
    if not isinstance(suggested, dict):
        return None
    probe = Record(id="", doc_id="", text="", start=0, end=0, labels=suggested, path=path, line=lineno)
    if annotations.check_labels(probe, schema, require_all=False):
        return None
    return annotations.normalise_labels(suggested, schema)


# ---------------------------------------------------------------- files

def export(records: list[Record], schema: Schema, fmt: Format, out: Path,
           predictions: dict[str, dict] | None = None, *, model_version: str = DEFAULT_MODEL_VERSION,
           scores: dict[str, float] | None = None, task_scores: dict[str, dict[str, float]] | None = None) -> None:
    if fmt == "label-studio":
        tasks = to_label_studio(records, schema, predictions, model_version=model_version, scores=scores,
                                task_scores=task_scores)
        atomic.write_text(out, json.dumps(tasks, ensure_ascii=False, indent=1))
        atomic.write_text(out.with_suffix(".config.xml"), label_studio_config(schema))
    else:
        items = to_prodigy(records, schema, predictions, model_version=model_version, scores=scores,
                           task_scores=task_scores)
        atomic.write_text(out, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in items))


def import_records(path: Path, schema: Schema, fmt: Format) -> list[Record]:
    return from_label_studio(path, schema) if fmt == "label-studio" else from_prodigy(path, schema)


def merge_into(records: list[Record], annotations_dir: Path, schema: Schema, source: Path | None = None) -> list[Path]:
    """Write imported records into one file per doc_id, replacing units with the same id.

    All or nothing: every name, every unit's text (against its raw file) and every existing file is
    checked and every merged file built before the first one is written. A unit whose labels did not
    change keeps its existing record, provenance (`meta`) included.
    """
    by_doc: dict[str, list[Record]] = defaultdict(list)
    problems: list[Problem] = []
    raw_cache: dict[str, str | None] = {}
    for rec in records:
        rec.labels = annotations.normalise_labels(rec.labels, schema)
        if rec.path is None:
            rec.path = source
        problems += check_text(rec, raw_cache)
        by_doc[rec.doc_id].append(rec)
    for doc_id, new in by_doc.items():
        check_name(doc_id, str(new[0].path or "import"), new[0].line, "doc_id")
    planned: list[tuple[Path, list[Record]]] = []
    for doc_id, new in by_doc.items():
        path = annotations_dir / f"{doc_id}.jsonl"
        existing, read_problems = annotations.read_file(path) if path.exists() else ([], [])
        problems += read_problems
        merged = {r.id: r for r in existing}
        for rec in new:
            old = merged.get(rec.id)
            if old is None or old.labels != rec.labels or old.text != rec.text:
                merged[rec.id] = rec
        planned.append((path, sorted(merged.values(), key=lambda r: (r.start, r.id))))
    if problems:
        raise InputError(problems)
    for path, ordered in planned:
        annotations.write_file(path, ordered)
    return [path for path, _ in planned]
