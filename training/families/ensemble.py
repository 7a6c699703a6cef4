"""ensemble.v1: a vote of families: the weighted mean of their probabilities.

Members are registered families with their default options, each fitted on the same data. Per-label
thresholds tuned on held-out articles (as for every family) then calibrate the vote's decisions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from training.config import ModelConfig
from training.families.base import ClaimsModel, load_model
from training.registry import register


class EnsembleOptions(ModelConfig):
    name: Literal["ensemble.v1"] = "ensemble.v1"
    members: list[str] = Field(default=["tfidf_linear.v1", "embed_linear.v1", "rules.v1"], min_length=2)
    weights: list[float] | None = Field(default=None, description="One per member; default: equal.")

    @field_validator("members")
    @classmethod
    def _known(cls, members: list[str]) -> list[str]:
        from training import registry

        for m in members:
            registry.get(m)  # raises with the closest name
            if m.startswith("ensemble."):
                raise ValueError("an ensemble cannot contain an ensemble")
        return members


@register("ensemble.v1")
class Ensemble(ClaimsModel):
    Options = EnsembleOptions

    @property
    def _weights(self) -> np.ndarray:
        w = np.asarray(self.options.weights or [1.0] * len(self.options.members), dtype=float)
        return w / w.sum()

    def _fit(self, texts, y):
        from training import registry

        self.members_ = []
        for name in self.options.members:
            member = registry.get(name)(registry.options_class(name)(), self.train_config, self.space)
            member.on_epoch = self.on_epoch
            self.members_.append(member.fit(texts, y))

    def _predict_proba(self, texts):
        return sum(w * m.predict_proba(texts) for w, m in zip(self._weights, self.members_))

    def for_inference(self):
        self.members_ = [m.for_inference() for m in self.members_]
        return self

    def _save(self, path: Path):
        for i, m in enumerate(self.members_):
            m.save(path / "members" / f"{i}")
        (path / "members" / "index.json").write_text(json.dumps(self.options.members))

    def _load(self, path: Path):
        n = len(json.loads((path / "members" / "index.json").read_text()))
        self.members_ = [load_model(path / "members" / f"{i}") for i in range(n)]
