"""The article manifest (labels/articles.yaml): every raw article, its split and its provenance.

The manifest is what makes the test split sealed: an article listed as `test` may only be read by
evaluation, and its annotations live apart (labels/sealed/) so no training glob can reach them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from claims.util.errors import InputError, Problem
from claims.util.names import check_name
from claims.util.paths import ROOT
from claims.util.yaml_lines import load_yaml_with_lines

MANIFEST_PATH = ROOT / "labels" / "articles.yaml"
# `pending`: written and listed, annotation not finished; validation asks no labels of it and no
# training or evaluation path reads it (it has no annotation file until it moves to train or test).
SPLITS = ("seed", "train", "test", "pending")
TRAINING_SPLITS = ("seed", "train")
_FIELDS = {"id": str, "path": str, "split": str, "country": str, "year": int, "style": str,
           "outlet": str, "actors": list, "writer": str}


@dataclass(frozen=True)
class Article:
    id: str
    path: str
    split: str
    country: str
    year: int
    style: str
    outlet: str
    actors: tuple[str, ...]
    writer: str
    line: int | None = None


@dataclass(frozen=True)
class Floors:
    """Minimum positives per label in one split, and what counts as a hard withdrawal negative."""

    split: str = "train"
    per_task: dict[str, int] = field(default_factory=dict)
    binary_yes: dict[str, int] = field(default_factory=dict)
    hard_negatives: dict[str, int] = field(default_factory=dict)
    hard_negative_cue: str = ""

    @property
    def cue(self) -> re.Pattern[str] | None:
        return re.compile(self.hard_negative_cue, re.IGNORECASE) if self.hard_negative_cue else None


@dataclass
class Manifest:
    path: Path
    countries: list[str]
    styles: dict[str, str]
    roots: list[str]
    articles: list[Article]
    floors: Floors

    def __post_init__(self) -> None:
        self.by_id = {a.id: a for a in self.articles}

    def split_of(self, doc_id: str) -> str | None:
        article = self.by_id.get(doc_id)
        return article.split if article else None

    def ids(self, *splits: str) -> list[str]:
        return [a.id for a in self.articles if a.split in splits]


def load_manifest(path: Path | str = MANIFEST_PATH) -> Manifest:
    """Read and check the manifest; every problem is reported at once, with file, line and field."""
    path = Path(path)
    raw = load_yaml_with_lines(path)
    if not isinstance(raw, dict):
        raise InputError(Problem(path, None, None, "the manifest must be a YAML mapping"))
    problems: list[Problem] = []
    countries = list(raw.get("countries") or [])
    styles = {k: v for k, v in (raw.get("styles") or {}).items() if k != "__line__"}
    roots = list(raw.get("roots") or [])
    if not countries or not styles or not roots:
        problems.append(Problem(path, raw.get("__line__"), None, "the manifest needs `countries`, `styles` and `roots`"))
    articles: list[Article] = []
    seen: dict[str, int | None] = {}
    for entry in raw.get("articles") or []:
        line = entry.get("__line__") if isinstance(entry, dict) else None
        article = _article(path, entry, line, countries, styles, problems)
        if article is None:
            continue
        if article.id in seen:
            problems.append(Problem(path, line, "id", f"duplicate id {article.id!r} (first at line {seen[article.id]})"))
            continue
        seen[article.id] = line
        articles.append(article)
    floors = _floors(path, raw.get("floors") or {}, problems)
    if problems:
        raise InputError(problems)
    return Manifest(path, countries, styles, roots, articles, floors)


def _article(path: Path, entry, line, countries, styles, problems: list[Problem]) -> Article | None:
    if not isinstance(entry, dict):
        problems.append(Problem(path, line, None, "an article entry must be a mapping"))
        return None
    bad = False
    for name, typ in _FIELDS.items():
        value = entry.get(name)
        if value is None:
            problems.append(Problem(path, line, name, "required field is missing"))
            bad = True
        elif not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            problems.append(Problem(path, line, name, f"expected {typ.__name__}, got {type(value).__name__}"))
            bad = True
    unknown = sorted(set(entry) - set(_FIELDS) - {"__line__"})
    if unknown:
        problems.append(Problem(path, line, unknown[0], f"unknown field; expected {sorted(_FIELDS)}"))
        bad = True
    if bad:
        return None
    try:
        check_name(entry["id"], str(path), line, "id")
    except InputError as e:
        problems.extend(e.problems)
        return None
    checks = [("split", entry["split"] in SPLITS, f"unknown split; expected one of {list(SPLITS)}"),
              ("country", entry["country"] in countries, f"unknown country; expected one of {countries}"),
              ("style", entry["style"] in styles, f"unknown style; expected one of {sorted(styles)}"),
              ("year", 2000 <= entry["year"] <= 2100, "year out of range"),
              ("path", Path(entry["path"]).stem == entry["id"] and not Path(entry["path"]).is_absolute()
               and ".." not in Path(entry["path"]).parts, "path must be relative, inside the repository, named <id>.txt")]
    for fld, ok, message in checks:
        if not ok:
            problems.append(Problem(path, line, fld, f"{entry[fld]!r}: {message}"))
            bad = True
    if bad:
        return None
    return Article(id=entry["id"], path=entry["path"], split=entry["split"], country=entry["country"],
                   year=entry["year"], style=entry["style"], outlet=entry["outlet"],
                   actors=tuple(entry["actors"]), writer=entry["writer"], line=line)


def _floors(path: Path, raw: dict, problems: list[Problem]) -> Floors:
    line = raw.get("__line__")
    try:
        floors = Floors(split=raw.get("split", "train"),
                        per_task={k: int(v) for k, v in (raw.get("per_task") or {}).items() if k != "__line__"},
                        binary_yes={k: int(v) for k, v in (raw.get("binary_yes") or {}).items() if k != "__line__"},
                        hard_negatives={k: int(v) for k, v in (raw.get("hard_negatives") or {}).items() if k != "__line__"},
                        hard_negative_cue=str(raw.get("hard_negative_cue") or ""))
        floors.cue  # noqa: B018 - compile once here so a bad pattern is reported with its line
    except (TypeError, ValueError, re.error) as e:
        problems.append(Problem(path, line, "floors", f"invalid floors: {e}"))
        return Floors()
    if floors.split not in SPLITS:
        problems.append(Problem(path, line, "floors.split", f"unknown split {floors.split!r}"))
    return floors


def check_files(manifest: Manifest, root: Path = ROOT) -> list[Problem]:
    """A listed article whose file is missing, and a raw file under the roots with no entry."""
    problems = []
    listed = set()
    for a in manifest.articles:
        p = (root / a.path).resolve()
        listed.add(p)
        if not p.is_file():
            problems.append(Problem(manifest.path, a.line, "path", f"article file {a.path!r} not found"))
    for r in manifest.roots:
        for p in sorted((root / r).rglob("*.txt")):
            if p.resolve() not in listed:
                problems.append(Problem(p, None, None, f"raw article has no entry in {manifest.path.name}"))
    return problems
