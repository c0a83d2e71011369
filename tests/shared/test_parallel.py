"""polyhead.parallel: items on separate cores, order kept, torch's thread setting left as it was."""

import threading

import torch

from polyhead.parallel import map_on_cores, split_evenly


def test_split_evenly():
    assert split_evenly(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split_evenly([1], 4) == [[1]]
    assert split_evenly([], 2) == [[]]


def test_map_on_cores_runs_in_workers_with_one_thread_each():
    seen = []

    def work(x):
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return torch.full((64, 64), float(x)).matmul(torch.eye(64)).sum().item()

    before = torch.get_num_threads()
    out = map_on_cores(work, [1, 2, 3, 4], workers=2)
    assert out == [4096.0, 8192.0, 12288.0, 16384.0]
    assert all(name.startswith("polyhead-core") and n == 1 for name, n in seen)
    assert torch.get_num_threads() == before
    fresh = []
    t = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
    t.start()
    t.join()
    assert fresh == [before]  # threads started later get the process default back


def test_map_on_cores_falls_back_to_a_loop():
    main = threading.current_thread().name
    assert map_on_cores(lambda x: threading.current_thread().name, [1], workers=4) == [main]
    assert map_on_cores(lambda x: threading.current_thread().name, [1, 2], workers=1) == [main, main]
    nested = map_on_cores(lambda x: map_on_cores(lambda y: y + 1, [x, x], workers=2), [1, 2], workers=2)
    assert nested == [[2, 2], [3, 3]]  # a worker runs nested calls itself (no deadlock)
