"""Names that become paths (article ids, package names): one pattern, one check."""

from __future__ import annotations

import re

from claims.util.errors import InputError, Problem

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_name(name: object, where: str = "name", line: int | None = None, field: str | None = None) -> str:
    """`name` if it is safe as one path component (no separator, no '..', not absolute), else InputError."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise InputError(Problem(where, line, field,
                                 f"{name!r} is not a valid name: use letters, digits, '_', '-' and '.', "
                                 "start with a letter or digit, no '..', at most 128 characters"))
    return name
