"""One registry maps the versioned family names used in configs to the classes that build them.

The table names each family by module and class and imports the module only when the name is
asked for, so validating a config or loading a package imports just the family it needs, and no
family has to import the registry to register itself.
"""

from __future__ import annotations

import difflib
import importlib

_FAMILIES: dict[str, str] = {
    "majority.v1": "claims.models.families.majority:Majority",
    "tfidf_linear.v1": "claims.models.families.tfidf_linear:TfidfLinear",
    "embed_linear.v1": "claims.models.families.embed_linear:EmbedLinear",
    "finetune.v1": "claims.models.families.finetune:Finetune",
    "rules.v1": "claims.models.families.rules:Rules",
    "ensemble.v1": "claims.models.families.ensemble:Ensemble",
}


def names() -> list[str]:
    return sorted(_FAMILIES)


def get(name: str) -> type:
    """The family class (a `ClaimsModel`) registered under `name`."""
    try:
        module, _, attr = _FAMILIES[name].partition(":")
    except KeyError:
        close = difflib.get_close_matches(name, _FAMILIES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown model family {name!r}{hint} Registered: {', '.join(sorted(_FAMILIES))}") from None
    cls = getattr(importlib.import_module(module), attr)
    if cls.family_name != name:
        raise RuntimeError(f"registry entry {name!r} points at a class named {cls.family_name!r}")
    return cls


def options_class(name: str) -> type:
    return get(name).Options
