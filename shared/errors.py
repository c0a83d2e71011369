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


class DependencyError(InputError):
    """A required library cannot be loaded on this machine (e.g. open3d without libusb).

    An :class:`InputError`, so every place that reports a bad input in one line (the CLI, batch
    loops, the demo) reports this the same way, without a traceback.

    >>> str(DependencyError(None, "open3d cannot be imported (libusb-1.0.so.0: not found)"))
    'open3d cannot be imported (libusb-1.0.so.0: not found)'
    """
