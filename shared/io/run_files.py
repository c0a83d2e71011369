"""The files a batch predict writes once per run, beside the per-input outputs:

- ``summary.csv``: one row per input (``ok`` or ``skipped`` + the problem), with the app's key figures
  (``App.summary_row``); a video's figures are the mean over its frames (``frames`` gives the count);
- ``coco/results.json`` + ``coco/images.json`` (``--save-coco``, apps with boxes): COCO results and
  the image / category tables they refer to (:mod:`polyhead.io.coco_json`);
- ``labels/<name>.txt`` (``--save-txt``, apps with boxes): YOLO labels per image, and
  ``labels/<name>/<frame>.txt`` per video frame (:mod:`polyhead.io.yolo_txt`).

With ``--shard I/N`` the run-level files are named per shard (``summary-shard1of4.csv``,
``coco/results-shard1of4.json``), so shards sharing a folder never write the same file. COCO image
ids are the input's 1-based position in the sorted input list (the same in every shard), and
``position * 1000000 + frame`` for a video's frames.

>>> files = RunFiles("runs/x", summary_row=lambda doc: {"objects": len(doc["objects"])})   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from polyhead.errors import InputError
from polyhead.io.boxes import Detections
from polyhead.io.coco_json import CocoResults, is_own_tables
from polyhead.io.readers import SourceItem
from polyhead.io.summary_csv import SummaryTable, is_summary
from polyhead.io.writers import write_bytes
from polyhead.io.yolo_txt import write_yolo_txt
from polyhead.shard import relative_keys, shard_suffix, sorted_positions

SummaryRowFn = Callable[[dict], dict]
DetectionsFn = Callable[[dict], "Detections | None"]
#: marks a ``labels/`` folder as polyhead's, so ``--save-txt`` never replaces someone's ground truth
LABELS_MARK = ".polyhead-labels"
#: frame ids of a video: ``position * FRAME_BASE + frame``
FRAME_BASE = 1_000_000


class RunFiles:
    """Collects one row (and the boxes) per input of a batch predict and writes the run-level files.

    ``summary_row(doc)`` and ``detections(doc)`` read an input's result JSON (the one written for it,
    so inputs done by an earlier run, ``--resume``, give their figures too)."""

    def __init__(
        self,
        out: str | Path,
        summary_row: SummaryRowFn | None = None,
        detections: DetectionsFn | None = None,
        save_txt: bool = False,
        save_conf: bool = False,
        save_coco: bool = False,
        shard: tuple[int, int] | None = None,
    ):
        self.out = Path(out)
        self.summary_row = summary_row or (lambda doc: {})
        self.detections = detections or (lambda doc: None)
        self.save_txt, self.save_conf, self.save_coco = save_txt, save_conf, save_coco
        self.shard = shard
        self.table = SummaryTable()
        self.coco: CocoResults | None = None
        self.positions: dict[str, int] = {}
        self.relative: dict[str, str] = {}
        self._frames: dict[str, list[dict]] = {}
        self._marked = False
        self._box_app: bool | None = None  # None until a result was seen

    # ------------------------------------------------------------ paths
    @property
    def summary_path(self) -> Path:
        return self.out / f"summary{shard_suffix(self.shard)}.csv"

    @property
    def coco_paths(self) -> tuple[Path, Path]:
        s = shard_suffix(self.shard)
        return self.out / "coco" / f"results{s}.json", self.out / "coco" / f"images{s}.json"

    def label_path(self, name: str, frame: int | None = None) -> Path:
        return self.out / "labels" / (f"{name}.txt" if frame is None else f"{name}/{frame:06d}.txt")

    # ------------------------------------------------------------ lifecycle
    def check(self) -> None:
        """Refuse (one line, before anything is written) files in ``out`` that a run would replace
        but polyhead did not write: a foreign ``summary.csv``, ``coco/`` tables, or a ``labels/``
        folder of someone's ``.txt`` files (a dataset's ground truth)."""
        if self.summary_path.exists() and not is_summary(self.summary_path):
            raise InputError(self.summary_path, "exists and is not a polyhead summary; choose another --out")
        results, images = self.coco_paths
        if self.save_coco and (results.exists() or images.exists()) and not is_own_tables(images):
            raise InputError(results.parent, "holds COCO files polyhead did not write; choose another --out")
        labels = self.out / "labels"
        if self.save_txt and labels.is_dir() and not (labels / LABELS_MARK).exists():
            if any(e.name.endswith(".txt") for e in os.scandir(labels)):
                raise InputError(labels, "holds .txt labels polyhead did not write; choose another --out")

    def begin(self, items: Sequence[SourceItem]) -> None:
        """Every input of the whole run (all shards), for machine-independent image ids and names."""
        from polyhead.predict import item_key

        paths = [i.path for i in items]
        keys = [item_key(i) for i in items]
        pos = sorted_positions(paths, [str(i.camera or "") for i in items])
        rel = relative_keys(paths)
        self.positions = dict(zip(keys, pos, strict=True))
        self.relative = {k: (r or i.label) for k, r, i in zip(keys, rel, items, strict=True)}

    def image(self, item: SourceItem, name: str, doc: dict | None) -> None:
        """An input done now or by an earlier run (``doc``: its result JSON; None when there is none)."""
        figures, problem = self._figures(doc) if doc else ({}, "")
        self.table.add(item.label, name, "ok", problem, figures)
        if doc:
            self._boxes(item, name, doc, None)

    def resumed(self, item: SourceItem, name: str, json_path: Path | None) -> None:
        """An input an earlier run finished (its figures come from its JSON when there is one)."""
        doc = None
        if json_path is not None:
            try:
                doc = json.loads(json_path.read_text())
            except (OSError, ValueError):
                doc = None
        self.image(item, name, doc if isinstance(doc, dict) else None)

    def skipped(self, item: SourceItem, name: str, problem: str) -> None:
        self.table.add(item.label, name, "skipped", problem)

    def frame(self, item: SourceItem, name: str, index: int, doc: dict) -> None:
        """One video frame's result (called in order, from the video's drawing thread)."""
        from polyhead.predict import item_key

        self._frames.setdefault(item_key(item), []).append(self._figures(doc)[0])
        self._boxes(item, name, doc, index)

    def video(self, item: SourceItem, name: str, frames: int, problem: str = "") -> None:
        """A video finished (``problem`` names a part that could not be decoded)."""
        from polyhead.predict import item_key

        rows = self._frames.pop(item_key(item), [])
        self.table.add(item.label, name, "ok", problem, {"frames": frames, **mean_figures(rows)})

    def video_skipped(self, item: SourceItem, name: str, problem: str) -> None:
        from polyhead.predict import item_key

        self._frames.pop(item_key(item), None)
        self.skipped(item, name, problem)

    def finish(self) -> list[Path]:
        """Write ``summary.csv`` (and the COCO tables); returns the files written."""
        written = []
        if (self.save_txt or self.save_coco) and self._box_app is False:
            import sys

            print("note: --save-txt / --save-coco: this app gives no 2-D boxes; no labels written", file=sys.stderr)
        if self.save_coco:
            coco = self.coco or CocoResults([])
            written += coco.write(*self.coco_paths)
        written.append(self.table.write(self.summary_path))
        return written

    def _figures(self, doc: dict) -> tuple[dict, str]:
        """The app's figures of ``doc``; a figure that cannot be computed never costs the item."""
        try:
            return dict(self.summary_row(doc)), ""
        except Exception as e:  # noqa: BLE001 - the item's outputs are written; only its row lacks figures
            return {}, f"no figures ({type(e).__name__}: {(str(e).splitlines() or [''])[0][:120]})"

    # ------------------------------------------------------------ boxes
    def _boxes(self, item: SourceItem, name: str, doc: dict, frame: int | None) -> None:
        if not (self.save_txt or self.save_coco):
            return
        dets = self.detections(doc)
        self._box_app = bool(self._box_app) or dets is not None
        if dets is None:
            return
        size = doc.get("image_size") or {}
        width, height = int(size.get("width", 0)), int(size.get("height", 0))
        if self.save_txt and width > 0 and height > 0:
            if not self._marked:
                write_bytes(self.out / "labels" / LABELS_MARK, b"labels written by polyhead predict --save-txt\n")
                self._marked = True
            write_yolo_txt(self.label_path(name, frame), dets, width, height, conf=self.save_conf)
        if self.save_coco:
            from polyhead.predict import item_key

            if self.coco is None:
                self.coco = CocoResults(dets.names)
            key = item_key(item)
            pos = self.positions.get(key, len(self.positions)) + 1
            image_id = pos if frame is None else pos * FRAME_BASE + frame
            self.coco.add(image_id, self.relative.get(key, item.label), width, height, dets)
            if frame is not None:
                self.coco.images[-1]["frame"] = int(frame)


def mean_figures(rows: Sequence[dict]) -> dict:
    """Per key: the mean of the numbers (rounded to 4 places), else the most common value.

    >>> mean_figures([{"car": 1, "label": "a"}, {"car": 2, "label": "a"}])
    {'car': 1.5, 'label': 'a'}
    """
    out: dict = {}
    for key in dict.fromkeys(k for row in rows for k in row):
        values = [row[key] for row in rows if row.get(key) is not None]
        if not values:
            out[key] = None
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            out[key] = round(sum(values) / len(values), 4)
        else:
            out[key] = Counter(map(str, values)).most_common(1)[0][0]
    return out
