"""Run independent items on separate cores, each worker with one intra-op torch thread.

On a small CPU, splitting every small convolution of one image across cores (intra-op threads) gains
little: each op pays a thread hand-off, and the many tiny ops of a cascade or a pyramid barely scale.
Giving each core whole items instead (inter-op parallelism) keeps the cores busy. The workers are
threads (torch releases the GIL inside its ops), so nothing is pickled or copied.

>>> map_on_cores(lambda xs: [x * 2 for x in xs], [[1, 2], [3]])
[[2, 4], [6]]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")

_PREFIX = "polyhead-core"
_LOCK = threading.Lock()
_POOLS: dict[int, ThreadPoolExecutor] = {}


def _one_thread() -> None:
    """Worker initializer: one intra-op thread, fixed now (torch settles a thread's count on first use)."""
    torch.set_num_threads(1)
    torch.get_num_threads()


def _one_core_pool(workers: int) -> ThreadPoolExecutor:
    """A cached pool of ``workers`` threads whose torch ops each run on one thread."""
    with _LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            keep = torch.get_num_threads()
            pool = ThreadPoolExecutor(workers, thread_name_prefix=_PREFIX, initializer=_one_thread)
            ready = threading.Barrier(workers)
            list(pool.map(lambda _: ready.wait(timeout=30), range(workers)))  # start every thread now
            # each initializer also lowered the process-wide default that new threads start from: restore it
            # (threads that already ran torch keep their own setting, so the workers stay at one thread)
            torch.set_num_threads(keep)
            _POOLS[workers] = pool
        return pool


def split_evenly(items: Sequence[T], parts: int) -> list[list[T]]:
    """``items`` cut into at most ``parts`` contiguous runs of near-equal length (order kept).

    >>> split_evenly([1, 2, 3, 4, 5], 2)
    [[1, 2, 3], [4, 5]]
    """
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return out


def map_on_cores(fn: Callable[[T], R], items: Sequence[T], workers: int | None = None) -> list[R]:
    """``[fn(x) for x in items]``, run on up to ``workers`` cores (default: torch's thread count).

    Falls back to a plain loop for one item, one worker, or when called from inside a worker.
    """
    workers = torch.get_num_threads() if workers is None else workers
    workers = min(workers, len(items))
    if workers <= 1 or threading.current_thread().name.startswith(_PREFIX):
        return [fn(x) for x in items]
    return list(_one_core_pool(workers).map(fn, items))
