"""Experiment configs: YAML validated once at load time against a strict schema, then typed objects.

An unknown key fails with its dotted path and the closest valid key; a wrong type names the
expected type. `--set section.key=value` overrides are applied to the raw YAML before validation,
so overridden values are validated exactly like written ones.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SerializeAsAny, ValidationError, field_validator

from claims.models.options import ModelConfig, Strict, TrainConfig
from claims.util.errors import InputError, Problem
from claims.util.names import check_name


class AugmentConfig(Strict):
    """Swap augmentation of training parts (never test folds): actors and places from the gazetteer."""

    enabled: bool = False
    copies: int = Field(default=1, ge=1, le=20, description="Swapped variants per unit that mentions something.")
    actors: bool = True
    places: bool = True


class DataConfig(Strict):
    annotations: list[str] = Field(default=["labels/annotations/*.jsonl"], min_length=1,
                                   description="Annotation files or glob patterns, relative to the repo root.")
    schema_path: str = "labels/schema.yaml"
    tasks: list[str] = Field(default=["claim_type", "attribution", "withdrawal"], min_length=1)
    max_units_per_doc: int | None = Field(default=None, ge=1, description="Shrink the data (tests).")
    max_articles: int | None = Field(default=None, ge=2, description="Keep the first N articles of the manifest (tests).")
    augment: AugmentConfig = AugmentConfig()


class EvalConfig(Strict):
    """The four evaluations, all in one run: (a) grouped k-fold by article and (b) leave-one-country-
    out on the training data choose the default; (c) seeds only -> test split and (d) all training
    data -> test split are reported and never used to choose anything."""

    folds: int = Field(default=5, ge=2, description="(a) grouped k-fold cross-validation, folds by article.")
    country_folds: bool = Field(default=True, description="(b) leave-one-country-out cross-validation.")
    test_annotations: list[str] = Field(
        default=["labels/sealed/annotations/*.jsonl"],
        description="(c), (d): the sealed test split, read only here; [] skips both.")
    seeds_only_split: str = Field(default="seed", description="(c): train on the articles of this manifest split.")
    max_folds: int | None = Field(default=None, ge=1, description="Evaluate only the first N folds of (a) and (b) (tests).")
    seeds: int = Field(default=1, ge=1, description="Repeats for stochastic families; deterministic ones run once.")
    tune_thresholds: bool = True
    thresholds_from: Literal["other_folds", "inner_split"] = Field(
        default="other_folds",
        description="Where a held-out fold's thresholds come from: the out-of-fold predictions of the other "
                    "folds of the same evaluation (no extra fit), or a grouped inner split of the fold's "
                    "training part (`inner_folds` more fits per fold). One fold alone, and (c), use the inner split.")
    inner_folds: int = Field(default=2, ge=2, description="Grouped inner split of each training part for thresholds.")
    default_threshold: float = Field(default=0.5, gt=0, lt=1)


class TrackingConfig(Strict):
    experiment: str = "conflict-claims"
    tracking_uri: str | None = Field(default=None, description="Default: sqlite:///mlflow.db in the repo root.")


class ExperimentConfig(Strict):
    name: str = Field(description="Short name of this experiment; one parent run per name in MLflow.")
    data: DataConfig = DataConfig()
    model: SerializeAsAny[ModelConfig]  # dump the family's own options, not just the base fields
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    tracking: TrackingConfig = TrackingConfig()

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        """The name becomes models/<name>/: one safe path component."""
        try:
            return check_name(value)
        except InputError as e:
            raise ValueError(e.problems[0].message) from None

    @field_validator("model", mode="before")
    @classmethod
    def _family_options(cls, value: Any) -> Any:
        """Validate the model section against the options of the family it names."""
        from claims.models.registry import options_class

        if isinstance(value, dict) and isinstance(value.get("name"), str):
            try:
                family_options = options_class(value["name"])
            except KeyError as e:
                raise ValueError(e.args[0]) from None
            return family_options.model_validate(value)
        return value

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def flat_params(self) -> dict[str, str]:
        return {k: ",".join(map(str, v)) if isinstance(v, list) else str(v)
                for k, v in flatten(self.model_dump(mode="json")).items()}


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def apply_overrides(raw: dict, overrides: list[str], source: str = "--set") -> dict:
    """Apply `section.key=value` strings; values are parsed as YAML (4 -> int, true -> bool)."""
    for item in overrides:
        if "=" not in item:
            raise InputError(Problem(source, None, item, "override must look like section.key=value"))
        dotted, value = item.split("=", 1)
        keys = dotted.strip().split(".")
        node = raw
        for k in keys[:-1]:
            if not isinstance(node.setdefault(k, {}), dict):
                raise InputError(Problem(source, None, dotted, f"{k!r} is not a section"))
            node = node[k]
        node[keys[-1]] = yaml.safe_load(value) if value.strip() else None
    return raw


def _fields_at(raw: dict, loc: tuple) -> list[str]:
    """Valid keys of the config section at `loc`, for suggesting the closest one."""
    from claims.models.registry import options_class

    model: type[BaseModel] = ExperimentConfig
    node: Any = raw
    for part in loc:
        if part == "model" and model is ExperimentConfig:
            try:
                model = options_class((node or {}).get("model", {}).get("name", ""))
            except Exception:
                model = ModelConfig
        else:
            info = model.model_fields.get(part)
            ann = getattr(info, "annotation", None)
            if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
                return []
            model = ann
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return list(model.model_fields)


def _problems(e: ValidationError, raw: dict, path: str) -> list[Problem]:
    problems = []
    for err in e.errors():
        loc = tuple(str(x) for x in err["loc"] if not str(x).startswith("function-"))
        dotted = ".".join(loc)
        if err["type"] == "extra_forbidden":
            valid = _fields_at(raw, loc[:-1])
            lowered = {v.lower(): v for v in valid}
            close = [lowered[c] for c in difflib.get_close_matches(loc[-1].lower(), lowered, n=1)]
            hint = f"; did you mean {'.'.join(loc[:-1] + (close[0],))!r}?" if close else ""
            msg = f"unknown key{hint} Valid keys here: {', '.join(valid)}"
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = f"{err['msg']} (got {err.get('input')!r})"
        problems.append(Problem(path, None, dotted, msg))
    return problems


def load_config(path: Path | str, overrides: list[str] | None = None) -> ExperimentConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise InputError(Problem(path, None, None, "config file not found")) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(Problem(path, mark.line + 1 if mark else None, None, f"invalid YAML: {e}")) from None
    if not isinstance(raw, dict):
        raise InputError(Problem(path, None, None, "a config must be a YAML mapping"))
    raw = apply_overrides(raw, overrides or [], source=f"{path} --set")
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as e:
        raise InputError(_problems(e, raw, str(path))) from None
