"""The option types a family declares: the base of every family's options and the training knobs.

They live with the models, not with the experiment config, so a family can declare its options
without importing the config that validates them (the config asks the registry for them instead).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(Strict):
    """Base of every family's options; `name` picks the family in the registry."""

    name: str

    def unavailable(self) -> dict[str, str]:
        """What this machine lacks for these options, {field: why}: checked before any config trains."""
        return {}


class TrainConfig(Strict):
    epochs: int = Field(default=4, ge=1)
    batch_size: int = Field(default=16, ge=1)
    learning_rate: float = Field(default=1e-4, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    max_length: int = Field(default=128, ge=8)
    seed: int = 13
