"""scikit-learn parts saved with skops, never pickle.

skops itself trusts only scikit-learn estimators and plain numpy/scipy containers. Anything else a
file asks to construct must be in `ALLOWED` (exact type names this project writes) and recorded
beside the file when it was saved (`<file>.types.json`); any other type is refused before loading,
so a crafted file cannot reach `builtins.exec` or any other callable.
"""

from __future__ import annotations

import json
from pathlib import Path

import skops.io as sio

from claims.util import atomic

# Exact types beyond skops' defaults that this project's models contain. Empty today: every part
# we save is a scikit-learn estimator of default-trusted types.
ALLOWED: frozenset[str] = frozenset()


class UntrustedFileError(ValueError):
    """A saved model part asks for a type this project never writes."""


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".types.json")


def dump(obj, path: Path) -> None:
    path = Path(path)
    types = sorted(sio.get_untrusted_types(data=sio.dumps(obj)))
    unexpected = [t for t in types if t not in ALLOWED]
    if unexpected:
        raise UntrustedFileError(f"{path}: would save types outside the allow-list {unexpected}")
    sio.dump(obj, path)
    atomic.write_text(_sidecar(path), json.dumps(types))


def load(path: Path):
    path = Path(path)
    try:
        recorded = set(json.loads(_sidecar(path).read_text()))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        recorded = set()
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as e:  # skops raises several types for corrupt or truncated files
        raise UntrustedFileError(f"{path}: not a readable skops file ({type(e).__name__}: {e})") from None
    refused = sorted(t for t in untrusted if t not in ALLOWED or t not in recorded)
    if refused:
        raise UntrustedFileError(f"{path}: refusing to load, it asks for types this project never writes: {refused}")
    return sio.load(path, trusted=sorted(untrusted))
