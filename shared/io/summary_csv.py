"""``summary.csv``: one row per input of a batch: ``file``, ``name`` (of its outputs), ``status``
(``ok`` or ``skipped``), ``problem``, then the app's key figures (see ``App.summary_row``).

>>> t = SummaryTable(); t.add("a.jpg", "a", figures={"car": 2}); t.add("b.jpg", "b", "skipped", "zero-byte file")
>>> t.to_text().splitlines()[:2]
['file,name,status,problem,car', 'a.jpg,a,ok,,2']
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

from polyhead.io.writers import write_bytes

COLUMNS = ("file", "name", "status", "problem")
STATUSES = ("ok", "skipped")


class SummaryTable:
    """Rows in insertion order; figure columns in the order they first appear (empty where absent)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(
        self, file: str, name: str = "", status: str = "ok", problem: str = "", figures: Mapping | None = None
    ) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        clash = set(figures or {}) & set(COLUMNS)
        if clash:
            raise ValueError(f"figure names {sorted(clash)} clash with the fixed columns")
        self.rows.append({"file": file, "name": name, "status": status, "problem": problem, **(figures or {})})

    def columns(self) -> list[str]:
        return list(dict.fromkeys([*COLUMNS, *(k for row in self.rows for k in row)]))

    def to_text(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns(), lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
        return buf.getvalue()

    def write(self, path: str | Path) -> Path:
        """Write the table atomically (UTF-8, ``\\n`` line ends)."""
        return write_bytes(path, self.to_text().encode())


def _cell(value) -> object:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


def is_summary(path: str | Path) -> bool:
    """True when ``path`` is a summary polyhead wrote (its header starts with :data:`COLUMNS`)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.readline().rstrip("\r\n")
    except OSError:
        return False
    return head.split(",")[: len(COLUMNS)] == list(COLUMNS)
