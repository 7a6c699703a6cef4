"""scikit-learn parts saved with skops, never pickle; loading trusts only scikit-learn/numpy/scipy types."""

from __future__ import annotations

from pathlib import Path

import skops.io as sio

_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")


def dump(obj, path: Path) -> None:
    sio.dump(obj, path)


def load(path: Path):
    untrusted = sio.get_untrusted_types(file=path)
    unexpected = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if unexpected:
        raise ValueError(f"{path}: refusing to load unexpected types {unexpected}")
    return sio.load(path, trusted=untrusted)
