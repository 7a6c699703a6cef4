"""embed_linear.v1: frozen sentence embeddings (MiniLM by default), a logistic regression per label."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from claims.models.encoder import DEFAULT, EncoderName, Pooling, check_pooling
from claims.models.options import ModelConfig
from claims.models.families import sklearn_io
from claims.models.families.base import ClaimsModel
from claims.models.families.linear_head import fit_head, make_head


class EmbedLinearOptions(ModelConfig):
    name: Literal["embed_linear.v1"] = "embed_linear.v1"
    C: float = Field(default=2.0, gt=0)
    class_weight: Literal["balanced"] | None = "balanced"
    cache: bool = Field(default=True, description="Keep embeddings on disk under .cache/embeddings.")
    encoder: EncoderName = Field(default=DEFAULT, description="Which wheel-shipped sentence encoder.")
    pooling: Pooling = Field(default="mean", description="Token states to sentence vector: mean, cls "
                                                         "(first token) or mean_max (both, twice as wide).")

    @model_validator(mode="after")
    def _pooling_fits_encoder(self):
        check_pooling(self.encoder, self.pooling)
        return self

    def unavailable(self) -> dict[str, str]:
        from claims.models import encoder

        return {"encoder": why} if (why := encoder.missing(self.encoder)) else {}


class EmbedLinear(ClaimsModel):
    family_name = "embed_linear.v1"
    Options = EmbedLinearOptions

    reads_embeddings = True

    @property
    def embedding_settings(self) -> tuple[str, str]:
        return self.options.encoder, self.options.pooling
    onnx_ = None  # an OnnxEncoder once `use_onnx_encoder` is called (packaged models, prediction only)
    inference_ = False

    def _embed(self, texts):
        if self.onnx_ is not None:
            return self.onnx_.embed(list(texts))
        from claims.models import embedding_cache

        return embedding_cache.embed(texts, cache_dir=embedding_cache.CACHE_DIR if self.options.cache else None,
                                     name=self.options.encoder, pooling=self.options.pooling,
                                     torch=self.inference_)

    def use_onnx_encoder(self, folder: Path, int8: bool = False) -> "EmbedLinear":
        """Embed with the exported encoder in `folder` (see claims.models.onnx_encoder) from now on."""
        from claims.models.onnx_encoder import open_export

        self.onnx_ = open_export(folder, int8=int8)
        return self

    def for_inference(self):
        # New text is rarely seen twice: caching it would only fill the disk. A package is read-only:
        # without its own exported encoder it embeds on the torch path, which writes nothing.
        self.options = self.options.model_copy(update={"cache": False})
        self.inference_ = True
        return self

    def _fit(self, texts, y, contexts):
        self.head_ = fit_head(make_head(self.options.C, self.options.class_weight, self.train_config.seed),
                              self._embed(texts), y)

    def _predict_proba(self, texts, contexts):
        return self.head_.predict_proba(self._embed(texts))

    def _save(self, path: Path):
        from claims.models import encoder

        (path / "encoder.txt").write_text(encoder.encoder_id(self.options.encoder, self.options.pooling) + "\n")
        sklearn_io.dump(self.head_, path / "head.skops")

    def _load(self, path: Path):
        self.head_ = sklearn_io.load(path / "head.skops")
