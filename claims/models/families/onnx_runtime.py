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

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.net(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return tuple(out[n] for n in names)

    # Segment ids are an input: a model that reads (unit, previous unit) pairs needs them.
    example = model.encode(["An example sentence.", "Another one"], ["", "A context."], padding=True,
                           return_tensors="pt")
    inputs = ["input_ids", "attention_mask", "token_type_ids"]
    fp32 = folder / ONNX_FP32
    torch.onnx.export(
        Flat(), tuple(example[k] for k in inputs), str(fp32),
        input_names=inputs, output_names=names,
        dynamic_axes={**{k: {0: "batch", 1: "seq"} for k in inputs}, **{n: {0: "batch"} for n in names}},
        opset_version=17, dynamo=False,
    )
    int8 = folder / ONNX_INT8
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    fp32.unlink()
    return int8


class OnnxRunner:
    """Runs the quantised network; same inputs and outputs as the torch path."""

    def __init__(self, path: Path, model, batch_size: int = 64):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, len(os.sched_getaffinity(0)))
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        # Files exported before segment ids were an input take two inputs.
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.model, self.space, self.batch_size = model, model.space, batch_size

    def predict_proba(self, texts: list[str], contexts: list[str] | None = None) -> np.ndarray:
        out = np.zeros((len(texts), len(self.space)), dtype=np.float32)
        contexts = contexts if contexts is not None else [""] * len(texts)
        slices = self.space.slices()
        order = np.argsort([len(t) for t in texts], kind="stable")
        for i in range(0, len(texts), self.batch_size):
            idx = order[i:i + self.batch_size]
            enc = self.model.encode([texts[j] for j in idx], [contexts[j] for j in idx], padding=True,
                                    return_tensors="np")
            logits = self.session.run(None, {k: enc[k].astype(np.int64) for k in self.inputs})
            for task, z in zip(self.space.tasks(), logits):
                if task.type == "multiclass":
                    e = np.exp(z - z.max(1, keepdims=True))
                    p = e / e.sum(1, keepdims=True)
                else:
                    p = 1.0 / (1.0 + np.exp(-z))
                out[idx, slices[task.name]] = p
        return out
