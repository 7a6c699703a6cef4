"""One registry maps the versioned family names used in configs to their classes.

Family modules stay light at import time (torch and transformers are imported inside methods),
so resolving a name to validate a config costs nothing.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.config import ModelConfig
    from training.families.base import ClaimsModel

_FAMILIES: dict[str, type["ClaimsModel"]] = {}


def register(name: str):
    """Class decorator: make a family available to configs under a versioned name."""

    def decorate(cls):
        if name in _FAMILIES:
            raise ValueError(f"family {name!r} registered twice")
        cls.family_name = name
        _FAMILIES[name] = cls
        return cls

    return decorate


def _load_builtin() -> None:
    # Importing the modules runs their @register decorators.
    from training.families import embed_linear, ensemble, finetune, majority, rules, tfidf_linear  # noqa: F401


def names() -> list[str]:
    _load_builtin()
    return sorted(_FAMILIES)


def get(name: str) -> type["ClaimsModel"]:
    _load_builtin()
    try:
        return _FAMILIES[name]
    except KeyError:
        close = difflib.get_close_matches(name, _FAMILIES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown model family {name!r}{hint} Registered: {', '.join(sorted(_FAMILIES))}") from None


def options_class(name: str) -> type["ModelConfig"]:
    return get(name).Options
