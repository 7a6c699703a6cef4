"""majority.v1: every label's base rate in the training data. The floor for every other family."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np

from claims.models.options import ModelConfig
from claims.models.families.base import ClaimsModel


class MajorityOptions(ModelConfig):
    name: Literal["majority.v1"] = "majority.v1"


class Majority(ClaimsModel):
    family_name = "majority.v1"
    Options = MajorityOptions

    def _fit(self, texts, y, contexts):
        self.rates_ = y.mean(axis=0)

    def _predict_proba(self, texts, contexts):
        return np.tile(self.rates_, (len(texts), 1))

    def _save(self, path: Path):
        (path / "rates.json").write_text(json.dumps(self.rates_.tolist()))

    def _load(self, path: Path):
        self.rates_ = np.asarray(json.loads((path / "rates.json").read_text()))
