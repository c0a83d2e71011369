"""Run folders that count up, as ultralytics users expect: ``runs/predict`` holds an earlier run, so this
one goes to ``runs/predict2``, then ``runs/predict3``, ... (``--exist-ok`` keeps writing into the named
folder; ``--resume`` and ``--shard`` imply it, since they continue or share one run).

Like ultralytics' ``increment_path`` the number is appended to the whole name (``runs/exp2`` ->
``runs/exp22``) and the first free candidate wins; unlike it, a folder only counts as taken when it
holds results of an earlier run (a ``summary.csv`` or an output JSON polyhead wrote), so an empty
folder or one holding only the user's own files is used as named.

>>> import tempfile; d = Path(tempfile.mkdtemp()) / "predict"
>>> next_run_dir(d) == d
True
>>> _ = (d / "summary.csv").parent.mkdir(); _ = (d / "summary.csv").write_text("file,name,status,problem\\n")
>>> next_run_dir(d).name, next_run_dir(d, exist_ok=True).name
('predict2', 'predict')
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

#: at most this many JSON files of a folder are opened to find a polyhead output
_MAX_JSON_CHECKS = 200


def holds_results(folder: str | Path) -> bool:
    """True when ``folder`` holds results of an earlier polyhead run: a summary CSV polyhead wrote
    (``summary*.csv``) or, for runs from before summaries existed, a top-level output JSON (one whose
    ``source`` field comes first). A file (not a folder) counts as taken too."""
    from polyhead.io.summary_csv import is_summary
    from polyhead.predict import json_source

    folder = Path(folder)
    if not os.path.lexists(folder):
        return False
    if not folder.is_dir():
        return True
    checked = 0
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return True  # unreadable: never write into it by surprise
    for entry in entries:
        name = entry.name
        if name.startswith("summary") and name.endswith(".csv") and is_summary(entry.path):
            return True
        if name.endswith(".json") and checked < _MAX_JSON_CHECKS and entry.is_file():
            checked += 1
            if json_source(Path(entry.path)):
                return True
    return False


def next_run_dir(path: str | Path, exist_ok: bool = False) -> Path:
    """``path`` itself with ``exist_ok`` or when it holds no earlier results; else the first of
    ``<path>2``, ``<path>3``, ... that holds none and is no file (nothing is created here). A ``path``
    that is a file is returned as it is, for the caller's one-line error."""
    path = Path(path)
    if exist_ok or not path.is_dir() or not holds_results(path):  # a file: predict says "--out is a file"
        return path
    for n in itertools.count(2):
        candidate = path.with_name(f"{path.name}{n}")
        if not holds_results(candidate):
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover
