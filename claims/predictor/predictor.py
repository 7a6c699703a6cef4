"""A trained model ready for new text: the family, its tuned thresholds and its label schema.

Everything comes from one folder (the `model/` artifacts of a run, or `artifacts/model` inside a
package), so prediction needs nothing else. Empty units get empty labels rather than being dropped,
so output rows always line up with input rows.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from claims.corpus.labelspace import LabelSpace
from claims.models.families.base import aligned_side_texts, loose_rows

# auto: the package's optimised path where it has one (ONNX encoder for families that read sentence
# embeddings, int8 network for finetune.v1); fp32: the torch reference.
Runtime = Literal["auto", "fp32", "onnx-int8", "onnx-encoder", "onnx-encoder-int8"]
REQUIRED_FILES = ("family.json", "thresholds.json", "schema.yaml", "config.yaml", "metrics.json", "data.json")
# Written for a model with a loose head: the thresholds of units without an opening (loose sentences),
# tuned on (a)'s held-out units predicted without theirs. A folder without it decides every unit by
# thresholds.json.
LOOSE_THRESHOLDS_FILE = "thresholds_loose.json"


class ModelFolderError(Exception):
    """A model folder that is missing or incomplete; says what is missing."""


@dataclass
class Prediction:
    decisions: np.ndarray  # units x columns, 0/1
    proba: np.ndarray  # units x columns; NaN for empty units
    truncated: int  # units cut to fit the model's input (alone, or with their previous unit for pair models)


class Predictor:
    def __init__(self, model, thresholds: np.ndarray, folder: Path, runtime: str = "fp32",
                 loose_thresholds: np.ndarray | None = None):
        self.model = model
        self.space: LabelSpace = model.space
        self.thresholds = thresholds
        self.loose_thresholds = loose_thresholds  # for units without an opening; None: `thresholds`
        self.folder = folder
        self.runtime = runtime
        self._onnx = None

    @classmethod
    def load(cls, folder: Path | str, runtime: Runtime = "auto") -> "Predictor":
        from claims.models.families.base import load_model

        from claims.models.families.sklearn_io import UntrustedFileError

        folder = resolve_model_folder(Path(folder))
        try:
            model = load_model(folder).for_inference()
        except UntrustedFileError as e:
            raise ModelFolderError(str(e)) from None
        except (OSError, ValueError, KeyError) as e:  # a truncated or corrupt part
            raise ModelFolderError(f"{folder}: corrupt model part: {type(e).__name__}: {e}") from None
        thresholds = _thresholds(folder / "thresholds.json", model.space)
        loose_file = folder / LOOSE_THRESHOLDS_FILE
        if model.has_loose_head and not loose_file.exists():
            raise ModelFolderError(f"{folder}: the model has a loose head but no {LOOSE_THRESHOLDS_FILE}")
        loose = _thresholds(loose_file, model.space) if loose_file.exists() else None
        predictor = cls(model, thresholds, folder, loose_thresholds=loose)
        from claims.models import onnx_encoder

        encoder_dir = folder / onnx_encoder.FOLDER
        # A static encoder has no network to run another way: every runtime but int8 reads its vectors.
        static = getattr(model, "reads_embeddings", False) and onnx_encoder.is_static(encoder_dir)
        if static and runtime in ("onnx-encoder-int8", "onnx-int8"):
            raise ModelFolderError(f"{folder}: runtime {runtime} asked for, but the package's encoder is static "
                                   "(no int8 network); use --runtime auto")
        # auto: the static int8 encoder where the package has one (packages made before it have not).
        int8 = runtime == "onnx-encoder-int8" or (runtime == "auto" and onnx_encoder.present(encoder_dir, int8=True))
        if runtime in ("onnx-encoder", "onnx-encoder-int8") and not onnx_encoder.present(encoder_dir, int8):
            raise ModelFolderError(f"{folder}: runtime {runtime} asked for, but {encoder_dir} lacks its files")
        if (static or runtime in ("auto", "onnx-encoder", "onnx-encoder-int8")) \
                and getattr(model, "reads_embeddings", False) and onnx_encoder.present(encoder_dir, int8):
            try:
                model.use_onnx_encoder(encoder_dir, int8)
            except Exception as e:  # onnxruntime, numpy and tokenizers raise their own types for damaged files
                raise ModelFolderError(f"{encoder_dir}: corrupt encoder: {type(e).__name__}: {e}") from None
            predictor.runtime = "static-encoder" if static else "onnx-encoder-int8" if int8 else "onnx-encoder"
        onnx_file = folder / "onnx" / "model.int8.onnx"
        if runtime == "onnx-int8" and not onnx_file.exists():
            raise ModelFolderError(f"{folder}: runtime onnx-int8 asked for, but onnx/model.int8.onnx is missing")
        if runtime in ("auto", "onnx-int8") and onnx_file.exists():
            from claims.models.families.onnx_runtime import OnnxRunner

            predictor._onnx = OnnxRunner(onnx_file, model, model.options.predict_batch_size)
            predictor.runtime = "onnx-int8"
        return predictor

    @property
    def max_tokens(self) -> int | None:
        # Only a family that reads tokens (finetune.v1) has an input limit, and it states it.
        return getattr(self.model, "max_tokens", None)

    def metadata(self) -> dict[str, Any]:
        return {name: json.loads((self.folder / name).read_text()) for name in ("metrics.json", "data.json")}

    def predict(self, texts: list[str], contexts: list[str] | None = None,
                openings: list[str] | None = None) -> Prediction:
        """Labels and probabilities per unit; `contexts[i]` is the unit before `texts[i]` in its
        article and `openings[i]` its article's opening (claims.corpus.opening), or "" (loose
        sentences have neither)."""
        texts = list(texts)
        contexts = aligned_side_texts(texts, contexts)
        openings = aligned_side_texts(texts, openings, "openings")
        n, c = len(texts), len(self.space)
        proba = np.full((n, c), np.nan)
        decisions = np.zeros((n, c), dtype=np.int8)
        keep = [i for i, t in enumerate(texts) if t is not None and str(t).strip()]
        truncated = 0
        if keep:
            kept = [str(texts[i]) for i in keep]
            kept_ctx = [str(contexts[i]) for i in keep]  # str: numpy and pandas strings
            kept_open = [str(openings[i]) for i in keep]
            truncated = self._count_truncated(kept, kept_ctx)
            if self._onnx:
                p = self.model.apply_constant(self._onnx.predict_proba(kept, kept_ctx).astype(np.float64))
            else:
                p = self.model.predict_proba(kept, kept_ctx, kept_open)
            proba[keep] = p
            decisions[keep] = self.space.decide(p, self.thresholds)
            if self.loose_thresholds is not None and len(loose := loose_rows(kept_open)):
                decisions[np.asarray(keep)[loose]] = self.space.decide(p[loose], self.loose_thresholds)
        if truncated:
            warnings.warn(f"{truncated} unit(s) were cut to fit the model's {self.max_tokens}-token input", stacklevel=2)
        return Prediction(decisions, proba, truncated)

    def _count_truncated(self, texts: list[str], contexts: list[str]) -> int:
        # Only a family that reads tokens (finetune.v1) can cut a unit; it knows what it cuts.
        counter = getattr(self.model, "count_truncated", None)
        return counter(texts, contexts) if counter else 0

    def labelled_rows(self, pred: Prediction) -> list[dict[str, Any]]:
        """Per unit: each task's labels and each column's probability (`p.<task>.<label>`)."""
        rows = []
        for k in range(len(pred.decisions)):
            row: dict[str, Any] = self.space.decode(pred.decisions[k])
            for j, name in enumerate(self.space.column_names):
                v = pred.proba[k, j]
                row[f"p.{name}"] = None if np.isnan(v) else round(float(v), 5)
            rows.append(row)
        return rows


def _thresholds(path: Path, space: LabelSpace) -> np.ndarray:
    raw = json.loads(path.read_text())
    missing = [c for c in space.column_names if not isinstance(raw, dict) or c not in raw]
    if missing:
        raise ModelFolderError(f"{path}: no threshold for {missing}")
    return np.array([raw[c] for c in space.column_names])


def resolve_model_folder(path: Path) -> Path:
    """Accept a package folder (with MLmodel) or a bare model folder; check nothing is missing."""
    if not path.exists():
        raise ModelFolderError(f"{path}: model folder does not exist")
    if (path / "MLmodel").exists():
        path = path / "artifacts" / "model"
        if not path.is_dir():
            raise ModelFolderError(f"{path}: the package has no artifacts/model folder")
    missing = [f for f in REQUIRED_FILES if not (path / f).exists()]
    if missing:
        raise ModelFolderError(f"{path}: not a complete model folder, missing {', '.join(missing)}")
    try:
        json.loads((path / "thresholds.json").read_text())
        json.loads((path / "family.json").read_text())
        if (path / LOOSE_THRESHOLDS_FILE).exists():
            json.loads((path / LOOSE_THRESHOLDS_FILE).read_text())
    except json.JSONDecodeError as e:
        raise ModelFolderError(f"{path}: corrupt model file: {e}") from None
    return path
