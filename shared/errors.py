"""One error type for everything a user handed us that we cannot use."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad user input: prints as one line naming the file and the problem.

    >>> str(InputError("a.png", "zero-byte file"))
    'a.png: zero-byte file'
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
