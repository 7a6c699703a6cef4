"""The contract every family follows: fit returns self, predict_proba, save and load.

Output is one probability per column of the label space (see `LabelSpace`). A column with no
positive example (or no negative one) in the training data is not learned: it predicts its base
rate, with a warning, so a small training fold never crashes a run.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np

from claims.models.options import ModelConfig, TrainConfig
from claims.corpus.labelspace import LabelSpace
from claims.corpus.schema import Schema

log = logging.getLogger(__name__)
FAMILY_FILE = "family.json"


class ConstantLabelWarning(UserWarning):
    """A label had only one class in the training data; it predicts its base rate."""


class ClaimsModel:
    family_name: ClassVar[str]
    Options: ClassVar[type[ModelConfig]]
    stochastic: ClassVar[bool] = False  # whether results depend on the seed
    # Whether `_fit` takes each unit's article (for inner splits); a swapped copy's group is its
    # article's, marked (claims.corpus.augment.article_of, is_copy).
    reads_groups: ClassVar[bool] = False

    def __init__(self, options: ModelConfig, train: TrainConfig, space: LabelSpace):
        self.options = options
        self.train_config = train
        self.space = space
        self.constant_: dict[int, float] = {}
        self.history_: list[float] = []  # training loss per epoch, where a family has epochs
        # Progress hooks, set by whoever drives training; never saved.
        self.on_epoch: Callable[[int, float], None] | None = None
        self.on_fit_end: Callable[[], None] | None = None

    @property
    def reads_openings(self) -> bool:
        """Whether `_fit` and `_predict_proba` take each unit's article opening (claims.corpus.opening)."""
        return False

    @property
    def has_loose_head(self) -> bool:
        """Whether units without an opening get a model of their own (claims.models.families.loose_head),
        which then needs thresholds of its own. The option lives with the opening's (ChannelOptions)."""
        return self.reads_openings and getattr(self.options, "loose_head", False)

    # -- the contract -------------------------------------------------------------------------
    def fit(self, texts: list[str], y: np.ndarray, contexts: list[str] | None = None,
            groups: list[str] | None = None, openings: list[str] | None = None) -> "ClaimsModel":
        """Learn from units and their labels; `contexts[i]` is the unit before `texts[i]` in its
        article ("" for the first unit and for loose sentences), `groups[i]` its article, `openings[i]`
        its article's opening ("" for loose sentences). Families that read no context or opening
        ignore them; without groups, a family that splits by article takes each run of units chained
        by their contexts as one article."""
        y = np.asarray(y)
        if y.shape != (len(texts), len(self.space)):
            raise ValueError(f"y has shape {y.shape}, expected {(len(texts), len(self.space))}")
        rates = y.mean(axis=0)
        self.constant_ = {j: float(r) for j, r in enumerate(rates) if r in (0.0, 1.0)}
        for j in self.constant_:
            warnings.warn(f"label {self.space.column_names[j]} has {'no positive' if rates[j] == 0 else 'no negative'} "
                          f"example in the training data: predicting its base rate", ConstantLabelWarning, stacklevel=2)
        ctx = aligned_side_texts(texts, contexts)
        extra = {"openings": aligned_side_texts(texts, openings, "openings")} if self.reads_openings else {}
        if self.reads_groups:
            extra["groups"] = _groups(texts, ctx, groups)
        self._fit(list(texts), y, ctx, **extra)
        if self.on_fit_end:
            self.on_fit_end()
        return self

    def predict_proba(self, texts: list[str], contexts: list[str] | None = None,
                      openings: list[str] | None = None) -> np.ndarray:
        extra = {"openings": aligned_side_texts(texts, openings, "openings")} if self.reads_openings else {}
        proba = np.asarray(self._predict_proba(list(texts), aligned_side_texts(texts, contexts), **extra),
                           dtype=np.float64).reshape(len(texts), len(self.space))
        return self.apply_constant(proba)

    def apply_constant(self, proba: np.ndarray) -> np.ndarray:
        """Columns not learned (one class only in training) predict their base rate, whatever the runtime."""
        for j, rate in self.constant_.items():
            proba[:, j] = rate
        return proba

    def save(self, path: Path | str) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "family": self.family_name,
            "options": self.options.model_dump(mode="json"),
            "train": self.train_config.model_dump(mode="json"),
            "schema": self.space.schema.model_dump(mode="json"),
            "constant": {str(k): v for k, v in self.constant_.items()},
            "history": self.history_,
        }
        (path / FAMILY_FILE).write_text(json.dumps(meta, indent=1))
        self._save(path)

    @classmethod
    def load(cls, path: Path | str) -> "ClaimsModel":
        return load_model(path)

    def for_inference(self) -> "ClaimsModel":
        """Switch off what only helps training (caches keyed by training text); returns self."""
        return self

    # -- what a family implements ------------------------------------------------------------
    def _fit(self, texts: list[str], y: np.ndarray, contexts: list[str]) -> None:
        raise NotImplementedError

    def _predict_proba(self, texts: list[str], contexts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _save(self, path: Path) -> None:
        raise NotImplementedError

    def _load(self, path: Path) -> None:
        raise NotImplementedError


def loose_rows(openings: list[str]) -> np.ndarray:
    """Indices of the units without an opening (loose sentences)."""
    return np.asarray([i for i, o in enumerate(openings) if not o.strip()], dtype=int)


def aligned_side_texts(texts: list[str], contexts: Iterable[str] | None, what: str = "contexts") -> list[str]:
    """Per-unit side texts (contexts, openings) checked against the units; none given is "" each."""
    if contexts is None:
        return [""] * len(texts)
    contexts = list(contexts)
    if len(contexts) != len(texts):
        raise ValueError(f"{len(contexts)} {what} for {len(texts)} texts")
    return [c or "" for c in contexts]


def _groups(texts: list[str], contexts: list[str], groups: list[str] | None) -> list[str]:
    if groups is not None:
        if len(groups) != len(texts):
            raise ValueError(f"{len(groups)} groups for {len(texts)} texts")
        return [str(g) for g in groups]
    out, k = [], -1
    for i, c in enumerate(contexts):
        if not c or i == 0 or c != texts[i - 1]:
            k += 1
        out.append(f"chain{k}")
    return out


def build(options: ModelConfig, train: TrainConfig, schema: Schema) -> ClaimsModel:
    from claims.models import registry

    return registry.get(options.name)(options, train, LabelSpace(schema))


def load_model(path: Path | str) -> ClaimsModel:
    """Load any family from a folder written by `save`; it needs nothing outside the folder."""
    from claims.models import registry

    path = Path(path)
    try:
        meta: dict[str, Any] = json.loads((path / FAMILY_FILE).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not a saved model ({FAMILY_FILE} is missing)") from None
    cls = registry.get(meta["family"])
    model = cls(cls.Options.model_validate(meta["options"]), TrainConfig.model_validate(meta["train"]),
                LabelSpace(Schema.model_validate(meta["schema"])))
    model.constant_ = {int(k): v for k, v in meta["constant"].items()}
    model.history_ = meta.get("history", [])
    model._load(path)
    return model
