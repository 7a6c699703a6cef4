"""YAML read with each mapping's line number, so errors point into the file."""

from __future__ import annotations

from pathlib import Path

import yaml

from claims.util.errors import InputError, Problem


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Keeps each mapping's line number under '__line__', for errors that point into the file.

    libyaml's parser where PyYAML was built with it: the pure-Python one took 5 s for the manifest
    of 1,000 articles, read twice per training run."""

    def construct_mapping(self, node, deep=False):
        mapping = super().construct_mapping(node, deep=deep)
        mapping["__line__"] = node.start_mark.line + 1
        return mapping


def load_yaml_with_lines(path: Path):
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except FileNotFoundError:
        raise InputError(Problem(path, None, None, "file not found")) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(Problem(path, mark.line + 1 if mark else None, None, f"invalid YAML: {e}")) from None
