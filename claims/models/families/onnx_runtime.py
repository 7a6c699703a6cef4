"""The optimised CPU runtime of finetune.v1: the network exported to ONNX, int8 dynamic quantisation.

Dynamic quantisation stores the Linear weights as int8 and quantises activations on the fly, which
is where a small BERT spends its time on CPU. The fp32 torch path stays as the reference.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

ONNX_FP32 = "model.fp32.onnx"
ONNX_INT8 = "model.int8.onnx"


def export(model, folder: Path) -> Path:
    """Write `folder/model.int8.onnx` from a fitted finetune.v1 model; returns its path."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder.mkdir(parents=True, exist_ok=True)
    net = model.net_.eval()
    names = [t.name for t in model.space.tasks()]

    class Flat(torch.nn.Module):
        """ONNX wants tensors out, not a dict: task logits in schema order."""

        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, input_ids, attention_mask):
            out = self.net(input_ids=input_ids, attention_mask=attention_mask)
            return tuple(out[n] for n in names)

    example = model.tokenizer_(["An example sentence.", "Another one"], padding=True, return_tensors="pt")
    fp32 = folder / ONNX_FP32
    torch.onnx.export(
        Flat(), (example["input_ids"], example["attention_mask"]), str(fp32),
        input_names=["input_ids", "attention_mask"], output_names=names,
        dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                      **{n: {0: "batch"} for n in names}},
        opset_version=17, dynamo=False,
    )
    int8 = folder / ONNX_INT8
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    fp32.unlink()
    return int8


class OnnxRunner:
    """Runs the quantised network; same inputs and outputs as the torch path."""

    def __init__(self, path: Path, space, tokenizer, max_length: int, batch_size: int = 64):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, len(os.sched_getaffinity(0)))
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.space, self.tokenizer, self.max_length, self.batch_size = space, tokenizer, max_length, batch_size

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        from claims.models.encoder import tokenize  # the tokenizer is the model's, shared

        out = np.zeros((len(texts), len(self.space)), dtype=np.float32)
        slices = self.space.slices()
        order = np.argsort([len(t) for t in texts], kind="stable")
        for i in range(0, len(texts), self.batch_size):
            idx = order[i:i + self.batch_size]
            enc = tokenize(self.tokenizer, [texts[j] for j in idx], padding=True, truncation=True,
                           max_length=self.max_length, return_tensors="np")
            logits = self.session.run(None, {"input_ids": enc["input_ids"].astype(np.int64),
                                             "attention_mask": enc["attention_mask"].astype(np.int64)})
            for task, z in zip(self.space.tasks(), logits):
                if task.type == "multiclass":
                    e = np.exp(z - z.max(1, keepdims=True))
                    p = e / e.sum(1, keepdims=True)
                else:
                    p = 1.0 / (1.0 + np.exp(-z))
                out[idx, slices[task.name]] = p
        return out
