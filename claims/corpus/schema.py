"""The label schema: tasks and labels read from labels/schema.yaml, validated on load."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from claims.util.errors import InputError, Problem
from claims.util.paths import SCHEMA_PATH


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(_Strict):
    name: str
    definition: str


class Task(_Strict):
    name: str
    type: Literal["multilabel", "binary", "multiclass"]
    description: str
    labels: list[Label]

    @model_validator(mode="after")
    def _check_labels(self) -> "Task":
        names = [label.name for label in self.labels]
        if len(set(names)) != len(names):
            raise ValueError(f"task {self.name!r} has duplicate labels")
        if self.type == "binary" and names != ["no", "yes"]:
            raise ValueError(f"binary task {self.name!r} must list labels 'no' then 'yes'")
        return self

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @property
    def columns(self) -> list[str]:
        """Names of the model's output columns for this task: a binary task has one, 'yes'."""
        return ["yes"] if self.type == "binary" else self.label_names


class Schema(_Strict):
    version: int
    tasks: list[Task]

    @model_validator(mode="after")
    def _check_tasks(self) -> "Schema":
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError("duplicate task names")
        return self

    @cached_property
    def by_name(self) -> dict[str, Task]:
        return {t.name: t for t in self.tasks}

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def task(self, name: str) -> Task:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"unknown task {name!r}; the schema has {self.task_names}") from None

    def select(self, names: list[str]) -> "Schema":
        """The same schema restricted to some tasks, in the schema's order."""
        for n in names:
            self.task(n)
        return Schema(version=self.version, tasks=[t for t in self.tasks if t.name in names])


def load_schema(path: Path | str = SCHEMA_PATH) -> Schema:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(Problem(path, None, None, "label schema not found")) from None
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise InputError(Problem(path, None if line is None else line + 1, None, f"invalid YAML: {e}")) from None
    try:
        return Schema.model_validate(raw)
    except ValidationError as e:
        raise InputError(
            [Problem(path, None, ".".join(map(str, err["loc"])) or None, err["msg"]) for err in e.errors()]
        ) from None
