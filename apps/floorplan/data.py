"""Floor-plan datasets: the R3D layout and the CubiCasa5K layout, read into the same two masks.

* boundary mask: 0 background, 1 wall, 2 door/window
* room mask: 0 background, 1 closet, 2 bathroom, 3 living/kitchen/dining, 4 bedroom, 5 hall, 6 balcony

R3D (``N.jpg``, ``N_wall.png``, ``N_close.png``, ``N_rooms.png``): room colours as in the authors' table;
the two 'not used' colours (224,224,224) and (224,224,128), and any other colour, map to background.
CubiCasa5K (``<id>/F1_scaled.png`` + ``<id>/model.svg``): Wall / Door / Window / Space polygons.

>>> spec = load_spec("datasets/floorplan.yaml")              # doctest: +SKIP
>>> ds = FloorplanDataset(list_items(spec, "train"), augment=True)   # doctest: +SKIP
>>> ds[0]["targets"]["floorplan"].shape                      # doctest: +SKIP
torch.Size([2, 384, 384])
"""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from polyhead.apps.floorplan.model import INPUT_SIZE, ROOM_CLASSES, ROOM_RGB, TASK
from polyhead.dataset_yaml import get_number, read_dataset_yaml
from polyhead.errors import InputError
from polyhead.io.readers import read_image
from polyhead.preprocess import IMAGENET_MEAN, IMAGENET_STD, Letterbox, Norm, to_tensor

#: the keys a floor-plan dataset YAML may hold (any other is a typo and an error naming the nearest)
YAML_KEYS = ("val_count", "seed", "count", "size")

LAYOUTS = ("r3d", "cubicasa", "synthetic")
PAD_WHITE = 255  # plans are drawn on white paper: pad with white, not grey

#: R3D room colours -> room class id (see /work/shared/data/README.md)
R3D_ROOM_COLOURS: dict[tuple[int, int, int], int] = {
    (0, 0, 0): 0,
    (192, 192, 224): 1,  # closet
    (192, 255, 255): 2,  # bathroom / washroom
    (224, 255, 192): 3,  # living room / kitchen / dining room
    (255, 224, 128): 4,  # bedroom
    (255, 160, 96): 5,  # hall
    (255, 224, 224): 6,  # balcony
    (224, 224, 224): 0,  # 'not used' in the authors' table -> background
    (224, 224, 128): 0,  # 'not used' in the authors' table -> background
}
ROOM_COLOURS = ROOM_RGB

#: CubiCasa5K ``Space <Name>`` -> room class id (names compared in lower case, first match wins)
CUBICASA_ROOMS: list[tuple[tuple[str, ...], int]] = [
    (("bedroom", "bed"), 4),
    (("closet", "storage", "walkin", "wardrobe", "cloth"), 1),
    (("bath", "sauna", "toilet", "wc", "shower", "wash", "utility"), 2),
    (("living", "kitchen", "dining", "lounge", "dayroom", "library", "office", "room"), 3),
    (("entry", "hall", "lobby", "corridor", "draught", "vestibule", "stair"), 5),
    (("outdoor", "balcony", "terrace", "porch", "veranda", "patio", "deck"), 6),
]


@dataclass
class DatasetSpec:
    """A parsed dataset YAML."""

    root: Path
    layout: str = "r3d"
    val_count: int = 20
    seed: int = 0
    source: Path | None = None
    count: int = 0  # synthetic: how many plans
    size: int = 400  # synthetic: plan side in px


def load_spec(path: str | Path) -> DatasetSpec:
    """Parse a dataset YAML: ``format`` (r3d | cubicasa), ``path`` (relative to the YAML), ``val_count``, ``seed``."""
    path = Path(path)
    raw, root, layout = read_dataset_yaml(path, LAYOUTS, "r3d", root_must_exist=False, keys=YAML_KEYS)
    if layout != "synthetic" and not root.is_dir():
        raise InputError(root, f"dataset root from {path.name} does not exist")
    val_count = get_number(raw, "val_count", path, 20, int, lo=0)
    spec = DatasetSpec(root, layout, val_count, get_number(raw, "seed", path, 0, int), path)
    spec.count = get_number(raw, "count", path, 400, int, lo=1)
    spec.size = get_number(raw, "size", path, 400, int, lo=64, hi=8192)
    return spec


@dataclass
class PlanItem:
    """One plan on disk: its image and the label files of its layout."""

    name: str
    image: Path
    layout: str
    labels: dict[str, Path] = field(default_factory=dict)


def list_all(spec: DatasetSpec) -> list[PlanItem]:
    """Every labelled plan under the root, sorted by name."""
    items: list[PlanItem] = []
    if spec.layout == "synthetic":  # generated on the fly from (seed, index): nothing on disk
        return [
            PlanItem(f"synthetic_{i}", Path(f"{spec.seed}:{i}:{spec.size}"), "synthetic") for i in range(spec.count)
        ]
    if spec.layout == "r3d":
        for img in sorted(spec.root.glob("*.jpg")):
            labels = {k: img.with_name(f"{img.stem}_{k}.png") for k in ("wall", "close", "rooms")}
            if all(p.is_file() for p in labels.values()):
                items.append(PlanItem(img.stem, img, "r3d", labels))
    else:
        for svg in sorted(spec.root.rglob("model.svg")):
            img = svg.with_name("F1_scaled.png")
            if img.is_file():
                items.append(PlanItem(svg.parent.name, img, "cubicasa", {"svg": svg}))
    if not items:
        raise InputError(spec.root, f"no labelled {spec.layout} plans found")
    return items


def split_names(names: list[str], val_count: int, seed: int) -> tuple[list[str], list[str]]:
    """Seeded train/val split: ``val_count`` names drawn at random, both lists sorted.

    >>> split_names([str(i) for i in range(5)], 2, 0)
    (['0', '1', '2'], ['3', '4'])
    """
    val = set(random.Random(seed).sample(sorted(names), min(val_count, len(names))))
    return sorted(n for n in names if n not in val), sorted(n for n in names if n in val)


def list_items(spec: DatasetSpec, split: str) -> list[PlanItem]:
    """Plans of ``split`` (``train``, ``val`` or ``all``) under the spec's seeded split."""
    items = list_all(spec)
    if split == "all":
        return items
    train, val = split_names([i.name for i in items], spec.val_count, spec.seed)
    if split not in ("train", "val"):
        raise InputError(spec.source, f"unknown split '{split}'; use train, val or all")
    keep = set(train if split == "train" else val)
    return [i for i in items if i.name in keep]


# ---------------------------------------------------------------- readers
def _read_mask(path: Path) -> np.ndarray:
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise InputError(path, "not a readable mask image")
    return m


def read_r3d(item: PlanItem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rgb, boundary, room)`` of an R3D plan; every file must have the image's size."""
    rgb = read_image(item.image)
    h, w = rgb.shape[:2]
    masks = {}
    for key, path in item.labels.items():
        m = _read_mask(path)
        if m.shape[:2] != (h, w):
            raise InputError(path, f"mask is {m.shape[1]}x{m.shape[0]}, image is {w}x{h}")
        masks[key] = m
    boundary = np.zeros((h, w), np.uint8)
    wall = masks["wall"] if masks["wall"].ndim == 2 else masks["wall"].max(2)
    close = masks["close"] if masks["close"].ndim == 2 else masks["close"].max(2)
    boundary[wall > 127] = 1
    boundary[close > 127] = 2
    return rgb, boundary, r3d_rooms(masks["rooms"])


def r3d_rooms(bgr: np.ndarray) -> np.ndarray:
    """An R3D ``_rooms.png`` (as read by OpenCV, BGR) -> room ids; unknown colours are background."""
    if bgr.ndim == 2:
        return np.zeros(bgr.shape, np.uint8)
    rgb = bgr[..., 2::-1].astype(np.int32)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    out = np.zeros(code.shape, np.uint8)
    for (r, g, b), cls in R3D_ROOM_COLOURS.items():
        if cls:
            out[code == ((r << 16) | (g << 8) | b)] = cls
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _points(text: str | None, svg: Path, what: str) -> np.ndarray:
    nums = _NUM.findall(text or "")
    leftover = _NUM.sub("", text or "").replace(",", "").strip()
    if leftover or len(nums) < 6 or len(nums) % 2:
        raise InputError(svg, f"{what}: malformed polygon points {str(text)[:40]!r}")
    return np.array(nums, np.float64).reshape(-1, 2)


def cubicasa_room_class(name: str) -> int:
    """``Space`` sub-class (e.g. ``LivingRoom``) -> room id; unknown names are background."""
    low = name.lower()
    for keys, cls in CUBICASA_ROOMS:
        if any(k in low for k in keys):
            return cls
    return 0


def parse_cubicasa_svg(svg: Path) -> list[tuple[str, int, np.ndarray]]:
    """Polygons ``(kind, room_id, points)`` with kind in wall/door/window/space, in SVG pixel units.

    Only ``<polygon>`` children directly under a ``<g class="Wall|Door|Window|Space ...">`` count (a
    window nested in a wall is its own group). A file that is not XML, or a polygon without proper
    points, raises :class:`InputError` naming the file and the element.
    """
    try:
        root = ET.parse(svg).getroot()
    except ET.ParseError as e:
        raise InputError(svg, f"not valid SVG/XML ({e})") from None
    except OSError as e:
        raise InputError(svg, f"cannot read ({e.strerror})") from None
    out: list[tuple[str, int, np.ndarray]] = []
    for el in root.iter():
        classes = (el.get("class") or "").split()
        if _local(el.tag) != "g" or not classes or classes[0] not in ("Wall", "Door", "Window", "Space"):
            continue
        kind = classes[0].lower()
        room = cubicasa_room_class(" ".join(classes[1:])) if kind == "space" else 0
        what = f'<g class="{" ".join(classes)}"' + (f' id="{el.get("id")}">' if el.get("id") else ">")
        polys = [c for c in el if _local(c.tag) == "polygon"]
        if not polys and kind in ("wall", "space"):
            raise InputError(svg, f"{what} has no <polygon> child")
        for p in polys:
            out.append((kind, room, _points(p.get("points"), svg, what)))
    return out


def _fill(mask: np.ndarray, pts: np.ndarray, value: int) -> None:
    """Set the pixels whose centres lie inside the polygon (SVG coordinates: pixel corners are integers)."""
    from skimage.draw import polygon

    rr, cc = polygon(pts[:, 1] - 0.5, pts[:, 0] - 0.5, mask.shape)
    mask[rr, cc] = value


def rasterise_cubicasa(svg: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """SVG polygons -> ``(boundary, room)`` masks of ``size = (h, w)``: rooms first, walls, then openings."""
    h, w = size
    boundary = np.zeros((h, w), np.uint8)
    room = np.zeros((h, w), np.uint8)
    polys = parse_cubicasa_svg(svg)
    for kind, cls, pts in polys:
        if kind == "space" and cls:
            _fill(room, pts, cls)
    for kinds, value in ((("wall",), 1), (("door", "window"), 2)):
        for kind, _, pts in polys:
            if kind in kinds:
                _fill(boundary, pts, value)
    return boundary, room


def read_cubicasa(item: PlanItem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rgb = read_image(item.image)
    boundary, room = rasterise_cubicasa(item.labels["svg"], rgb.shape[:2])
    return rgb, boundary, room


def read_plan(item: PlanItem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rgb uint8, boundary ids uint8, room ids uint8)`` at the image's size."""
    if item.layout == "synthetic":
        from polyhead.apps.floorplan.synthetic import synthetic_plan

        seed, index, side = (int(v) for v in str(item.image).split(":"))
        plan = synthetic_plan(np.random.default_rng([seed, index]), (side, side))
        return plan.image, plan.boundary, plan.room
    return read_r3d(item) if item.layout == "r3d" else read_cubicasa(item)


# ---------------------------------------------------------------- dataset
def build_augment():
    """Flips, 90-degree turns, mild scale/shift and photometric jitter, applied to image and masks together."""
    import albumentations as A

    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.Affine(
                scale=(0.8, 1.1),
                translate_percent=(-0.05, 0.05),
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST,
                fill=PAD_WHITE,
                fill_mask=0,
                p=0.5,
            ),
            A.RandomBrightnessContrast(0.2, 0.2, p=0.5),
            A.HueSaturationValue(10, 20, 10, p=0.3),
            A.GaussNoise(std_range=(0.01, 0.04), p=0.2),
            A.ImageCompression(quality_range=(50, 95), p=0.2),
        ]
    )


def prepare(
    rgb: np.ndarray,
    boundary: np.ndarray,
    room: np.ndarray,
    imgsz: tuple[int, int],
    norm: Norm = (IMAGENET_MEAN, IMAGENET_STD),
) -> tuple[torch.Tensor, torch.Tensor, Letterbox]:
    """Letterbox (white padding) to ``imgsz`` -> image tensor normalised by ``norm``, ``(2, H, W)`` long target."""
    lb = Letterbox.fit(rgb.shape[:2], imgsz)
    img = lb.apply(rgb, value=PAD_WHITE)
    b = lb.apply(boundary, interpolation=cv2.INTER_NEAREST, value=0)
    r = lb.apply(room, interpolation=cv2.INTER_NEAREST, value=0)
    return to_tensor(img, *norm), torch.from_numpy(np.stack([b, r]).astype(np.int64)), lb


class FloorplanDataset(Dataset):
    """Plans as ``{"image", "targets": {"floorplan": (2, H, W)}, "name", "inner"}``; unreadable plans give
    ``None`` (the trainer skips them) and are listed in ``bad``. Decoded plans are cached in memory,
    downscaled so their long side is at most 1.25x the input's (cheap epochs on a CPU)."""

    def __init__(
        self,
        items: list[PlanItem],
        imgsz: tuple[int, int] = INPUT_SIZE,
        augment: bool = False,
        cache: bool = True,
        norm: Norm = (IMAGENET_MEAN, IMAGENET_STD),
    ):
        self.items = list(items)
        self.norm = norm
        self.imgsz = tuple(imgsz)
        self.augment = build_augment() if augment else None
        self.cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = {} if cache else None
        self.bad: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.items)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        rgb, b, r = read_plan(self.items[i])
        limit = 1.25 * max(self.imgsz)
        scale = limit / max(rgb.shape[:2])
        if scale < 1:
            size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            b = cv2.resize(b, size, interpolation=cv2.INTER_NEAREST)
            r = cv2.resize(r, size, interpolation=cv2.INTER_NEAREST)
        if self.cache is not None:
            self.cache[i] = (rgb, b, r)
        return rgb, b, r

    def __getitem__(self, i: int) -> dict | None:
        item = self.items[i]
        try:
            rgb, b, r = self.load(i)
        except InputError as e:
            self.bad[item.name] = e.problem
            return None
        if self.augment is not None:
            out = self.augment(image=rgb, mask=np.stack([b, r], -1))
            rgb, b, r = out["image"], out["mask"][..., 0], out["mask"][..., 1]
        x, target, lb = prepare(rgb, b, r, self.imgsz, self.norm)
        return {"image": x, "targets": {TASK: target}, "name": item.name, "inner": lb.inner}

    def class_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel counts per boundary class and per room class over the (unaugmented) plans."""
        cb, cr = np.zeros(3, np.int64), np.zeros(len(ROOM_CLASSES), np.int64)
        for i in range(len(self)):
            try:
                _, b, r = self.load(i)
            except InputError:
                continue
            cb += np.bincount(b.ravel(), minlength=3)[:3]
            cr += np.bincount(r.ravel(), minlength=len(ROOM_CLASSES))[: len(ROOM_CLASSES)]
        return cb, cr
