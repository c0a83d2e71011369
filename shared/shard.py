"""``--shard I/N``: split one batch predict over N jobs (a job array, ``torchrun`` ranks, N machines).

The inputs are sorted by their path relative to the folder that holds them all (so the order is the
same on every machine, whatever the mount point or the order the file system lists them in) and
input ``k`` of that order goes to shard ``k % N``: every input lands in exactly one shard, and the
shards differ in size by one at most. ``I`` counts from 0, like ``RANK`` and ``SLURM_ARRAY_TASK_ID``
of a ``--array=0-(N-1)`` job. Every shard names its outputs over the whole input list, so shards can
share one ``--out`` folder without two inputs ever getting one name.

>>> parse_shard("1/4")
(1, 4)
>>> [shard_of(k, 2) for k in range(5)]
[0, 1, 0, 1, 0]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from polyhead.errors import InputError

T = TypeVar("T")


def parse_shard(text: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"I/N"`` (0 <= I < N) -> ``(I, N)``; None stays None; anything else is a one-line InputError."""
    if text is None or isinstance(text, tuple):
        if text is not None and not (len(text) == 2 and 0 <= text[0] < text[1]):
            raise InputError(None, f"--shard {text[0]}/{text[1]}: needs 0 <= I < N")
        return text
    index, sep, count = str(text).strip().partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise InputError(None, f"--shard expects I/N (e.g. 0/4: the first of 4 shards), got '{text}'") from None
    if not sep or n < 1 or not 0 <= i < n:
        raise InputError(None, f"--shard {text}: needs N >= 1 and 0 <= I < N (shards count from 0)")
    return i, n


def shard_of(position: int, count: int) -> int:
    """The shard of the input at ``position`` in the sorted order."""
    return position % count


def relative_keys(paths: Sequence[Path | None]) -> list[str]:
    """Each path relative to the deepest folder holding them all, in POSIX form (``None``: ``""``)."""
    real = [os.path.abspath(p) for p in paths if p is not None]
    if not real:
        return ["" for _ in paths]
    root = os.path.commonpath([os.path.dirname(p) for p in real])
    return [Path(os.path.relpath(os.path.abspath(p), root)).as_posix() if p is not None else "" for p in paths]


def sorted_positions(paths: Sequence[Path | None], tags: Sequence[str] | None = None) -> list[int]:
    """The position of each input in the machine-independent order (by relative path, then ``tags``)."""
    keys = relative_keys(paths)
    tags = list(tags) if tags is not None else ["" for _ in paths]
    order = sorted(range(len(paths)), key=lambda k: (keys[k], tags[k]))
    pos = [0] * len(paths)
    for rank, k in enumerate(order):
        pos[k] = rank
    return pos


def split_shard(
    items: Sequence[T], paths: Sequence[Path | None], shard: tuple[int, int] | None
) -> tuple[list[T], list[T]]:
    """``(mine, others)``: the items of shard ``shard = (I, N)`` and the rest (all items for None)."""
    if shard is None:
        return list(items), []
    index, count = shard
    pos = sorted_positions(paths, [str(getattr(i, "camera", "")) for i in items])
    mine = [it for it, p in zip(items, pos, strict=True) if shard_of(p, count) == index]
    others = [it for it, p in zip(items, pos, strict=True) if shard_of(p, count) != index]
    return mine, others


def shard_suffix(shard: tuple[int, int] | None) -> str:
    """What a shard adds to the names of run-level files: ``""`` or ``"-shard1of4"``.

    >>> "summary" + shard_suffix((1, 4)) + ".csv"
    'summary-shard1of4.csv'
    """
    return "" if shard is None else f"-shard{shard[0]}of{shard[1]}"
