"""The actor gazetteer (labels/actors.yaml) and places (labels/places.yaml), validated with line numbers."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path


from claims.util.errors import InputError, Problem
from claims.util.yaml_lines import load_yaml_with_lines
from claims.util.paths import ROOT
from claims.corpus.schema import Schema

ACTORS_PATH = ROOT / "labels" / "actors.yaml"
PLACES_PATH = ROOT / "labels" / "places.yaml"
ATTRIBUTION_TASK = "attribution"
# Actor types that are a state's own forces or government: each names its `country` (see `country_of`).
STATE_TYPES = ("national_army", "government")


@dataclass(frozen=True)
class Actor:
    name: str
    type: str
    label: str
    aliases: tuple[str, ...]
    note: str
    line: int
    country: str | None = None  # for STATE_TYPES: the state it belongs to (see `country_of`)


@dataclass
class Gazetteer:
    actors: list[Actor]
    places: dict[str, list[str]] = field(default_factory=dict)  # kind ("towns", "bases") -> names
    by_country: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # country -> kind -> names

    def of_type(self, actor_type: str) -> list[Actor]:
        return [a for a in self.actors if a.type == actor_type]

    def country_of(self, alias: str) -> str | None:
        """The country whose state the actor named `alias` is (armies, governments); None otherwise.

        An army or government speaking about another country's conflict is external_observer (R96),
        so a generated sentence that puts it in a place must use a place of `by_country[country]`."""
        actor = self._alias_index.get(alias)
        return actor.country if actor is not None else None

    @property
    def types(self) -> list[str]:
        return sorted({a.type for a in self.actors})

    @cached_property
    def _alias_index(self) -> dict[str, Actor]:
        return {alias: a for a in self.actors for alias in a.aliases}

    @cached_property
    def _place_index(self) -> dict[str, str]:
        return {name: kind for kind, names in self.places.items() for name in names}

    @cached_property
    def pattern(self) -> re.Pattern:
        """Every alias and place as a whole word; longest first so 'Wagner Group' beats 'Wagner'."""
        names = sorted({*self._alias_index, *self._place_index}, key=len, reverse=True)
        return re.compile(r"(?<![\w'’-])(" + "|".join(map(re.escape, names)) + r")(?![\w’-])")

    def find(self, text: str) -> list[tuple[int, int, str, Actor | str]]:
        """(start, end, matched text, Actor or place kind) for each mention in `text`."""
        out = []
        for m in self.pattern.finditer(text):
            s = m.group(1)
            out.append((m.start(1), m.end(1), s, self._alias_index.get(s) or self._place_index[s]))
        return out

    def labels_in(self, text: str) -> set[str]:
        return {hit.label for *_, hit in self.find(text) if isinstance(hit, Actor)}


def _stamp(path: Path) -> tuple[str, str] | None:
    try:
        return str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


# Training builds a model per fold, and each loads the gazetteer: parse the files once while their
# bytes are unchanged. Callers only read a Gazetteer, so one object can be shared.
_LOADED: dict[tuple, Gazetteer] = {}


def load_gazetteer(schema: Schema, actors_path: Path | None = None, places_path: Path | None = None) -> Gazetteer:
    """Load and check both files; every problem (duplicate alias, unknown label...) in one error."""
    actors_path, places_path = Path(actors_path or ACTORS_PATH), Path(places_path or PLACES_PATH)
    key = (tuple(schema.task(ATTRIBUTION_TASK).label_names), _stamp(actors_path), _stamp(places_path))
    if None not in key[1:] and key in _LOADED:
        return _LOADED[key]
    gazetteer = _read_gazetteer(schema, actors_path, places_path)
    if None not in key[1:]:
        _LOADED[key] = gazetteer
    return gazetteer


def _read_gazetteer(schema: Schema, actors_path: Path, places_path: Path) -> Gazetteer:
    problems: list[Problem] = []
    valid_labels = schema.task(ATTRIBUTION_TASK).label_names
    raw = load_yaml_with_lines(actors_path) or {}
    actors: list[Actor] = []
    seen: dict[str, int] = {}
    for entry in raw.get("actors") or []:
        line = entry.get("__line__")
        missing = [k for k in ("name", "type", "label", "aliases", "note") if not entry.get(k)]
        unknown = sorted(set(entry) - {"name", "type", "label", "aliases", "note", "country", "__line__"})
        for k in missing:
            problems.append(Problem(actors_path, line, k, "required field is missing"))
        for k in unknown:
            problems.append(Problem(actors_path, line, k, "unknown field; expected name, type, label, aliases, note, country"))
        if missing or unknown:
            continue
        if entry["label"] not in valid_labels:
            problems.append(Problem(actors_path, line, "label",
                                    f"unknown label {entry['label']!r}; expected one of {valid_labels}"))
        for alias in entry["aliases"]:
            if alias in seen:
                problems.append(Problem(actors_path, line, "aliases",
                                        f"duplicate alias {alias!r} (first at line {seen[alias]})"))
            seen[alias] = line
        if "country" in entry and not str(entry["country"] or "").strip():
            problems.append(Problem(actors_path, line, "country", "empty; name a country of the places file"))
        elif "country" not in entry and entry["type"] in STATE_TYPES:
            problems.append(Problem(actors_path, line, "country",
                                    f"required for type {entry['type']!r} (a country of the places file)"))
        actors.append(Actor(entry["name"], entry["type"], entry["label"], tuple(map(str, entry["aliases"])),
                            entry["note"], line, str(entry["country"]).strip() if entry.get("country") else None))
    places: dict[str, list[str]] = {}
    by_country: dict[str, dict[str, list[str]]] = {}
    raw_places = load_yaml_with_lines(places_path) or {}
    for country in raw_places.get("countries") or []:
        country_name = str(country.get("name") or "").strip()
        if not country_name or country_name in by_country:
            problems.append(Problem(places_path, country.get("__line__"), "name",
                                    f"country {country_name!r} is listed twice" if country_name else "missing"))
        home = by_country.setdefault(country_name, {})
        for kind in ("towns", "bases"):
            for name in country.get(kind) or []:
                if name in seen:
                    problems.append(Problem(places_path, country.get("__line__"), kind,
                                            f"{name!r} is also an actor alias (line {seen[name]})"))
                places.setdefault(kind, []).append(str(name))
                home.setdefault(kind, []).append(str(name))
    for actor in actors:
        if actor.country is not None and actor.country not in by_country:
            problems.append(Problem(actors_path, actor.line, "country",
                                    f"{actor.country!r} is not a country of {places_path.name}"))
    if problems:
        raise InputError(problems)
    return Gazetteer(actors, places, by_country)
