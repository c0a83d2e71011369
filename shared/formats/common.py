"""What every format reader shares: the sample description, class mapping, JSON, masks and lane drawing.

>>> s = Sample(Path("a.jpg"), boxes=np.array([[1, 2, 30, 40]], np.float32), categories=["Van"])
>>> cm = ClassMap(["car", "pedestrian"], aliases={"van": "car"})
>>> cm.ids(s.categories).tolist(), cm.report()
([0], None)
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from polyhead.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _no_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.float32)


@dataclass(frozen=True)
class MaskFile:
    """A label mask on disk and how its pixel values encode the positive class.

    ``encoding``: ``"nonzero"`` (pixel > 0), ``"bdd_drivable"`` (BDD100K ``drivable/masks``: 0 direct,
    1 alternative = drivable, 2 background) or ``"bdd_lane"`` (BDD100K ``lane/masks``: 255 background,
    else ``category + (direction << 5) + (style << 4)``; category 0 crosswalk and 8 background are not lanes).
    """

    path: Path
    encoding: str = "nonzero"


@dataclass
class Sample:
    """One image and what a format says about it. ``None`` for a task means "not labelled"; an empty
    array means "labelled, nothing there".

    ``boxes`` (n, 4) are ``x1 y1 x2 y2`` in pixels, or in 0..1 of the image size when ``normalised``;
    ``categories`` are the source names, one per box; ``ignore`` (m, 4) are regions that are neither
    objects nor background (COCO ``iscrowd``, KITTI ``DontCare``), in the same units; ``keypoints``
    (n, k, 2) in pixels with NaN where a point is absent; ``lanes`` are polylines (k, 2) in pixels.
    ``source`` is the label file the boxes came from (for messages); ``problem`` is a reason this sample
    cannot be used (a bad label file), raised when it is loaded.
    """

    image: Path
    boxes: np.ndarray | None = None
    categories: list[str] = field(default_factory=list)
    ignore: np.ndarray = field(default_factory=_no_boxes)
    normalised: bool = False
    keypoints: np.ndarray | None = None
    drivable: MaskFile | None = None
    lane: MaskFile | None = None
    lanes: list[np.ndarray] | None = None
    source: Path | None = None
    problem: InputError | None = None

    def __getstate__(self) -> dict:  # InputError does not pickle by itself (DataLoader workers under spawn)
        state = dict(self.__dict__)
        if self.problem is not None:
            state["problem"] = (self.problem.path, self.problem.problem)
        return state

    def __setstate__(self, state: dict) -> None:
        if state.get("problem") is not None:
            state["problem"] = InputError(*state["problem"])
        self.__dict__.update(state)

    def pixel_boxes(self, size: tuple[int, int]) -> tuple[np.ndarray | None, np.ndarray]:
        """``(boxes, ignore)`` in pixels of an image of ``size`` (h, w)."""
        if not self.normalised:
            return self.boxes, self.ignore
        h, w = size
        scale = np.array([w, h, w, h], np.float32)
        return (None if self.boxes is None else self.boxes * scale), self.ignore * scale


# ------------------------------------------------------------------------------------------- classes
def normalise_name(name: object) -> str:
    """Lower case, ``_``/``-`` as spaces, single spaces: ``Person_sitting`` -> ``person sitting``.

    >>> normalise_name(" Person_sitting "), normalise_name("traffic-light")
    ('person sitting', 'traffic light')
    """
    return re.sub(r"\s+", " ", re.sub(r"[_\-]", " ", str(name))).strip().lower()


class ClassMap:
    """Source category names -> target class ids, through a user mapping, then an alias table.

    Names are compared after :func:`normalise_name`. A user mapping to ``None`` drops the category;
    unknown categories are dropped and counted (``dropped``, ``report()``). A user mapping onto a name
    that is not a target class is an :class:`InputError` naming ``source``.

    >>> cm = ClassMap(["car", "cyclist"], {"rider": "cyclist"}, {"Van": "car", "bus": None})
    >>> cm.ids(["car", "Rider", "van", "bus", "tram", "tram"]).tolist()
    [0, 1, 0, -1, -1, -1]
    >>> cm.report()
    'dropped 3 boxes of classes not mapped to car, cyclist: tram 2, bus 1'
    """

    def __init__(
        self,
        targets: Sequence[str],
        aliases: Mapping[str, str] | None = None,
        user: Mapping[Any, Any] | None = None,
        source: str | Path | None = None,
    ):
        self.targets = list(targets)
        index = {normalise_name(t): i for i, t in enumerate(self.targets)}
        self._map: dict[str, int | None] = dict(index)
        for k, v in (aliases or {}).items():
            if normalise_name(v) in index:
                self._map.setdefault(normalise_name(k), index[normalise_name(v)])
        for k, v in (user or {}).items():
            if v is not None and normalise_name(v) not in index:
                raise InputError(
                    source, f"category_map maps '{k}' to '{v}', which is not one of {', '.join(self.targets)}"
                )
            self._map[normalise_name(k)] = None if v is None else index[normalise_name(v)]
        self.dropped: Counter = Counter()

    def id(self, category: object) -> int | None:
        """The target id of one category, or None (counted in ``dropped``)."""
        cid = self._map.get(normalise_name(category))
        if cid is None:
            self.dropped[str(category)] += 1
        return cid

    def ids(self, categories: Iterable[object]) -> np.ndarray:
        """Target ids, -1 for dropped categories."""
        return np.array([-1 if (c := self.id(cat)) is None else c for cat in categories], np.int64)

    def report(self) -> str | None:
        """One line on what was dropped, or None when nothing was."""
        if not self.dropped:
            return None
        n = sum(self.dropped.values())
        top = ", ".join(f"{k} {v}" for k, v in self.dropped.most_common(8))
        more = ", ..." if len(self.dropped) > 8 else ""
        return f"dropped {n} boxes of classes not mapped to {', '.join(self.targets)}: {top}{more}"


# ------------------------------------------------------------------------------------------- files
def load_json(path: str | Path, what: str = "label JSON") -> Any:
    """Parse a JSON file; a missing or malformed file is an InputError naming it (and the line)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(path, f"{what} is not valid JSON (line {e.lineno}: {e.msg})") from None
    except UnicodeDecodeError:
        raise InputError(path, f"{what} is not UTF-8 text") from None


def read_text_lines(path: str | Path, what: str) -> list[str]:
    """Stripped non-empty lines of a text file (an InputError naming it when missing or binary)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} not found")
    try:
        return [ln.strip() for ln in path.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]
    except UnicodeDecodeError:
        raise InputError(path, f"{what} is not UTF-8 text") from None


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Sorted image files of a folder (and its sub-folders when ``recursive``)."""
    files = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in files if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def as_list(value: Any, key: str, source: str | Path) -> list[str]:
    """A YAML value that may be one name or a list of names, as a list of strings."""
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        raise InputError(source, f"'{key}' must be a path or a list of paths, got {value!r:.60}")
    return [str(v) for v in values]


def number(value: Any, path: str | Path, what: str) -> float:
    """A finite float from a label file, or an InputError naming the file and field."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(path, f"{what} is not a number: {value!r:.40}") from None
    if not np.isfinite(v):
        raise InputError(path, f"{what} is not finite: {value!r:.40}")
    return v


def check_boxes(boxes: np.ndarray, size: tuple[int, int], path: str | Path, tolerance: float = 2.0) -> np.ndarray:
    """Boxes (n, 4) pixels inside an image of ``size`` (h, w), clipped to it; an empty or far-outside box
    is an InputError naming ``path``.

    >>> check_boxes(np.array([[-1, 0, 41, 20]], np.float32), (20, 40), "a.txt").tolist()
    [[0.0, 0.0, 40.0, 20.0]]
    """
    h, w = size
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    bad = (
        ~np.isfinite(b).all(1)
        | (b[:, 0] < -tolerance)
        | (b[:, 1] < -tolerance)
        | (b[:, 2] > w + tolerance)
        | (b[:, 3] > h + tolerance)
        | (b[:, 2] <= b[:, 0])
        | (b[:, 3] <= b[:, 1])
    )
    if bad.any():
        raise InputError(path, f"box {b[bad][0].round(1).tolist()} lies outside the {w}x{h} image or is empty")
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
    return b


# ------------------------------------------------------------------------------------------- masks, lanes
def _decode(m: np.ndarray, encoding: str) -> np.ndarray:
    if encoding == "nonzero":
        return m > 0
    if encoding == "bdd_drivable":
        return m <= 1
    if encoding == "bdd_lane":
        category = m & 0x0F
        return (m != 255) & (category != 0) & (category != 8)
    raise ValueError(f"unknown mask encoding {encoding!r}")


def read_mask_file(mask: MaskFile, size: tuple[int, int]) -> np.ndarray:
    """A :class:`MaskFile` as uint8 0/1 of the image's ``size`` (h, w); unreadable or wrongly sized
    masks are an InputError naming the file."""
    m = cv2.imdecode(np.fromfile(str(mask.path), np.uint8), cv2.IMREAD_UNCHANGED) if mask.path.is_file() else None
    if m is None:
        raise InputError(mask.path, "mask is not a readable image")
    if m.ndim == 3:
        m = m[..., 0] if mask.encoding != "nonzero" else m.max(2)
    if m.shape != tuple(size):
        raise InputError(mask.path, f"mask is {m.shape[1]}x{m.shape[0]} but its image is {size[1]}x{size[0]}")
    return _decode(m, mask.encoding).astype(np.uint8)


def draw_lanes(lanes: Sequence[np.ndarray], size: tuple[int, int], width: float) -> np.ndarray:
    """Lane polylines (k, 2) drawn ``width`` pixels wide into a uint8 0/1 mask of ``size`` (h, w).

    >>> m = draw_lanes([np.array([[10, 0], [10, 19]])], (20, 20), 3); int(m[:, 9:12].min()), int(m[:, :7].max())
    (1, 0)
    """
    mask = np.zeros(size, np.uint8)
    pts = [np.round(np.asarray(p, np.float64)).astype(np.int32).reshape(-1, 1, 2) for p in lanes if len(p) >= 2]
    if pts:
        cv2.polylines(mask, pts, False, 1, max(1, int(round(width))), cv2.LINE_8)
    return mask
