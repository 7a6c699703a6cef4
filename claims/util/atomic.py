"""Atomic writes: build at a temporary path beside the target, then rename over it.

A crash or an error midway leaves the previous file or folder untouched and no partial output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _default_file_mode() -> int:
    """The mode `open()` would give a new file: 0o666 less the process umask (mkstemp uses 0o600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary file path; on success it replaces `target`, on error it is removed.

    A `target` that is a symbolic link is written through: the file it points to is replaced and the
    link stays, as `open(target, "w")` would leave it (the folders on the way to that file are created,
    as for any target).
    """
    target = Path(os.path.realpath(target)) if Path(target).is_symlink() else Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, _default_file_mode())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(target: Path | str, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_dir(target: Path | str) -> Iterator[Path]:
    """Yield a fresh path (not yet created) to build a folder at; on success it replaces `target`.

    The path does not exist yet, so writers that insist on creating their folder (MLflow's
    `save_model`) can use it. On error the partial folder is removed and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    build = staging / target.name
    try:
        yield build
        if not build.is_dir():
            raise FileNotFoundError(f"nothing was written at {build}")
        if target.exists():
            old = staging / f"{target.name}.old"
            os.replace(target, old)
        os.replace(build, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
