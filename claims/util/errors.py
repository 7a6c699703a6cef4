"""Errors that point at the exact place in a file that is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file; `line` is 1-based, None when the file as a whole is wrong."""

    path: Path | str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = str(self.path)
        if self.line is not None:
            where += f":{self.line}"
        if self.field:
            where += f" [{self.field}]"
        return f"{where}: {self.message}"


class InputError(Exception):
    """Bad input: carries every problem found, so one run reports them all."""

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = problems if isinstance(problems, list) else [problems]
        super().__init__("\n".join(str(p) for p in self.problems))


def fail(where: Path | str, message: str, line: int | None = None, field: str | None = None) -> InputError:
    """An InputError with a single problem, for `raise fail(path, "what is wrong")`."""
    # Messages of other errors often start with the same path; it is printed once.
    return InputError(Problem(where, line, field, message.removeprefix(f"{where}: ")))
