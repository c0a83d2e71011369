"""What every app's per-frame result can do."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Result(Protocol):
    """A per-frame result: plain data that serialises and draws itself."""

    def to_json(self) -> dict: ...

    def plot(self, image: np.ndarray) -> np.ndarray: ...

    # optional: ``artifacts() -> dict[str, np.ndarray | bytes]`` extra files per image, keyed by name suffix
