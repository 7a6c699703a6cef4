"""tfidf_linear.v1: TF-IDF word and character n-grams, a logistic regression per label."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline

from claims.models.options import ModelConfig
from claims.models.families import sklearn_io
from claims.models.families.base import ClaimsModel
from claims.models.families.linear_head import fit_head, make_head


class TfidfLinearOptions(ModelConfig):
    name: Literal["tfidf_linear.v1"] = "tfidf_linear.v1"
    C: float = Field(default=4.0, gt=0)
    class_weight: Literal["balanced"] | None = "balanced"
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    min_df: int = Field(default=1, ge=1)
    sublinear_tf: bool = True


def tfidf_features(o: TfidfLinearOptions) -> FeatureUnion:
    """Word and character n-gram TF-IDF, shared with ensemble.v1."""
    return FeatureUnion([
        ("word", TfidfVectorizer(ngram_range=o.word_ngrams, min_df=o.min_df, sublinear_tf=o.sublinear_tf,
                                 lowercase=True)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=o.char_ngrams, min_df=o.min_df,
                                 sublinear_tf=o.sublinear_tf, lowercase=True)),
    ])


class TfidfLinear(ClaimsModel):
    family_name = "tfidf_linear.v1"
    Options = TfidfLinearOptions

    def _pipeline(self) -> Pipeline:
        o = self.options
        return Pipeline([("features", tfidf_features(o)),
                         ("clf", make_head(o.C, o.class_weight, self.train_config.seed))])

    def _fit(self, texts, y, contexts):
        self.pipeline_ = self._pipeline()
        X = self.pipeline_.named_steps["features"].fit_transform(texts)
        fit_head(self.pipeline_.named_steps["clf"], X, y)

    def _predict_proba(self, texts, contexts):
        return self.pipeline_.predict_proba(texts)

    def _save(self, path: Path):
        sklearn_io.dump(self.pipeline_, path / "pipeline.skops")

    def _load(self, path: Path):
        self.pipeline_ = sklearn_io.load(path / "pipeline.skops")
