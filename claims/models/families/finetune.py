"""finetune.v1: MiniLM fine-tuned end to end as one multi-task model.

One shared encoder with mean pooling, one linear head per task: sigmoid with binary cross-entropy
for multilabel and binary tasks (positive weights for rare labels), softmax with cross-entropy for
multiclass ones. Saved as safetensors plus the tokenizer and encoder config as JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from claims.models.encoder import tokenize  # the fitted tokenizer is shared across request threads
from claims.models.options import ModelConfig
from claims.models.families.base import ClaimsModel


class FinetuneOptions(ModelConfig):
    name: Literal["finetune.v1"] = "finetune.v1"
    dropout: float = Field(default=0.1, ge=0, lt=1)
    max_pos_weight: float = Field(default=10.0, ge=1, description="Cap on the positive weight of rare labels.")
    predict_batch_size: int = Field(default=64, ge=1)
    head_learning_rate: float | None = Field(
        default=None, gt=0, description="Learning rate of the new task heads (default: train.learning_rate).")
    freeze_embeddings: bool = Field(
        default=True, description="Keep the word-embedding matrix (half the weights) fixed: faster, less overfitting.")


def _network(space, dropout: float, encoder=None):
    import torch
    from torch import nn

    from claims.models import encoder as enc

    class MultiTask(nn.Module):
        def __init__(self, backbone):
            super().__init__()
            self.encoder = backbone
            self.dropout = nn.Dropout(dropout)
            hidden = backbone.config.hidden_size
            self.heads = nn.ModuleDict({t.name: nn.Linear(hidden, len(t.columns)) for t in space.tasks()})

        def forward(self, input_ids, attention_mask, **kw) -> dict[str, torch.Tensor]:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kw)
            pooled = self.dropout(enc.mean_pool(out.last_hidden_state, attention_mask))
            return {name: head(pooled) for name, head in self.heads.items()}

    return MultiTask(encoder if encoder is not None else enc.load_encoder())


def _length_grouped_batches(lengths: list[int], batch_size: int, gen) -> list[list[int]]:
    """Shuffled batches of similar lengths: shuffle, sort within chunks of a few batches, shuffle batches.

    Padding to the longest sentence of a random batch wastes most of the compute on short news
    sentences; grouping keeps the randomness of SGD while padding little.
    """
    import torch

    order = torch.randperm(len(lengths), generator=gen).tolist()
    chunk = batch_size * 8
    batches = []
    for c in range(0, len(order), chunk):
        part = sorted(order[c:c + chunk], key=lambda j: lengths[j])
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]


class Finetune(ClaimsModel):
    family_name = "finetune.v1"
    Options = FinetuneOptions
    stochastic = True

    def _fit(self, texts, y, contexts):
        import torch
        from transformers import get_linear_schedule_with_warmup

        from claims.models import encoder

        encoder.use_all_cores()
        tc = self.train_config
        torch.manual_seed(tc.seed)
        self.tokenizer_ = encoder.load_tokenizer()
        self.net_ = _network(self.space, self.options.dropout)
        if self.options.freeze_embeddings:
            self.net_.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
        slices = self.space.slices()
        pos = y.sum(0)
        pos_weight = torch.tensor(np.clip((len(y) - pos) / np.maximum(pos, 1), 1.0, self.options.max_pos_weight),
                                  dtype=torch.float32)
        losses = {}
        for task in self.space.tasks():
            s = slices[task.name]
            losses[task.name] = (torch.nn.CrossEntropyLoss() if task.type == "multiclass"
                                 else torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight[s]))
        target = torch.tensor(y, dtype=torch.float32)
        steps_per_epoch = math.ceil(len(texts) / tc.batch_size)
        # Randomly initialised heads need larger steps than the pretrained encoder to fit in a few epochs.
        groups = [{"params": [p for p in self.net_.encoder.parameters() if p.requires_grad]},
                  {"params": list(self.net_.heads.parameters()),
                   "lr": self.options.head_learning_rate or tc.learning_rate}]
        opt = torch.optim.AdamW(groups, lr=tc.learning_rate, weight_decay=tc.weight_decay)
        total = steps_per_epoch * tc.epochs
        sched = get_linear_schedule_with_warmup(opt, int(tc.warmup_ratio * total), total)
        gen = torch.Generator().manual_seed(tc.seed)
        encoded = self.tokenizer_(texts, truncation=True, max_length=tc.max_length)["input_ids"]
        self.history_ = []
        self.net_.train()
        for epoch in range(1, tc.epochs + 1):
            epoch_loss = 0.0
            for idx in _length_grouped_batches([len(e) for e in encoded], tc.batch_size, gen):
                enc = self.tokenizer_.pad({"input_ids": [encoded[j] for j in idx]}, return_tensors="pt")
                logits = self.net_(**enc)
                loss = 0.0
                for task in self.space.tasks():
                    t = target[idx, slices[task.name]]
                    if task.type == "multiclass":
                        t = t.argmax(1)
                    loss = loss + losses[task.name](logits[task.name], t)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.net_.parameters(), 1.0)
                opt.step()
                sched.step()
                epoch_loss += loss.detach().item() * len(idx)
            self.history_.append(epoch_loss / len(texts))
            if self.on_epoch:
                self.on_epoch(epoch, self.history_[-1])
        self.net_.eval()

    def _predict_proba(self, texts, contexts):
        import torch

        from claims.models import encoder

        encoder.use_all_cores()
        out = np.zeros((len(texts), len(self.space)), dtype=np.float32)
        if not texts:
            return out
        slices = self.space.slices()
        order = np.argsort([len(t) for t in texts], kind="stable")  # pad each batch to similar lengths
        bs = self.options.predict_batch_size
        with torch.inference_mode():
            for i in range(0, len(texts), bs):
                idx = order[i:i + bs]
                enc = tokenize(self.tokenizer_, [texts[j] for j in idx], padding=True, truncation=True,
                               max_length=self.train_config.max_length, return_tensors="pt")
                logits = self.net_(**enc)
                for task in self.space.tasks():
                    z = logits[task.name]
                    p = torch.softmax(z, -1) if task.type == "multiclass" else torch.sigmoid(z)
                    out[idx, slices[task.name]] = p.numpy()
        return out

    def _save(self, path: Path):
        from safetensors.torch import save_file

        state = {k: v.contiguous() for k, v in self.net_.state_dict().items()}
        save_file(state, str(path / "model.safetensors"))
        self.net_.encoder.config.to_json_file(str(path / "encoder_config.json"))
        self.tokenizer_.save_pretrained(str(path / "tokenizer"))
        (path / "heads.json").write_text(json.dumps({t.name: len(t.columns) for t in self.space.tasks()}))

    def _load(self, path: Path):
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer, BertConfig

        from claims.models import encoder

        encoder.offline()
        backbone = AutoModel.from_config(BertConfig.from_json_file(str(path / "encoder_config.json")))
        self.net_ = _network(self.space, self.options.dropout, encoder=backbone)
        self.net_.load_state_dict(load_file(str(path / "model.safetensors")))
        self.net_.eval()
        self.tokenizer_ = AutoTokenizer.from_pretrained(str(path / "tokenizer"))
