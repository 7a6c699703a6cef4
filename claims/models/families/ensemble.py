"""ensemble.v1: learned features and the rules together, one logistic regression per label.

Features: TF-IDF word and character n-grams, frozen sentence embeddings (MiniLM by default), and the rules.v1
cue indicators (one per output column). The regression learns how far to trust each cue from the
training data; on unseen wording, where the n-grams know nothing, the cues carry the decision.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from scipy import sparse

from claims.models.encoder import DEFAULT, EncoderName, Pooling, check_pooling
from claims.models.options import ModelConfig
from claims.models.families import loose_head, sklearn_io
from claims.models.families.base import ClaimsModel, load_model
from claims.models.families.linear_head import fit_head, make_head
from claims.models.families.channels import CANONICAL_FILE, ChannelOptions, Channels, TypedMentions

Feature = Literal["tfidf", "embeddings", "rules"]


class EnsembleOptions(ModelConfig, ChannelOptions):
    name: Literal["ensemble.v1"] = "ensemble.v1"
    features: list[Feature] = Field(default=["tfidf", "embeddings", "rules"], min_length=1)
    C: float = Field(default=2.0, gt=0)
    class_weight: Literal["balanced"] | None = "balanced"
    rules_weight: float = Field(default=1.0, gt=0, description="Scale of the 0/1 cue indicators.")
    context_embeddings: float = Field(
        default=0.0, ge=0, description="Weight of the previous unit's sentence embedding as extra features "
                                       "(0: none). A unit without a previous one gets zeros.")
    encoder: EncoderName = Field(default=DEFAULT, description="Sentence encoder of the embeddings feature.")
    pooling: Pooling = Field(default="mean", description="Pooling of the embeddings feature (see embed_linear.v1).")
    canonical_mentions: bool = Field(
        default=False, description="Before any feature, write every gazetteer actor as its type's first "
                                   "actor and every place as its kind's first place, so no feature can "
                                   "tell one listed army, group or town from another.")

    @model_validator(mode="after")
    def _pooling_fits_encoder(self):
        check_pooling(self.encoder, self.pooling)
        return self

    @model_validator(mode="after")
    def _opening_needs_tfidf(self):
        # The opening is a channel of the tfidf feature; without it the option would do nothing.
        if self.opening and "tfidf" not in self.features:
            raise ValueError("opening: true needs the tfidf feature (the opening is one of its channels)")
        return self

    def unavailable(self) -> dict[str, str]:
        from claims.models import encoder

        # Without the embeddings feature the encoder is never loaded.
        if "embeddings" in self.features and (why := encoder.missing(self.encoder)):
            return {"encoder": why}
        return {}


class Ensemble(ClaimsModel):
    family_name = "ensemble.v1"
    Options = EnsembleOptions

    def _parts(self):
        from claims.models import registry

        parts = {}
        if "tfidf" in self.options.features:
            parts["tfidf"] = registry.get("tfidf_linear.v1")(registry.options_class("tfidf_linear.v1")(),
                                                             self.train_config, self.space)
        if "embeddings" in self.options.features:
            options = registry.options_class("embed_linear.v1")(encoder=self.options.encoder,
                                                                pooling=self.options.pooling)
            parts["embeddings"] = registry.get("embed_linear.v1")(options, self.train_config, self.space)
        if "rules" in self.options.features:
            parts["rules"] = registry.get("rules.v1")(registry.options_class("rules.v1")(),
                                                      self.train_config, self.space)
        return parts

    @property
    def reads_openings(self) -> bool:
        # The validator refuses opening without tfidf, but model_copy(update=...) skips validators.
        return self.options.opening and "tfidf" in self.options.features

    def _features(self, texts, contexts, openings=None, fit: bool = False):
        if self.options.canonical_mentions:
            if fit:
                self.canonical_ = TypedMentions.canonical_from_gazetteer()
            texts = [self.canonical_.mask(t) for t in texts]
            contexts = [self.canonical_.mask(c) for c in contexts]
            openings = [self.canonical_.mask(o) for o in openings] if openings is not None else None
        blocks = []
        if "tfidf" in self.parts_:
            if fit:
                self.channels_ = Channels(self.options)
                blocks.append(self.channels_.fit_transform(texts, contexts, openings))
            else:
                blocks.append(self.channels_.transform(texts, contexts, openings))
        if "embeddings" in self.parts_:
            blocks.extend(sparse.csr_matrix(b) for b in self._embeddings(texts, contexts))
        if "rules" in self.parts_:
            blocks.append(sparse.csr_matrix(self.parts_["rules"].fired(texts) * self.options.rules_weight))
        return sparse.hstack(blocks).tocsr()

    def _embeddings(self, texts, contexts) -> list:
        """The units' embeddings and, with `context_embeddings`, their previous units' (zeros where
        there is none). In an article the previous unit is itself a unit, so both come from one
        call that embeds each distinct text once."""
        import numpy as np

        embed = self.parts_["embeddings"]._embed
        if self.options.context_embeddings <= 0:
            return [embed(texts)]
        present = [i for i, c in enumerate(contexts) if c.strip()]
        vectors = embed(list(texts) + [contexts[i] for i in present])
        previous = np.zeros((len(texts), vectors.shape[1]), dtype=vectors.dtype)
        previous[present] = vectors[len(texts):]
        return [vectors[:len(texts)], previous * self.options.context_embeddings]

    def _new_head(self):
        return make_head(self.options.C, self.options.class_weight, self.train_config.seed)

    def _fit(self, texts, y, contexts, openings=None):
        self.parts_ = self._parts()
        if "rules" in self.parts_:
            self.parts_["rules"].prepare()
        X = self._features(texts, contexts, openings, fit=True)
        self.head_ = fit_head(self._new_head(), X, y)
        # The tfidf block comes first, so the opening's columns are where Channels puts them.
        self.loose_head_ = (loose_head.fit(self._new_head(), X, y, self.channels_.opening_columns())
                            if self.has_loose_head else None)

    def _predict_proba(self, texts, contexts, openings=None):
        X = self._features(texts, contexts, openings)
        if not self.has_loose_head:
            return self.head_.predict_proba(X)
        return loose_head.predict_proba(self.head_, self.loose_head_, X, openings, self.channels_.opening_columns())

    def for_inference(self):
        for name in ("embeddings", "rules"):
            if name in self.parts_:
                self.parts_[name].for_inference()
        return self

    def use_onnx_encoder(self, folder: Path, int8: bool = False) -> "Ensemble":
        if "embeddings" in self.parts_:
            self.parts_["embeddings"].use_onnx_encoder(folder, int8)
        return self

    @property
    def reads_embeddings(self) -> bool:
        return "embeddings" in self.options.features

    @property
    def embedding_settings(self) -> tuple[str, str]:
        return self.options.encoder, self.options.pooling

    def _save(self, path: Path):
        sklearn_io.dump(self.head_, path / "head.skops")
        loose_head.save(self.loose_head_, path)
        if self.options.canonical_mentions:
            (path / CANONICAL_FILE).write_text(json.dumps(self.canonical_.tokens, ensure_ascii=False, indent=0))
        if "tfidf" in self.parts_:
            self.channels_.save(path, prefix="tfidf.")
        if "rules" in self.parts_:
            self.parts_["rules"].save(path / "rules")

    def _load(self, path: Path):
        self.parts_ = self._parts()
        self.head_ = sklearn_io.load(path / "head.skops")
        self.loose_head_ = loose_head.load(path, self.has_loose_head)
        if self.options.canonical_mentions:
            self.canonical_ = TypedMentions(json.loads((path / CANONICAL_FILE).read_text()))
        if "tfidf" in self.parts_:
            self.channels_ = Channels(self.options).load(path, prefix="tfidf.")
        if "rules" in self.parts_:
            self.parts_["rules"] = load_model(path / "rules")
