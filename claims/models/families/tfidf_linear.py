"""tfidf_linear.v1: TF-IDF n-grams (optionally typed mentions, the previous unit, negation scope and
the article's opening), a logistic
regression per label."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from claims.models.families import loose_head, sklearn_io
from claims.models.families.base import ClaimsModel
from claims.models.families.channels import ChannelOptions, Channels
from claims.models.families.linear_head import fit_head, make_head
from claims.models.options import ModelConfig


class TfidfLinearOptions(ModelConfig, ChannelOptions):
    name: Literal["tfidf_linear.v1"] = "tfidf_linear.v1"
    C: float = Field(default=4.0, gt=0)
    class_weight: Literal["balanced"] | None = "balanced"


class TfidfLinear(ClaimsModel):
    family_name = "tfidf_linear.v1"
    Options = TfidfLinearOptions

    @property
    def reads_openings(self) -> bool:
        return self.options.opening

    def _new_head(self):
        return make_head(self.options.C, self.options.class_weight, self.train_config.seed)

    def _fit(self, texts, y, contexts, openings=None):
        self.channels_ = Channels(self.options)
        X = self.channels_.fit_transform(texts, contexts, openings)
        self.head_ = fit_head(self._new_head(), X, y)
        self.loose_head_ = (loose_head.fit(self._new_head(), X, y, self.channels_.opening_columns())
                            if self.has_loose_head else None)

    def _predict_proba(self, texts, contexts, openings=None):
        X = self.channels_.transform(texts, contexts, openings)
        if not self.has_loose_head:
            return self.head_.predict_proba(X)
        return loose_head.predict_proba(self.head_, self.loose_head_, X, openings, self.channels_.opening_columns())

    def _save(self, path: Path):
        self.channels_.save(path)
        sklearn_io.dump(self.head_, path / "head.skops")
        loose_head.save(self.loose_head_, path)

    def _load(self, path: Path):
        self.channels_ = Channels(self.options).load(path)
        self.head_ = sklearn_io.load(path / "head.skops")
        self.loose_head_ = loose_head.load(path, self.has_loose_head)
