"""Training samples for the cascade, generated from real data (recipe in docs/face.md).

Sources of faces: 5-point landmark crops (``path x1..x5 y1..y5`` lists), WIDER FACE ``*_bbx_gt.txt`` and
RetinaFace ``label.txt`` box lists, COCO JSON (boxes, 5 keypoints when the category has them), UTKFace
chips (a fixed face box, no points), dlib-style XML box lists and Pascal VOC folders (``voc:``, every box
a face, minus the images of ``exclude`` split lists such as the crowd hold-out). Sources of non-faces: face-free photos
(road scenes, floor plans, medical images). From these,
``generate`` cuts windows of the stage's input size: positives (IoU > 0.65 with a face), part faces
(0.4-0.65), negatives (IoU < 0.3) and composites (faces pasted at random scales onto face-free scenes),
with box offsets and landmark targets in window fractions. Arrays are cached under ``runs/``.

>>> items = read_landmark_list("landmarks5/train.txt")          # doctest: +SKIP
>>> data = generate("pnet", FaceSources.from_yaml("datasets/face.yaml"), split="train")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import glob as globlib
import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

from polyhead.apps.face.detect import crop_windows, normalise
from polyhead.dataset_yaml import check_keys, get_number
from polyhead.errors import InputError

#: the keys a face dataset YAML may hold (any other is a typo and an error naming the nearest)
YAML_KEYS = (
    "landmarks",
    "landmark_filter",
    "utkface",
    "train_boxes",
    "val_boxes",
    "backgrounds",
    "holdout",
    "seed",
    "wider",
    "retinaface",
    "coco",
    "voc",
)

POS_IOU, PART_IOU, NEG_IOU = 0.65, 0.4, 0.3
#: dlib-style face box from 5 points: side = 2.45 x eye-centre-to-mouth-centre distance, centred between
#: them (measured on dlib's own 68-point training boxes: 2.47 +- 0.28, centre offset < 2% of the side)
BOX_PER_EYE_MOUTH = 2.45
UTK_BOX = (15.0, 17.0, 185.0, 187.0)  # face box of a 200x200 UTKFace chip (the chip is aligned on the face)
FLIP_ORDER = [1, 0, 2, 4, 3]  # landmark order after a horizontal flip
STAGE_MULT = {"pnet": 1.0, "rnet": 1.0, "onet": 0.35}  # share of composites / background windows per stage
#: windows per VOC photo (crowds: many small faces): (face and part-face windows per face, negatives per photo);
#: only faces at least VOC_MIN_FACE px tall get face windows (smaller ones still label the windows around them)
VOC_WINDOWS = {"pnet": (6, 40), "rnet": (6, 40), "onet": (6, 24)}
VOC_MIN_FACE = 12.0


# ---------------------------------------------------------------------------------------------- readers
def read_landmark_list(path: str | Path) -> list[tuple[Path, np.ndarray]]:
    """``path x1 x2 x3 x4 x5 y1 y2 y3 y4 y5`` lines -> ``[(image path, points (5, 2))]`` (paths relative
    to the list's folder). Malformed lines raise :class:`InputError` naming the line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "landmark list not found")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 11:
            raise InputError(path, f"line {n}: expected 'path x1..x5 y1..y5' (11 fields), got {len(parts)}")
        try:
            v = np.array([float(x) for x in parts[1:]], np.float32)
        except ValueError:
            raise InputError(path, f"line {n}: coordinates are not numbers") from None
        out.append((path.parent / parts[0], np.stack([v[:5], v[5:]], 1)))
    return out


def read_wider(path: str | Path, images_root: str | Path | None = None) -> list[tuple[Path, np.ndarray]]:
    """WIDER FACE ``wider_face_*_bbx_gt.txt`` (name, count, ``x y w h blur expr illum invalid occl pose``
    rows) -> ``[(image path, boxes (n, 4) xyxy)]``; invalid and tiny (< 8 px) faces are dropped."""
    path = Path(path)
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    root = Path(images_root) if images_root else path.parent / "images"
    out, i = [], 0
    while i < len(lines):
        name = lines[i]
        if not name:
            i += 1
            continue
        try:
            count = int(lines[i + 1])
        except (IndexError, ValueError):
            raise InputError(path, f"line {i + 2}: expected a face count after '{name}'") from None
        rows = lines[i + 2 : i + 2 + max(count, 1)]
        boxes = []
        for r in rows[:count]:
            v = [float(x) for x in r.split()[:10]]
            if len(v) >= 4 and v[2] >= 8 and v[3] >= 8 and (len(v) < 8 or v[7] == 0):
                boxes.append([v[0], v[1], v[0] + v[2], v[1] + v[3]])
        out.append((root / name, np.array(boxes, np.float32).reshape(-1, 4)))
        i += 2 + max(count, 1)
    return out


def read_retinaface(path: str | Path) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """RetinaFace ``label.txt`` (``# name`` then ``x y w h lx1 ly1 v ... lx5 ly5 v score``) ->
    ``[(image path, boxes (n, 4), points (n, 5, 2) with NaN where unlabelled)]``."""
    path = Path(path)
    out: list = []
    cur = None
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if line.startswith("#"):
            cur = (path.parent / "images" / line[1:].strip(), [], [])
            out.append(cur)
        elif line:
            if cur is None:
                raise InputError(path, f"line {n}: box before any '# image' line")
            v = [float(x) for x in line.split()]
            if len(v) < 4 or v[2] < 8 or v[3] < 8:
                continue
            cur[1].append([v[0], v[1], v[0] + v[2], v[1] + v[3]])
            pts = np.full((5, 2), np.nan, np.float32)
            if len(v) >= 19 and v[4] >= 0:
                pts = np.array([[v[4 + 3 * k], v[5 + 3 * k]] for k in range(5)], np.float32)
            cur[2].append(pts)
    return [(p, np.array(b, np.float32).reshape(-1, 4), np.array(q, np.float32).reshape(-1, 5, 2)) for p, b, q in out]


def read_dlib_xml(path: str | Path) -> list[tuple[Path, np.ndarray]]:
    """dlib imglab XML (``<image file><box top left width height/>``) -> ``[(image path, boxes xyxy)]``;
    boxes marked ``ignore`` are dropped."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise InputError(path, f"not a readable box XML ({e})") from None
    out = []
    for img in root.iter("image"):
        boxes = [
            [
                float(b.get("left")),
                float(b.get("top")),
                float(b.get("left")) + float(b.get("width")),
                float(b.get("top")) + float(b.get("height")),
            ]
            for b in img.iter("box")
            if b.get("ignore", "0") != "1"
        ]
        out.append((path.parent / img.get("file"), np.array(boxes, np.float32).reshape(-1, 4)))
    return out


UTK_NAME = re.compile(r"^(\d+)_([01])_(\d)_\d+")


def read_utkface(source: str | Path) -> list[tuple[Path, int, int]]:
    """UTKFace chips (``age_gender_race_date.jpg.chip.jpg`` in a folder) or a CSV with ``path,age,gender``
    -> ``[(path, age, gender 0 male / 1 female)]``; files whose names do not parse are skipped."""
    source = Path(source)
    if source.suffix.lower() == ".csv":
        with source.open(newline="") as f:
            rows = list(csv.DictReader(f))
        if rows and not {"path", "age", "gender"} <= set(rows[0]):
            raise InputError(source, "CSV needs the columns path, age, gender")
        return [(source.parent / r["path"], int(float(r["age"])), int(float(r["gender"]))) for r in rows]
    if not source.is_dir():
        raise InputError(source, "UTKFace source must be a folder of chips or a CSV")
    out = []
    for p in sorted(source.iterdir()):
        m = UTK_NAME.match(p.name)
        if m and p.suffix.lower() in (".jpg", ".png"):
            out.append((p, int(m.group(1)), int(m.group(2))))
    return out


def in_holdout(name: str, share: float, seed: int = 0) -> bool:
    """A stable seeded split: the same name always lands on the same side.

    >>> in_holdout("a.jpg", 0.0), in_holdout("a.jpg", 1.0)
    (False, True)
    """
    h = int(hashlib.sha1(f"{seed}:{name}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return h < share


def box_from_points(points: np.ndarray) -> np.ndarray:
    """A square dlib-style face box (x1, y1, x2, y2) from 5 points (eyes, nose, mouth corners)."""
    p = np.asarray(points, np.float32).reshape(5, 2)
    eye, mouth = p[:2].mean(0), p[3:].mean(0)
    side = BOX_PER_EYE_MOUTH * float(np.linalg.norm(mouth - eye))
    c = (eye + mouth) / 2
    return np.array([c[0] - side / 2, c[1] - side / 2, c[0] + side / 2, c[1] + side / 2], np.float32)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), 2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter + 1e-9)


# ---------------------------------------------------------------------------------------------- sources
@dataclass
class FaceSources:
    """Where the data lives, read from a dataset YAML (see datasets/face.yaml)."""

    landmarks: list[Path] = field(default_factory=list)
    wider: list[tuple[Path, Path | None]] = field(default_factory=list)
    retinaface: list[Path] = field(default_factory=list)
    #: (JSON, images folder or None); out of the repr so the sample caches of sets without COCO keep their keys
    coco: list[tuple[Path, Path | None]] = field(default_factory=list, repr=False)
    #: Pascal VOC folders (images/ + annotations/) with the split lists whose images are never used
    voc: list[tuple[Path, tuple[Path, ...]]] = field(default_factory=list, repr=False)
    box_xml: list[Path] = field(default_factory=list)
    utkface: Path | None = None
    backgrounds: list[str] = field(default_factory=list)
    val_boxes: list[Path] = field(default_factory=list)
    holdout: float = 0.1
    seed: int = 0
    landmark_filter: str = ""  # regex: only landmark-list paths matching it are used

    @classmethod
    def from_yaml(cls, path: str | Path) -> FaceSources:
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "dataset YAML not found")
        try:
            d = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise InputError(path, f"not valid YAML ({e})") from None
        if not isinstance(d, dict):
            raise InputError(path, "dataset YAML must be a mapping")
        check_keys(d, YAML_KEYS, path)
        base = path.parent

        def paths(key):
            v = d.get(key) or []
            return [(base / x).resolve() for x in ([v] if isinstance(v, str) else v)]

        wider = []
        for w in d.get("wider") or []:
            w = w if isinstance(w, dict) else {"labels": w}
            wider.append(((base / w["labels"]).resolve(), (base / w["images"]).resolve() if w.get("images") else None))
        coco = []
        for c in d.get("coco") or []:
            c = c if isinstance(c, dict) else {"json": c}
            coco.append(((base / c["json"]).resolve(), (base / c["images"]).resolve() if c.get("images") else None))
        voc = []
        for v in d.get("voc") or []:
            v = v if isinstance(v, dict) else {"folder": v}
            if not isinstance(v, dict) or "folder" not in v or set(v) - {"folder", "exclude"}:
                raise InputError(path, f"a 'voc' entry is a folder or {{folder: ..., exclude: [split lists]}}, got {v}")
            ex = v.get("exclude") or []
            ex = [ex] if isinstance(ex, str) else ex
            voc.append(((base / v["folder"]).resolve(), tuple((base / e).resolve() for e in ex)))
        return cls(
            landmarks=paths("landmarks"),
            wider=wider,
            coco=coco,
            voc=voc,
            retinaface=paths("retinaface"),
            box_xml=paths("train_boxes"),
            utkface=(base / d["utkface"]).resolve() if d.get("utkface") else None,
            backgrounds=[
                str((base / g).resolve()) if not Path(g).is_absolute() else g for g in d.get("backgrounds") or []
            ],
            val_boxes=paths("val_boxes"),
            holdout=get_number(d, "holdout", path, 0.1, float, lo=0.0, hi=0.9),
            seed=get_number(d, "seed", path, 0, int),
            landmark_filter=str(d.get("landmark_filter", "")),
        )

    def landmark_items(self, split: str) -> list[tuple[Path, np.ndarray]]:
        """Landmark crops of ``train`` or ``val`` (the seeded held-out share)."""
        items = [it for lst in self.landmarks for it in read_landmark_list(lst)]
        if self.landmark_filter:
            items = [it for it in items if re.search(self.landmark_filter, str(it[0]))]
        want = split != "train"
        return [it for it in items if in_holdout(it[0].name, self.holdout, self.seed) == want]

    def utk_items(self, split: str) -> list[tuple[Path, int, int]]:
        if self.utkface is None:
            return []
        want = split != "train"
        return [it for it in read_utkface(self.utkface) if in_holdout(it[0].name, self.holdout, self.seed + 1) == want]

    def voc_items(self, split: str) -> list[tuple[Path, np.ndarray]]:
        """``[(image, boxes)]`` of the VOC folders for ``train`` or ``val`` (a seeded ``holdout`` share of
        the images, used for the window-level val that picks the best epoch); the images named in an entry's
        ``exclude`` lists are in neither. A list naming images the folder lacks is an error (a stale or
        mistyped list would otherwise exclude nothing)."""
        from polyhead.apps.face.crowd import read_split, read_voc_folder

        want = split != "train"
        out = []
        for folder, excludes in self.voc:
            items = read_voc_folder(folder)
            names = {p.name for p, _ in items}
            held: set[str] = set()
            for ex in excludes:
                listed = read_split(ex)
                lost = sorted(listed - names)
                if lost:
                    raise InputError(ex, f"{len(lost)} listed image(s) are not in {folder} (first: {lost[0]})")
                held |= listed
            out += [
                (p, b)
                for p, b in items
                if p.name not in held and in_holdout(p.name, self.holdout, self.seed + 2) == want
            ]
        return out

    def voc_signature(self) -> tuple:
        """What the VOC part of the windows depends on (folders, the excluded names), for cache keys."""
        from polyhead.apps.face.crowd import read_split

        sig = []
        for folder, excludes in self.voc:
            names = sorted(n for ex in excludes for n in read_split(ex))
            sig.append((str(folder), hashlib.sha1("\n".join(names).encode()).hexdigest()[:12]))
        return (tuple(sig), VOC_WINDOWS, VOC_MIN_FACE)

    def background_files(self) -> list[Path]:
        files = []
        for g in self.backgrounds:
            files += [Path(p) for p in sorted(globlib.glob(g, recursive=True))]
        return [p for p in files if p.suffix.lower() in (".jpg", ".jpeg", ".png")]


@dataclass
class Scene:
    """An image with its faces: boxes (n, 4) and points (n, 5, 2), NaN where a face has no points."""

    image: np.ndarray
    boxes: np.ndarray
    points: np.ndarray


def _read(path: Path) -> np.ndarray | None:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _fit(img: np.ndarray, max_side: int) -> np.ndarray:
    f = max_side / max(img.shape[:2])
    return img if f >= 1 else cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)


# ---------------------------------------------------------------------------------------------- windows
def label_windows(windows: np.ndarray, scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels (1 face, -1 part, 0 non-face, 9 = in between, dropped), box offsets and landmark targets."""
    n = len(windows)
    label = np.zeros(n, np.int8)
    box = np.zeros((n, 4), np.float32)
    lmk = np.full((n, 10), np.nan, np.float32)
    if len(scene.boxes) == 0:
        return label, box, lmk
    iou = iou_matrix(windows, scene.boxes)
    best = iou.argmax(1)
    m = iou[np.arange(n), best]
    label[m >= POS_IOU] = 1
    label[(m >= PART_IOU) & (m < POS_IOU)] = -1
    label[(m >= NEG_IOU) & (m < PART_IOU)] = 9
    wh = windows[:, 2:] - windows[:, :2]
    side = np.concatenate([wh, wh], 1)
    gt = scene.boxes[best]
    box = ((gt - windows) / side).astype(np.float32)
    pts = scene.points[best]  # (n, 5, 2)
    lx = (pts[:, :, 0] - windows[:, :1]) / side[:, :1]
    ly = (pts[:, :, 1] - windows[:, 1:2]) / side[:, 1:2]
    face = label == 1
    lmk[face] = np.concatenate([lx, ly], 1)[face]
    return label, box, lmk


def face_windows(scene: Scene, rng: np.random.Generator, n: int, spread: float = 0.25) -> np.ndarray:
    """Square windows jittered around each face (size x0.8-1.25, centre shift up to ``spread``)."""
    out = []
    for b in scene.boxes:
        s = max(b[2] - b[0], b[3] - b[1])
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        size = s * rng.uniform(0.8, 1.25, n)
        dx, dy = rng.uniform(-spread, spread, (2, n)) * s
        out.append(np.stack([cx + dx - size / 2, cy + dy - size / 2, cx + dx + size / 2, cy + dy + size / 2], 1))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 4), np.float32)


def random_windows(h: int, w: int, rng: np.random.Generator, n: int, min_size: int) -> np.ndarray:
    """Square windows anywhere in an image, sizes log-uniform from ``min_size`` to half the short side."""
    hi = max(min_size + 1, min(h, w) // 2)
    size = np.exp(rng.uniform(np.log(min_size), np.log(hi), n))
    x = rng.uniform(0, np.maximum(w - size, 1))
    y = rng.uniform(0, np.maximum(h - size, 1))
    return np.stack([x, y, x + size, y + size], 1).astype(np.float32)


def cut(image: np.ndarray, windows: np.ndarray, size: int) -> np.ndarray:
    """uint8 crops (n, size, size, 3) cut with the detector's roi_align (grey outside) at full resolution;
    the detector's :class:`~polyhead.apps.face.detect.CropPyramid` cuts within ~0.4 grey levels of these."""
    if len(windows) == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    h, w = image.shape[:2]  # normalise only the part the windows cover
    x0, y0 = (int(max(0, np.floor(windows[:, k].min()) - 1)) for k in (0, 1))
    x1, y1 = int(min(w, np.ceil(windows[:, 2].max()) + 1)), int(min(h, np.ceil(windows[:, 3].max()) + 1))
    if x1 <= x0 or y1 <= y0:
        return np.full((len(windows), size, size, 3), 128, np.uint8)
    t = normalise(image[y0:y1, x0:x1])[None]
    shifted = windows - np.array([x0, y0, x0, y0], np.float32)
    rois = torch.cat([torch.zeros(len(windows), 1), torch.from_numpy(shifted)], 1)
    c = crop_windows(t, rois, size) / (1 / 128.0) + 127.5
    return c.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()


# ---------------------------------------------------------------------------------------------- composites
def paste_face(bg: np.ndarray, face: Scene, rng: np.random.Generator, side: float, taken: list) -> Scene | None:
    """Paste the first face of ``face`` onto ``bg`` (in place) at face-box side ``side`` with a feathered
    elliptical mask; returns the pasted box and points, or None if it would overlap an earlier paste."""
    b = face.boxes[0]
    s0 = max(b[2] - b[0], b[3] - b[1])
    k = side / s0
    h, w = bg.shape[:2]
    if side * 1.3 >= min(h, w):
        return None
    cx, cy = rng.uniform(side * 0.65, w - side * 0.65), rng.uniform(side * 0.65, h - side * 0.65)
    new_box = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)
    if taken and iou_matrix(new_box[None], np.array(taken)).max() > 0.0:
        return None
    # similarity: source face centre -> (cx, cy), scale k
    scx, scy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    m = np.array([[k, 0, cx - k * scx], [0, k, cy - k * scy]], np.float32)
    warped = cv2.warpAffine(face.image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mask = np.zeros((h, w), np.float32)
    axes = (max(1, int(side * rng.uniform(0.6, 0.75))), max(1, int(side * rng.uniform(0.7, 0.85))))
    cv2.ellipse(mask, (int(cx), int(cy)), axes, 0, 0, 360, 1.0, -1)
    blur = max(3, int(side * 0.15) | 1)
    mask = cv2.GaussianBlur(mask, (blur, blur), 0)[..., None]
    bg[:] = (bg * (1 - mask) + warped * mask).astype(np.uint8)
    pts = face.points[0] * k + np.array([cx - k * scx, cy - k * scy], np.float32)
    taken.append(new_box)
    return Scene(bg, new_box[None], pts[None])


def composite(
    bg: np.ndarray, faces: list[Scene], rng: np.random.Generator, size: tuple[int, int], min_side: float = 12
) -> Scene:
    """A face-free scene resized to ``size`` (h, w) with the given faces pasted at random scales."""
    h, w = size
    img = cv2.resize(bg, (w, h), interpolation=cv2.INTER_AREA).copy()
    boxes, points, taken = [], [], []
    for f in faces:
        side = float(np.exp(rng.uniform(np.log(min_side), np.log(min(h, w) * 0.6))))
        r = paste_face(img, f, rng, side, taken)
        if r is not None:
            boxes.append(r.boxes[0])
            points.append(r.points[0])
    return Scene(img, np.array(boxes, np.float32).reshape(-1, 4), np.array(points, np.float32).reshape(-1, 5, 2))


# ---------------------------------------------------------------------------------------------- generation
@dataclass
class Samples:
    """Windows of one stage: uint8 images (n, s, s, 3), labels, box offsets (n, 4), landmarks (n, 10)."""

    images: np.ndarray
    label: np.ndarray
    box: np.ndarray
    lmk: np.ndarray

    def __len__(self) -> int:
        return len(self.label)

    @classmethod
    def concat(cls, parts: list[Samples], size: int) -> Samples:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls(
                np.zeros((0, size, size, 3), np.uint8),
                np.zeros(0, np.int8),
                np.zeros((0, 4), np.float32),
                np.zeros((0, 10), np.float32),
            )
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("images", "label", "box", "lmk")))

    def counts(self) -> dict[str, int]:
        return {
            "face": int((self.label == 1).sum()),
            "part": int((self.label == -1).sum()),
            "non_face": int((self.label == 0).sum()),
            "with_landmarks": int(np.isfinite(self.lmk).all(1).sum()),
        }

    def save(self, path: Path) -> Path:
        from polyhead.io.writers import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, images=self.images, label=self.label, box=self.box, lmk=self.lmk)
        return path

    @classmethod
    def load(cls, path: Path) -> Samples:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["images"], z["label"], z["box"], z["lmk"])


def windows_from_scene(
    scene: Scene,
    size: int,
    rng: np.random.Generator,
    n_face: int,
    n_neg: int,
    n_part: int | None = None,
    min_face: float = 0.0,
) -> Samples:
    """Face, part-face and non-face windows of one scene; only faces at least ``min_face`` px tall get
    face windows, but every face labels the windows (so none becomes a negative)."""
    h, w = scene.image.shape[:2]
    parts = []
    big = (scene.boxes[:, 3] - scene.boxes[:, 1]) >= min_face if len(scene.boxes) else np.zeros(0, bool)
    if big.any():
        around = Scene(scene.image, scene.boxes[big], scene.points[big])
        wins = np.concatenate([face_windows(around, rng, n_face * 3, 0.12), face_windows(around, rng, n_face * 2, 0.3)])
        label, box, lmk = label_windows(wins, scene)
        pos = np.nonzero(label == 1)[0][: n_face * int(big.sum())]
        part = np.nonzero(label == -1)[0][: (n_part if n_part is not None else n_face) * int(big.sum())]
        keep = np.concatenate([pos, part])
        parts.append(Samples(cut(scene.image, wins[keep], size), label[keep], box[keep], lmk[keep]))
    if n_neg:
        wins = random_windows(h, w, rng, n_neg * 2, min(size, 12) if size <= 12 else 12)
        label, box, lmk = label_windows(wins, scene)
        neg = np.nonzero(label == 0)[0][:n_neg]
        parts.append(Samples(cut(scene.image, wins[neg], size), label[neg], box[neg], lmk[neg]))
    return Samples.concat(parts, size)


def face_scenes(src: FaceSources, split: str, with_utk: bool = True) -> list[Scene]:
    """Every face source of a split as small scenes (one face each for crops and chips)."""
    scenes = []
    for path, pts in src.landmark_items(split):
        img = _read(path)
        if img is not None:
            scenes.append(Scene(img, box_from_points(pts)[None], pts[None]))
    if with_utk:
        nan = np.full((1, 5, 2), np.nan, np.float32)
        for path, _, _ in src.utk_items(split)[:: 2 if split == "train" else 1]:
            img = _read(path)
            if img is not None:
                k = img.shape[0] / 200.0
                scenes.append(Scene(img, np.array([UTK_BOX], np.float32) * k, nan))
    return scenes


def box_scenes(src: FaceSources) -> list[Scene]:
    """Whole photos with labelled boxes (WIDER, RetinaFace, dlib XML training lists)."""
    out = []
    for labels, root in src.wider:
        for path, boxes in read_wider(labels, root):
            img = _read(path)
            if img is not None:
                out.append(Scene(img, boxes, np.full((len(boxes), 5, 2), np.nan, np.float32)))
    for lst in src.retinaface:
        for path, boxes, pts in read_retinaface(lst):
            img = _read(path)
            if img is not None:
                out.append(Scene(img, boxes, pts))
    for labels, root in src.coco:
        out += coco_scenes(labels, root)
    for xml in src.box_xml:
        for path, boxes in read_dlib_xml(xml):
            img = _read(path)
            if img is not None:
                out.append(Scene(img, boxes, np.full((len(boxes), 5, 2), np.nan, np.float32)))
    return out


def voc_scenes(src: FaceSources, split: str, scale: float = 1.0):
    """The VOC photos of a split (hold-out lists excluded, see :meth:`FaceSources.voc_items`) as scenes
    without points, read one at a time; ``scale`` < 1 keeps that share of them (smoke runs)."""
    items = src.voc_items(split)
    if scale < 1:
        items = items[: max(1, int(len(items) * scale))]
    for path, boxes in items:
        img = _read(path)
        if img is not None:
            yield Scene(img, boxes, np.full((len(boxes), 5, 2), np.nan, np.float32))


def coco_scenes(path: Path, images: Path | None = None) -> list[Scene]:
    """Photos of a COCO JSON with their face boxes and, for 5-keypoint categories, landmarks (NaN where
    absent). With several categories only those named ``face`` count; ``iscrowd`` boxes are left out."""
    from polyhead.formats.coco import read_coco
    from polyhead.formats.common import normalise_name

    samples, cats = read_coco(path, images)
    faces = {n for n in cats.values() if len(cats) == 1 or normalise_name(n) == "face"}
    out = []
    for s in samples:
        img = _read(s.image)
        keep = np.array([c in faces for c in s.categories], bool)
        if img is None or s.boxes is None:
            continue
        pts = s.keypoints if s.keypoints is not None else np.full((len(s.boxes), 5, 2), np.nan, np.float32)
        out.append(Scene(img, s.boxes[keep], pts[keep]))
    return out


def generate(
    stage: str, src: FaceSources, split: str = "train", seed: int = 0, scale: float = 1.0, progress: bool = True
) -> Samples:
    """All windows of one stage: crops, whole labelled photos, composites and face-free scenes.

    ``scale`` multiplies every count (small values for smoke runs).
    """
    from polyhead.apps.face.cascade import INPUT_SIZES

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many tiny crops: threads cost more than they give
    try:
        return _generate(stage, src, split, seed, scale, progress, INPUT_SIZES[stage])
    finally:
        torch.set_num_threads(threads)


def _generate(stage: str, src: FaceSources, split: str, seed: int, scale: float, progress: bool, size: int) -> Samples:
    from tqdm import tqdm

    rng = np.random.default_rng(seed + (0 if split == "train" else 1000))
    faces = face_scenes(src, split)
    lmk_faces = [f for f in faces if np.isfinite(f.points).all()]
    bgs = src.background_files()
    if split != "train":
        bgs = [b for b in bgs if in_holdout(b.name, 0.15, src.seed)]
    else:
        bgs = [b for b in bgs if not in_holdout(b.name, 0.15, src.seed)]
    per = {"pnet": (2, 2, 1), "rnet": (2, 2, 1), "onet": (2, 1, 1)}[stage]  # faces, parts, negs per crop
    parts: list[Samples] = []
    n_faces = max(1, int(len(faces) * scale))
    for f in tqdm(faces[:n_faces], desc=f"{stage} {split} crops", disable=not progress, leave=False):
        parts.append(windows_from_scene(f, size, rng, per[0], per[2], per[1]))
    if split == "train":
        for sc in box_scenes(src):
            parts.append(windows_from_scene(sc, size, rng, 8, 40))
    n_voc, neg_voc = VOC_WINDOWS[stage]
    for sc in tqdm(
        voc_scenes(src, split, scale), desc=f"{stage} {split} VOC photos", disable=not progress, leave=False
    ):
        parts.append(windows_from_scene(sc, size, rng, n_voc, neg_voc, min_face=VOC_MIN_FACE))
    bg_images = [_fit(im, 640) for im in (_read(p) for p in bgs) if im is not None]
    mult = STAGE_MULT[stage]  # O-Net windows are ~10x dearer to train on: fewer composites and backgrounds
    n_comp = int((3000 if split == "train" else 400) * scale * mult)
    if bg_images and lmk_faces:
        for _ in tqdm(range(n_comp), desc=f"{stage} {split} composites", disable=not progress, leave=False):
            bg = bg_images[rng.integers(len(bg_images))]
            hw = (int(rng.integers(160, 360)), int(rng.integers(200, 480)))
            picks = [
                faces[i] if rng.random() < 0.2 else lmk_faces[rng.integers(len(lmk_faces))]
                for i in rng.integers(0, len(faces), int(rng.integers(1, 4)))
            ]
            sc = composite(bg, picks, rng, hw, min_side=12)
            parts.append(windows_from_scene(sc, size, rng, 3, 12, 2))
        n_bg = int((24 if split == "train" else 12) * max(scale, 0.05) * 4 * mult)
        for im in bg_images:
            sc = Scene(im, np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32))
            parts.append(windows_from_scene(sc, size, rng, 0, n_bg))
    return Samples.concat(parts, size)


def cached(
    stage: str,
    src: FaceSources,
    split: str,
    cache_dir: str | Path = "runs/face_cache",
    scale: float = 1.0,
    key: str = "",
) -> Samples:
    """:func:`generate` with the arrays cached in ``cache_dir`` (keyed by the sources and settings)."""
    recipe = (stage, split, scale, key, src) if STAGE_MULT[stage] == 1 else (stage, split, scale, key, src, STAGE_MULT)
    recipe += (tuple(src.coco),) if src.coco else ()
    recipe += (src.voc_signature(),) if src.voc else ()
    sig = hashlib.sha1(repr(recipe).encode()).hexdigest()[:10]
    path = Path(cache_dir) / f"{stage}_{split}_{sig}.npz"
    if path.is_file():
        return Samples.load(path)
    s = generate(stage, src, split, scale=scale)
    s.save(path)
    return s
