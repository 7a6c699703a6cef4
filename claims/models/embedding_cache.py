"""Sentence embeddings computed once per text and kept on disk, keyed by encoder and text hash."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from claims.util import atomic
from claims.models import encoder
from claims.models.distinct import each_once
from claims.util.paths import CACHE_DIR


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _encoder_dir(cache_dir: Path, name: str, pooling: str) -> Path:
    return cache_dir / "embeddings" / hashlib.sha256(encoder.encoder_id(name, pooling).encode()).hexdigest()[:12]


# Batches of 32 rather than 64 for the ONNX path: 3,000 training units, three runs of each, interleaved,
# on 2 cores: 177, 180 and 192 units/s at 32 against 173, 161 and 170 at 64 (16: 170, 201, 203, level
# with 32, which the packaged encoder predicts in). The first fold of `make run` embeds every unit.
ONNX_BATCH = 32


def compute(texts: list[str], batch_size: int = ONNX_BATCH, name: str = encoder.DEFAULT,
            pooling: str = "mean") -> np.ndarray:
    """L2-normalised embeddings through the encoder's export (kept under the cache folder; for a
    static encoder its vectors, else the ONNX network):
    the torch path's vectors within float rounding (max difference 3e-7 on 2,000 training units)
    at 3.6 times its speed on 2 cores (11 s against 40 s for those units)."""
    return _onnx(name, pooling, batch_size).embed(texts)


def compute_torch(texts: list[str], batch_size: int = 64, name: str = encoder.DEFAULT,
                  pooling: str = "mean") -> np.ndarray:
    """The reference: as sentence-transformers computes them with mean pooling. A static encoder has
    no network: its vectors are their own reference (training's cached export; a package predicts
    with the copy it carries, whatever the runtime)."""
    if encoder.SPECS[name].static:
        return compute(texts, name=name, pooling=pooling)
    import torch

    encoder.use_all_cores()
    tok, model = encoder.load_tokenizer(name), _model(name)
    order = np.argsort([len(t) for t in texts])  # similar lengths per batch: less padding
    out = np.zeros((len(texts), encoder.pooled_width(model.config.hidden_size, pooling)), dtype=np.float32)
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            idx = order[i:i + batch_size]
            enc = encoder.tokenize(tok, [texts[j] for j in idx], padding=True, truncation=True, max_length=256,
                                   return_tensors="pt")
            hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            out[idx] = encoder.pool(hidden, enc["attention_mask"], pooling).numpy()
    return out


_ONNX: dict = {}
# Part of the export folder's name: bump it when the export changes (opset, pooling code, MAX_LENGTH),
# so an export made by older code is not used for new embeddings.
EXPORT_VERSION = "1"


def _export_folder(name: str, pooling: str) -> Path:
    key = f"{encoder.encoder_id(name, pooling)}|export v{EXPORT_VERSION}"
    return CACHE_DIR / "onnx" / hashlib.sha256(key.encode()).hexdigest()[:12]


def _export_once(folder: Path, name: str, pooling: str, replace: bool = False) -> None:
    """Export into a staging folder beside `folder`, then move it in unless another process was
    first (its folder is kept, ours dropped), so a reader never sees the folder missing or half-built."""
    import tempfile

    from claims.models import onnx_encoder

    folder.parent.mkdir(parents=True, exist_ok=True)
    encoder._remove_stale_unpacks(folder.parent, pattern=".export-*")  # left by a killed export
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
    try:
        onnx_encoder.export(staging / "encoder", name, pooling)
        if replace and folder.exists():
            os.replace(folder, staging / "damaged")
        try:
            os.rename(staging / "encoder", folder)
        except OSError:
            if not onnx_encoder.present(folder):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def exported_encoder(name: str = encoder.DEFAULT, pooling: str = "mean") -> Path:
    """The export training embeds with (made, or made again, if it cannot be loaded): a package
    copies it, so it predicts with the very network its training vectors came from."""
    _onnx(name, pooling, ONNX_BATCH)
    return _export_folder(name, pooling)


def _onnx(name: str, pooling: str, batch_size: int):
    from claims.models import onnx_encoder

    folder = _export_folder(name, pooling)
    key = (folder, batch_size)
    if key not in _ONNX:
        if not onnx_encoder.present(folder):
            _export_once(folder, name, pooling, replace=folder.exists())  # a folder missing a file
        try:
            _ONNX[key] = onnx_encoder.open_export(folder, batch_size=batch_size)
        except Exception:  # noqa: BLE001 - onnxruntime, tokenizers and json raise their own types
            # A damaged export (a disk error, a hand edit): made again once, from the weights.
            _export_once(folder, name, pooling, replace=True)
            try:
                _ONNX[key] = onnx_encoder.open_export(folder, batch_size=batch_size)
            except Exception as e:  # noqa: BLE001
                raise RuntimeError(f"{folder}: the exported encoder cannot be loaded even after exporting it again "
                                   f"({type(e).__name__}); delete the folder and rerun") from e
    return _ONNX[key]


_MODELS: dict = {}
_READ: dict[Path, dict[str, np.ndarray]] = {}  # cache folder -> vectors already read by this process
MEMO_LIMIT = 200_000  # vectors per encoder kept in memory (300 MB at MiniLM's 384 floats)


def _model(name: str):
    if name not in _MODELS:
        _MODELS[name] = encoder.load_encoder(name).eval()
    return _MODELS[name]


def embed(texts: list[str], cache_dir: Path | None = CACHE_DIR, name: str = encoder.DEFAULT,
          pooling: str = "mean", torch: bool = False) -> np.ndarray:
    """`cache_dir`: where vectors are kept per text (None: nowhere). `torch`: the reference path
    (prediction from a package without its exported encoder, or `--runtime fp32`), which with
    `cache_dir=None` writes nothing; else the ONNX export, kept under CACHE_DIR/onnx whatever
    `cache_dir` is (about 90 MB per MiniLM variant and pooling, 420 MB for mpnet)."""
    def run(batch):
        return (compute_torch if torch else compute)(batch, name=name, pooling=pooling)

    if cache_dir is None or encoder.SPECS[name].static:  # static vectors cost less than reading a file
        return each_once(texts, run)
    folder = _encoder_dir(cache_dir, name, pooling)
    folder.mkdir(parents=True, exist_ok=True)
    keys = [_key(t) for t in texts]
    # Every fit of a run asks again for the same units: the files are read once per process.
    memo = _READ.setdefault(folder, {})
    found = {k: memo[k] for k in set(keys) if k in memo}
    found.update({k: np.load(folder / f"{k}.npy") for k in set(keys) - set(found) if (folder / f"{k}.npy").exists()})
    missing = sorted({(k, t) for k, t in zip(keys, texts) if k not in found})
    if missing:
        vectors = run([t for _, t in missing])
        for (k, _), v in zip(missing, vectors):
            with atomic.atomic_path(folder / f"{k}.npy") as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, v)
            found[k] = v
    if len(memo) + len(found) > MEMO_LIMIT:  # a long-lived process (a notebook, a sweep) keeps what it reads
        memo.clear()
    memo.update(found)
    return np.stack([found[k] for k in keys])
