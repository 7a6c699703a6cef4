"""finetune.v1: MiniLM fine-tuned end to end as one multi-task model.

One shared encoder with mean pooling, one linear head per task: sigmoid with binary cross-entropy
for multilabel and binary tasks (positive weights for rare labels), softmax with cross-entropy for
multiclass ones. Saved as safetensors plus the tokenizer and encoder config as JSON.

Options, both off by default so that older configs train what they trained before:
- `context`: the encoder reads a sentence pair, the unit first and the unit before it second
  (empty for an article's first unit and for loose sentences, in training as in prediction);
- `early_stopping`: a share of the training articles (never single units: an article's sentences
  retell each other) is held out; after each epoch the network is scored on it (mean average
  precision over the labels, which needs no threshold) and the best epoch's weights are kept;
  training stops after `patience` epochs without a gain. `train.epochs` is then the most epochs.
"""

from __future__ import annotations

import json
import math
import unicodedata
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from claims.corpus.augment import article_of, is_copy
from claims.models.encoder import tokenize  # the fitted tokenizer is shared across request threads
from claims.models.options import ModelConfig
from claims.models.families.base import ClaimsModel

STOPPING_FILE = "early_stopping.json"


class FinetuneOptions(ModelConfig):
    name: Literal["finetune.v1"] = "finetune.v1"
    dropout: float = Field(default=0.1, ge=0, lt=1)
    max_pos_weight: float = Field(default=10.0, ge=1, description="Cap on the positive weight of rare labels.")
    predict_batch_size: int = Field(default=64, ge=1)
    head_learning_rate: float | None = Field(
        default=None, gt=0, description="Learning rate of the new task heads (default: train.learning_rate).")
    freeze_embeddings: bool = Field(
        default=True, description="Keep the word-embedding matrix (half the weights) fixed: faster, less overfitting.")
    context: bool = Field(default=False, description="Read the unit before as the second sentence of a pair.")
    early_stopping: bool = Field(default=False, description="Keep the best epoch on held-out training articles.")
    validation_fraction: float = Field(default=0.15, gt=0, lt=0.5,
                                       description="Share of training articles held out for early stopping.")
    patience: int = Field(default=1, ge=1, description="Epochs without a validation gain before stopping.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Where to train (and score held-out folds): 'auto' takes a CUDA GPU when torch "
                                    "sees one. A fit on a GPU is another random draw than one on CPU (other dropout "
                                    "masks, other summation order). A model loaded from disk predicts on CPU.")

    def unavailable(self) -> dict[str, str]:
        return {"device": why} if (why := device_missing(self.device)) else {}


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


def _validation_split(groups: list[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Training and validation rows, whole articles on each side; None when there are too few articles.

    Swapped copies go with their article: trained on when it is, never scored (validation measures
    the units as written)."""
    from sklearn.model_selection import GroupShuffleSplit

    articles = np.asarray([article_of(g) for g in groups])
    if len(set(articles)) < 4:
        return None
    split = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    rows, held = next(split.split(np.zeros(len(groups)), groups=articles))
    return rows, np.asarray([j for j in held if not is_copy(groups[j])], dtype=int)


class DeviceMissing(RuntimeError):
    pass


def device_missing(choice: str) -> str | None:
    """Why `model.device` cannot be had here (a line for the user), or None; imports torch only for 'cuda'."""
    if choice != "cuda":
        return None
    import torch

    return None if torch.cuda.is_available() else \
        "model.device is 'cuda' but torch sees no CUDA GPU here; set it to 'auto' or 'cpu'"


def _device(choice: str):
    import torch

    if why := device_missing(choice):
        raise DeviceMissing(f"finetune.v1: {why}")
    return torch.device("cuda" if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()) else "cpu")


def _mean_average_precision(y: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    scores = [average_precision_score(y[:, j], proba[:, j]) for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    return float(np.mean(scores)) if scores else 0.0


class Finetune(ClaimsModel):
    family_name = "finetune.v1"
    Options = FinetuneOptions
    stochastic = True
    reads_groups = True

    @property
    def max_tokens(self) -> int:
        """Tokens of unit and context together: a pair gets twice the unit's budget, within the
        encoder's position embeddings (512 for MiniLM)."""
        budget = self.train_config.max_length * (2 if self.options.context else 1)
        return min(budget, self.tokenizer_.model_max_length) if self.options.context else budget

    def encode(self, texts: list[str], contexts: list[str], **kwargs):
        """Tokenizer output for units, or for (unit, previous unit) pairs with the context option."""
        pair = [c or "" for c in contexts] if self.options.context else None
        return tokenize(self.tokenizer_, texts, pair, truncation=True, max_length=self.max_tokens, **kwargs)

    def count_truncated(self, texts: list[str], contexts: list[str] | None = None) -> int:
        """Units the encoder does not read whole: longer than the budget alone or, with `context`,
        cut because unit and previous unit together are over it (the longer of the two is cut first)."""
        limit = self.max_tokens
        ctx = [c or "" for c in contexts] if self.options.context and contexts is not None else [""] * len(texts)
        # A word piece covers at least one character of the NFD-normalised text (a Hangul syllable is
        # three), so shorter strings cannot reach the limit.
        rows = [i for i, t in enumerate(texts)
                if len(unicodedata.normalize("NFD", t)) + len(unicodedata.normalize("NFD", ctx[i])) + 3 > limit]
        if not rows:
            return 0
        whole = tokenize(self.tokenizer_, [texts[i] for i in rows], truncation=False)["input_ids"]
        if not self.options.context:
            return sum(len(ids) > limit for ids in whole)
        kept = self.encode([texts[i] for i in rows], [ctx[i] for i in rows], return_token_type_ids=True)
        # In a pair the unit is segment 0, with [CLS] and the first [SEP]; alone it has [CLS] and [SEP].
        return sum(sum(1 for s in segments if s == 0) < len(ids)
                   for segments, ids in zip(kept["token_type_ids"], whole))

    def _fit(self, texts, y, contexts, groups):
        import torch
        from transformers import get_linear_schedule_with_warmup

        from claims.models import encoder

        encoder.use_all_cores()
        device = _device(self.options.device)  # before any work: a wrong device fails at once
        tc = self.train_config
        torch.manual_seed(tc.seed)
        self.tokenizer_ = encoder.load_tokenizer()
        self.net_ = _network(self.space, self.options.dropout).to(device)
        if self.options.freeze_embeddings:
            self.net_.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
        slices = self.space.slices()
        pos = y.sum(0)
        pos_weight = torch.tensor(np.clip((len(y) - pos) / np.maximum(pos, 1), 1.0, self.options.max_pos_weight),
                                  dtype=torch.float32, device=device)
        losses = {}
        for task in self.space.tasks():
            s = slices[task.name]
            losses[task.name] = (torch.nn.CrossEntropyLoss() if task.type == "multiclass"
                                 else torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight[s]))
        target = torch.tensor(y, dtype=torch.float32, device=device)
        # Randomly initialised heads need larger steps than the pretrained encoder to fit in a few epochs.
        param_groups = [{"params": [p for p in self.net_.encoder.parameters() if p.requires_grad]},
                  {"params": list(self.net_.heads.parameters()),
                   "lr": self.options.head_learning_rate or tc.learning_rate}]
        opt = torch.optim.AdamW(param_groups, lr=tc.learning_rate, weight_decay=tc.weight_decay)
        rows = np.arange(len(texts))
        split = _validation_split(groups, self.options.validation_fraction, tc.seed) if self.options.early_stopping else None
        if split is not None:
            rows, held = split
        total = math.ceil(len(rows) / tc.batch_size) * tc.epochs  # the schedule runs over the rows trained on
        sched = get_linear_schedule_with_warmup(opt, int(tc.warmup_ratio * total), total)
        gen = torch.Generator().manual_seed(tc.seed)
        encoded = self.encode(texts, contexts)
        features = [{k: encoded[k][j] for k in encoded.keys()} for j in range(len(texts))]
        self.history_, self.validation_, self.best_epoch_ = [], [], tc.epochs
        best, best_state, waited = -1.0, None, 0
        self.net_.train()
        for epoch in range(1, tc.epochs + 1):
            epoch_loss = 0.0
            lengths = [len(features[j]["input_ids"]) for j in rows]
            for step, batch in enumerate(_length_grouped_batches(lengths, tc.batch_size, gen), start=1):
                idx = rows[batch]
                enc = self.tokenizer_.pad([features[j] for j in idx], return_tensors="pt").to(device)
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
                step_loss = loss.detach().item()
                if not math.isfinite(step_loss):  # stop at once: the rest of the epoch would train on NaN weights
                    raise FloatingPointError(
                        f"finetune.v1: the training loss is {step_loss} at epoch {epoch}, step {step}; lower "
                        f"train.learning_rate (now {tc.learning_rate}) or model.head_learning_rate "
                        f"(now {self.options.head_learning_rate or tc.learning_rate})")
                epoch_loss += step_loss * len(idx)
            self.history_.append(epoch_loss / len(rows))
            if self.on_epoch:
                self.on_epoch(epoch, self.history_[-1])
            if split is None:
                continue
            self.net_.eval()
            score = _mean_average_precision(y[held], self._predict_proba([texts[j] for j in held],
                                                                          [contexts[j] for j in held]))
            self.net_.train()
            self.validation_.append(score)
            if score > best:
                best, waited, self.best_epoch_ = score, 0, epoch
                best_state = {k: v.detach().clone() for k, v in self.net_.state_dict().items()}
            else:
                waited += 1
                if waited >= self.options.patience:
                    break
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.net_.eval()

    def _predict_proba(self, texts, contexts):
        import torch

        from claims.models import encoder

        encoder.use_all_cores()
        out = np.zeros((len(texts), len(self.space)), dtype=np.float32)
        if not texts:
            return out
        slices = self.space.slices()
        device = next(self.net_.parameters()).device
        order = np.argsort([len(t) for t in texts], kind="stable")  # pad each batch to similar lengths
        bs = self.options.predict_batch_size
        with torch.inference_mode():
            for i in range(0, len(texts), bs):
                idx = order[i:i + bs]
                enc = self.encode([texts[j] for j in idx], [contexts[j] for j in idx], padding=True,
                                  return_tensors="pt").to(device)
                logits = self.net_(**enc)
                for task in self.space.tasks():
                    z = logits[task.name]
                    p = torch.softmax(z, -1) if task.type == "multiclass" else torch.sigmoid(z)
                    out[idx, slices[task.name]] = p.float().cpu().numpy()
        return out

    def _save(self, path: Path):
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.net_.state_dict().items()}
        save_file(state, str(path / "model.safetensors"))
        self.net_.encoder.config.to_json_file(str(path / "encoder_config.json"))
        self.tokenizer_.save_pretrained(str(path / "tokenizer"))
        (path / "heads.json").write_text(json.dumps({t.name: len(t.columns) for t in self.space.tasks()}))
        if getattr(self, "validation_", None):
            (path / STOPPING_FILE).write_text(json.dumps(
                {"validation_mean_average_precision": self.validation_, "best_epoch": self.best_epoch_}))

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
        stopping = json.loads((path / STOPPING_FILE).read_text()) if (path / STOPPING_FILE).exists() else {}
        self.validation_ = stopping.get("validation_mean_average_precision", [])
        self.best_epoch_ = stopping.get("best_epoch", len(self.history_))
