"""rules.v1: transparent cue rules from the guidelines (labels/rules.yaml) plus the actor gazetteer.

Each output column fires when one of its cues matches (or, for attribution, when an actor with that
label is mentioned). Fitting only calibrates: P(label | fired) and P(label | not fired) on the
training data, with add-one smoothing. The cues and gazetteer are saved with the model.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import Field

from claims.models.options import ModelConfig
from claims.util.errors import InputError, Problem
from claims.models.families.base import ClaimsModel
from claims.util.paths import resolve


# Which cues fire on a text, per cue set, while training: cross-validation asks about the same units
# in every fold, inner split and seed (a third of ensemble.v1's feature time before). Cleared when it
# reaches _FIRED_MAX texts, so memory stays bounded; prediction does not use it (`for_inference`).
_FIRED: dict[tuple[str, str], np.ndarray] = {}
_FIRED_MAX = 200_000


class RulesOptions(ModelConfig):
    name: Literal["rules.v1"] = "rules.v1"
    cues_path: str = "labels/rules.yaml"
    smoothing: float = Field(default=1.0, gt=0)


class Rules(ClaimsModel):
    family_name = "rules.v1"
    Options = RulesOptions

    def prepare(self) -> "Rules":
        """Load the cues and gazetteer and compile them: enough for `fired`, without calibrating."""
        self._load_sources()
        self._compile()
        return self

    def _load_sources(self) -> None:
        from claims.corpus.gazetteer import ATTRIBUTION_TASK, load_gazetteer
        from claims.corpus.schema import load_schema

        path = resolve(self.options.cues_path)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        unknown = sorted(set(raw["cues"]) - set(self.space.column_names))
        if unknown:
            raise InputError(Problem(path, None, "cues", f"unknown column(s) {unknown}; expected {self.space.column_names}"))
        self.cues_ = {col: list(raw["cues"].get(col, [])) for col in self.space.column_names}
        skip = set(raw.get("gazetteer_skip") or [])
        gaz = load_gazetteer(load_schema())
        self.actor_labels_ = {alias: f"{ATTRIBUTION_TASK}.{a.label}" for a in gaz.actors if a.type not in skip
                              for alias in a.aliases}

    def _compile(self) -> None:
        self.cue_key_ = hashlib.sha256(json.dumps([self.space.column_names, self.cues_, self.actor_labels_],
                                                  sort_keys=True).encode()).hexdigest()
        self.patterns_ = [re.compile("|".join(f"(?:{c})" for c in cues), re.IGNORECASE) if cues else None
                          for cues in self.cues_.values()]
        names = sorted(self.actor_labels_, key=len, reverse=True)
        self.actor_pattern_ = re.compile(r"(?<![\w'’-])(" + "|".join(map(re.escape, names)) + r")(?![\w’-])") \
            if names else None

    def fired(self, texts: list[str]) -> np.ndarray:
        """0/1 matrix: which columns' cues fire on each text."""
        if getattr(self, "serving_", False):
            rows = [self._fired_one(t) for t in texts]
        else:
            key, rows = self.cue_key_, []
            for text in texts:
                row = _FIRED.get((key, text))
                if row is None:
                    if len(_FIRED) >= _FIRED_MAX:
                        _FIRED.clear()
                    row = _FIRED[(key, text)] = self._fired_one(text)
                rows.append(row)
        # np.stack copies: callers get their own writeable array, never the memo's rows.
        return np.stack(rows) if len(rows) else np.zeros((0, len(self.space.column_names)), dtype=np.int8)

    def _fired_one(self, text: str) -> np.ndarray:
        cols = self.space.column_names
        out = np.zeros(len(cols), dtype=np.int8)
        for j, pattern in enumerate(self.patterns_):
            if pattern is not None and pattern.search(text):
                out[j] = 1
        if self.actor_pattern_ is not None:
            for m in self.actor_pattern_.finditer(text):
                col = self.actor_labels_[m.group(1)]
                if col in cols:
                    out[cols.index(col)] = 1
        out.flags.writeable = False  # shared by every caller that asks about the same text
        return out

    def for_inference(self):
        # New text is rarely seen twice: remembering it would only cost memory (and flatter benchmarks
        # that repeat their sentences).
        self.serving_ = True
        return self

    def _fit(self, texts, y, contexts):
        f = self.prepare().fired(texts).astype(bool)
        a = self.options.smoothing
        self.p_fired_ = (np.sum(y * f, 0) + a) / (f.sum(0) + 2 * a)
        self.p_silent_ = (np.sum(y * ~f, 0) + a) / ((~f).sum(0) + 2 * a)

    def _predict_proba(self, texts, contexts):
        f = self.fired(texts).astype(bool)
        return np.where(f, self.p_fired_[None, :], self.p_silent_[None, :])

    def _save(self, path: Path):
        (path / "rules.json").write_text(json.dumps({
            "cues": self.cues_, "actor_labels": self.actor_labels_,
            # A Rules used only for its cue indicators (inside ensemble.v1) has no calibration.
            "p_fired": getattr(self, "p_fired_", np.array([])).tolist(),
            "p_silent": getattr(self, "p_silent_", np.array([])).tolist()}, indent=1, ensure_ascii=False))

    def _load(self, path: Path):
        raw = json.loads((path / "rules.json").read_text())
        self.cues_, self.actor_labels_ = raw["cues"], raw["actor_labels"]
        self.p_fired_, self.p_silent_ = np.array(raw["p_fired"]), np.array(raw["p_silent"])
        self._compile()
