"""The frozen sentence encoder exported to ONNX, for prediction without torch or transformers.

A package whose family reads sentence embeddings (embed_linear.v1, ensemble.v1 with embeddings)
carries `encoder/encoder.onnx` (the encoder network with its pooling and normalisation, fp32) and
`encoder/tokenizer.json`. Prediction then imports onnxruntime and tokenizers only: cold start drops
by seconds, and the embeddings equal the torch path's within float rounding (about 1e-7), so the
labels are the same. Training embeds through the same export (kept under .cache/onnx, its
vectors cached on disk per text); the torch path stays the reference (`--runtime fp32`).

`claims package --int8-encoder` also writes `encoder/encoder.int8.onnx`, a static int8 copy (fixed activation scales
calibrated on training units, so a unit's embedding does not depend on what else is in its batch;
dynamic quantisation computes scales per batch and changed 19 of 2,055 labels between batch 1 and
a whole article). The feed-forward output projections stay fp32: quantising them too took the
label agreement with fp32 on the test split from 99.6% to 98.9%. Where a package has it, prediction
uses it unless told otherwise (`--runtime onnx-encoder`).

A static encoder (`minilm-l6-static`, claims.models.static_encoder) exports to the same folder layout
with `static.npy` in place of the network; `present` and `open_export` take either.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from claims.util import atomic

from claims.models.export_layout import FOLDER, INFO_FILE, MAX_LENGTH, TOKENIZER_FILE  # noqa: F401 - re-exported

ONNX_FILE = "encoder.onnx"
INT8_FILE = "encoder.int8.onnx"


def export(folder: Path, name: str | None = None, pooling: str = "mean") -> Path:
    """Write `folder/encoder.onnx`, `tokenizer.json` and `encoder.json`; returns `folder`."""
    import torch

    from claims.models import encoder

    name = name or encoder.DEFAULT
    if encoder.SPECS[name].static:
        from claims.models import static_encoder

        encoder.check_pooling(name, pooling)
        return static_encoder.export(folder, name)
    folder.mkdir(parents=True, exist_ok=True)
    # A fresh instance: exporting must not touch the one the embedding cache computes with.
    network = encoder.load_encoder(name).eval()
    tokenizer = encoder.load_tokenizer(name)

    class Pooled(torch.nn.Module):
        """Token ids and mask in, normalised mean-pooled sentence embeddings out."""

        def __init__(self):
            super().__init__()
            self.network = network

        def forward(self, input_ids, attention_mask):
            hidden = self.network(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return encoder.pool(hidden, attention_mask, pooling)

    example = tokenizer(["An example sentence.", "A second, longer example sentence here."],
                        padding=True, return_tensors="pt")
    width = encoder.pooled_width(network.config.hidden_size, pooling)
    # Files first, the network last: `present` asks for both, so a crash leaves no usable half.
    shutil.copyfile(encoder.encoder_path(name) / TOKENIZER_FILE, folder / TOKENIZER_FILE)
    atomic.write_text(folder / INFO_FILE, json.dumps({
        "encoder": encoder.encoder_id(name, pooling), "max_length": MAX_LENGTH, "dimension": width,
        "pad_token": tokenizer.pad_token, "pad_id": tokenizer.pad_token_id}))
    # The tracer warns about Python branches in the attention code (constant for a model given an
    # attention mask) and about index ops (no negative indices here); the export's embeddings are
    # checked against torch in tests/test_batch_invariance.py, so the warnings only add noise.
    with atomic.atomic_path(folder / ONNX_FILE) as tmp, torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Pooled().eval(), (example["input_ids"], example["attention_mask"]), str(tmp),
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                          "embedding": {0: "batch"}},
            opset_version=17, dynamo=False,
        )
    return folder


def _tokenizer(folder: Path, info: dict, max_length: int, pad_to: int | None = None):
    """The package's tokenizer, cut at `max_length` and padded to the longest unit (or to `pad_to`)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    # The file pads and truncates to 128; the torch path pads to the longest unit and cuts at 256.
    tokenizer.enable_truncation(max_length)
    # Packages exported before encoder.json named its padding hold MiniLM, whose pad is [PAD] = 0.
    tokenizer.enable_padding(pad_id=int(info.get("pad_id", 0)), pad_token=info.get("pad_token", "[PAD]"),
                             length=pad_to)
    return tokenizer


def is_static(folder: Path) -> bool:
    """A static export: its vectors file and its info file's flag agree (a stray file is not enough)."""
    from claims.models.static_encoder import STATIC_FILE

    if not (folder / STATIC_FILE).is_file():
        return False
    try:
        return bool(json.loads((folder / INFO_FILE).read_text()).get("static"))
    except (OSError, ValueError):
        return False


def present(folder: Path, int8: bool = False) -> bool:
    """A complete export: the network (or a static encoder's vectors, which have no int8 copy), the
    tokenizer and the info file."""
    from claims.models.static_encoder import STATIC_FILE

    network = STATIC_FILE if is_static(folder) and not int8 else (INT8_FILE if int8 else ONNX_FILE)
    return all((folder / f).is_file() for f in (network, TOKENIZER_FILE, INFO_FILE))


def open_export(folder: Path, batch_size: int = 32, int8: bool = False):
    """The encoder an export folder holds: an `OnnxEncoder`, or a `StaticEncoder` for static vectors."""
    if is_static(folder) and not int8:
        from claims.models.static_encoder import StaticEncoder

        return StaticEncoder(folder)
    return OnnxEncoder(folder, batch_size=batch_size, int8=int8)


# Calibration batches padded to one shape (the histogram calibrators need it; MinMax, used here, does
# not); news sentences are short, and this setting is what the measured agreement was obtained with.
CALIBRATION_LENGTH = 64


def quantize(folder: Path, calibration: list[str]) -> Path:
    """Write `folder/encoder.int8.onnx` from `folder/encoder.onnx`, calibrated on `calibration`."""
    import tempfile

    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    info = json.loads((folder / INFO_FILE).read_text())
    tokenizer = _tokenizer(folder, info, CALIBRATION_LENGTH, pad_to=CALIBRATION_LENGTH)
    batches = []
    for i in range(0, len(calibration), 16):
        encoded = tokenizer.encode_batch(calibration[i:i + 16])
        batches.append({"input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                        "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64)})

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.rest = iter(batches)

        def get_next(self):
            return next(self.rest, None)

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(folder / ONNX_FILE), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared)).graph
        weights = {w.name for w in graph.initializer}
        # Projections by a weight matrix only (not attention's activation products), and not the
        # feed-forward outputs, whose inputs have the outliers int8 loses most on.
        nodes = [n.name for n in graph.node if n.op_type == "MatMul" and any(i in weights for i in n.input)
                 and not ("/output/dense" in n.name and "attention" not in n.name)]
        # Which units set the scales, so a package says what its int8 encoder was calibrated on.
        digest = hashlib.sha256("\n".join(calibration).encode("utf-8", "replace")).hexdigest()[:16]
        atomic.write_text(folder / INFO_FILE, json.dumps({**info, "int8_calibration": {
            "units": len(calibration), "sha256_16": digest, "max_tokens": CALIBRATION_LENGTH}}))
        with atomic.atomic_path(folder / INT8_FILE) as out:
            quantize_static(str(prepared), str(out), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_quantize=nodes, calibrate_method=CalibrationMethod.MinMax)
    return folder


class OnnxEncoder:
    """Embeds like `embedding_cache.compute_torch`: length-sorted batches, each distinct text once."""

    def __init__(self, folder: Path, batch_size: int = 32, int8: bool = False):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, len(os.sched_getaffinity(0)))
        opts.inter_op_num_threads = 1
        info = json.loads((folder / INFO_FILE).read_text())
        self.session = ort.InferenceSession(str(folder / (INT8_FILE if int8 else ONNX_FILE)), opts,
                                            providers=["CPUExecutionProvider"])
        self.dimension = int(info.get("dimension") or self.session.get_outputs()[0].shape[1])
        self.tokenizer = _tokenizer(folder, info, int(info["max_length"]))
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        from claims.models.distinct import each_once

        return each_once(texts, self._embed_distinct)

    def _embed_distinct(self, distinct: list[str]) -> np.ndarray:
        out = np.zeros((len(distinct), self.dimension), dtype=np.float32)
        order = np.argsort([len(t) for t in distinct], kind="stable")
        for i in range(0, len(distinct), self.batch_size):
            idx = order[i:i + self.batch_size]
            batch = self.tokenizer.encode_batch([distinct[j] for j in idx])
            feed = {"input_ids": np.array([e.ids for e in batch], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask for e in batch], dtype=np.int64)}
            out[idx] = self.session.run(None, feed)[0]
        return out
