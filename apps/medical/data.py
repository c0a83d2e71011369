"""Medical datasets: a plain folder layout (images/, masks/, labels.csv, optional field-of-view masks)
and the nnU-Net raw layout (imagesTr/, labelsTr/, dataset.json with NIfTI volumes, sliced 2-D).

A dataset YAML (paths relative to the YAML)::

    format: folders              # or nnunet
    path: ../../shared/data/medical/ph2
    images: images
    masks: masks                 # optional: image-level labels only
    labels: diagnosis.csv        # optional: first column = image key, second = class name
    fov: null                    # optional field-of-view masks: pixels outside are ignored
    key: null                    # optional regex; group 1 of it pairs files across folders ('^(\\d+)_')
    invert_masks: false          # binary masks whose foreground is dark (ISBI 2012: 0 = membrane)
    keep_largest: false          # one object per image (a skin lesion): keep the largest predicted region
    classes: [background, lesion]
    diagnosis: [common_nevus, atypical_nevus, melanoma]
    input: {mode: resize, size: [256, 320]}   # or {mode: patch, size: [192, 192]} (sliding window)
    split: {val_fraction: 0.2, seed: 0}       # or {val: [key, ...]}
    fov_diameter: null           # fundus: rescale every image so its field of view is this many pixels wide
                                 # (``fov: red`` finds the FOV by thresholding the red channel, as for STARE)

``format: isic2017`` reads the ISIC 2017 layout: ``{train,val}/images``, ``{train,val}/labels.csv``
(``image_id,melanoma`` with 1.0 / 0.0), optional ``{train,val}/metadata.csv`` (age, sex) and
``{train,val}/masks`` (``<image_id>[_segmentation].png``); the split is the official one (the folders).

>>> spec = load_spec("datasets/medical-ph2.yaml")          # doctest: +SKIP
>>> ds = MedicalDataset(spec, "train", augment=True)      # doctest: +SKIP
>>> sorted(ds[0]["targets"])                              # doctest: +SKIP
['diagnosis', 'mask']
"""

from __future__ import annotations

import csv
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from polyhead.dataset_yaml import get_bool, get_mapping, get_names, get_number, get_regex, get_str, read_dataset_yaml
from polyhead.errors import InputError
from polyhead.heads.segmentation import IGNORE_INDEX
from polyhead.io.readers import IMAGE_SUFFIXES, read_image
from polyhead.preprocess import IMAGENET_MEAN, IMAGENET_STD, Norm, apply_contrast, to_tensor

LAYOUTS = ("folders", "nnunet", "isic2017")
ISIC_CLASSES = ["not_melanoma", "melanoma"]
MASK_SUFFIXES = {".png", ".tif", ".tiff", ".gif", ".jpg", ".jpeg", ".bmp"}
NIFTI_SUFFIXES = (".nii", ".nii.gz")
HEADER_KEYS = {"case", "image", "id", "name", "key", "file", "filename"}
#: every key a medical dataset YAML may hold (anything else is a typo and an error)
YAML_KEYS = (
    "images", "masks", "labels", "fov", "key", "classes", "diagnosis", "input", "split", "slice_axis",
    "invert_masks", "keep_largest", "fov_diameter",
)  # fmt: skip


@dataclass
class MedicalSpec:
    """A parsed medical dataset YAML."""

    root: Path
    layout: str = "folders"
    images: str = "images"
    masks: str | None = "masks"
    labels: str | None = None
    fov: str | None = None
    key: str | None = None
    classes: list[str] = field(default_factory=lambda: ["background", "foreground"])
    diagnosis: list[str] = field(default_factory=list)
    input_mode: str = "resize"
    input_size: tuple[int, int] = (256, 320)
    input_contrast: str | None = None  # ``input.contrast``: "clahe" equalises each image first (fundus)
    split: dict = field(default_factory=lambda: {"val_fraction": 0.2, "seed": 0})
    slice_axis: int = 2
    invert_masks: bool = False
    keep_largest: bool = False
    source: Path | None = None
    fov_from_red: bool = False  # no FOV masks: threshold the red channel (``fov: red``)
    fov_diameter: float | None = None  # rescale each image so its FOV is this wide (pixels)


def load_spec(path: str | Path) -> MedicalSpec:
    """Parse and check a dataset YAML (see the module docstring)."""
    path = Path(path)
    raw, root, layout = read_dataset_yaml(path, LAYOUTS, "folders", keys=YAML_KEYS)
    inp = get_mapping(raw, "input", path, known=("mode", "size", "contrast"))
    mode = get_str(inp, "mode", path, "resize")
    if mode not in ("resize", "patch"):
        raise InputError(path, f"input.mode must be 'resize' or 'patch', got {mode!r}")
    size = inp.get("size", [256, 320])
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 32 and v % 32 == 0 for v in size)
    ):
        raise InputError(path, f"input.size must be [H, W], positive multiples of 32, got {size!r}")
    classes = get_names(raw, "classes", path, ["background", "foreground"])
    if layout != "nnunet" and len(classes) < 2:
        raise InputError(path, f"'classes' needs the background and at least one class, got {classes}")
    split = get_mapping(raw, "split", path, known=("val", "val_fraction", "seed")) or {"val_fraction": 0.2, "seed": 0}
    if layout == "isic2017":
        if raw.get("split"):
            raise InputError(path, "format isic2017 uses the official train/val folders; remove 'split'")
        split = {"official": True}
    elif "val" in split:
        get_names(split, "val", path)
    else:
        get_number(split, "val_fraction", path, 0.2, float, 0.0, 0.9)
        get_number(split, "seed", path, 0, int, 0)
    spec = MedicalSpec(
        root=root,
        layout=layout,
        images=get_str(raw, "images", path, "imagesTr" if layout == "nnunet" else "images"),  # type: ignore[arg-type]
        masks=get_str(raw, "masks", path, "labelsTr" if layout == "nnunet" else "masks"),
        labels=get_str(raw, "labels", path),
        fov=None if get_str(raw, "fov", path) == "red" else get_str(raw, "fov", path),
        fov_from_red=get_str(raw, "fov", path) == "red",
        fov_diameter=get_number(raw, "fov_diameter", path, 0.0, float, 32.0, 20000.0)
        if raw.get("fov_diameter") is not None
        else None,
        key=get_regex(raw, "key", path),
        classes=classes,
        diagnosis=get_names(raw, "diagnosis", path, ISIC_CLASSES if layout == "isic2017" else None),
        input_mode=mode,
        input_size=tuple(size),  # type: ignore[arg-type]
        input_contrast=input_contrast(inp, path),
        split=dict(split),
        slice_axis=get_number(raw, "slice_axis", path, 2, int, 0, 2),
        invert_masks=get_bool(raw, "invert_masks", path, False),
        keep_largest=get_bool(raw, "keep_largest", path, False),
        source=path,
    )
    if layout == "nnunet":
        _apply_dataset_json(spec)
    if spec.labels and not spec.diagnosis:  # class names from the CSV itself, sorted
        spec.diagnosis = sorted({v for v in read_labels(root / spec.labels, None).values()})
    return spec


def input_contrast(inp: dict, path: Path) -> str | None:
    """The ``input.contrast`` of a dataset YAML's ``input`` mapping (None when absent), checked."""
    from polyhead.preprocess import CONTRASTS

    value = get_str(inp, "contrast", path)
    if value is not None and value not in CONTRASTS:
        raise InputError(path, f"input.contrast must be one of {', '.join(CONTRASTS)}, got {value!r}")
    return value


def _apply_dataset_json(spec: MedicalSpec) -> None:
    """nnU-Net's ``dataset.json``: ``labels`` {name: id} gives the class list."""
    path = spec.root / "dataset.json"
    if not path.is_file():
        raise InputError(path, "nnU-Net layout needs dataset.json")
    try:
        meta = json.loads(path.read_text())
        labels = {str(k): int(v) for k, v in meta["labels"].items()}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise InputError(path, f"dataset.json has no valid 'labels' mapping ({type(e).__name__}: {e})") from None
    names = [n for n, _ in sorted(labels.items(), key=lambda kv: kv[1])]
    if sorted(labels.values()) != list(range(len(names))):
        raise InputError(path, f"label ids must be 0..{len(names) - 1}, got {sorted(labels.values())}")
    spec.classes = names


def read_labels(path: Path, classes: list[str] | None) -> dict[str, str]:
    """``key,class`` rows (a header row is skipped) -> {key: class}; unknown classes name the line."""
    if not path.is_file():
        raise InputError(path, "labels CSV not found")
    out: dict[str, str] = {}
    with open(path, newline="") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise InputError(path, f"line {n}: expected 'key,class', got {row!r}")
            key, label = row[0].strip(), row[1].strip()
            if n == 1 and key.lower() in HEADER_KEYS:
                continue
            if classes is not None and label not in classes:
                raise InputError(path, f"line {n}: unknown label '{label}'; known: {', '.join(classes)}")
            out[key] = label
    return out


def read_mask(path: Path, num_classes: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """A mask file -> (H, W) uint8 class ids. Binary masks (0/255, JPEG-noisy too) threshold at 128;
    multi-class masks hold class ids. Raises InputError for unreadable files, wrong size, unknown ids."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            m = np.asarray(im.convert("L") if im.mode not in ("L", "P", "I", "I;16") else im)
    except Exception as e:  # PIL (and ultralytics' patch of Image.open) raise many types on junk
        raise InputError(path, f"cannot read mask ({type(e).__name__})") from None
    if m.ndim == 3:
        m = m[..., 0]
    if size is not None and m.shape[:2] != tuple(size):
        raise InputError(path, f"mask is {m.shape[1]}x{m.shape[0]} but its image is {size[1]}x{size[0]}")
    if num_classes == 2:
        return (m >= (128 if m.max() > 1 else 1)).astype(np.uint8)
    bad = np.unique(m[m >= num_classes])
    if bad.size:
        raise InputError(path, f"class ids {bad.tolist()[:5]} out of range for {num_classes} classes")
    return m.astype(np.uint8)


@dataclass
class Item:
    """One 2-D sample: an image file (or a volume slice) with whatever labels exist."""

    key: str
    image: Path
    mask: Path | None = None
    fov: Path | None = None
    label: str | None = None
    slice_index: int | None = None  # nnU-Net: slice of the volume along spec.slice_axis
    subset: str | None = None  # the official split folder (ISIC 2017: train / val)
    meta: dict = field(default_factory=dict)  # e.g. ISIC age_approximate, sex


def _key(stem: str, pattern: str | None) -> str:
    if not pattern:
        return stem
    m = re.search(pattern, stem)
    return m.group(1) if m and m.groups() else (m.group(0) if m else stem)


def _stem(p: Path) -> str:
    name = p.name
    for suf in (".nii.gz", ".nii"):
        if name.endswith(suf):
            return name[: -len(suf)]
    return p.stem


def _files(folder: Path, suffixes) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(tuple(suffixes)))


def list_items(spec: MedicalSpec) -> list[Item]:
    """Every sample with its labels; files pair across folders by stem (or by ``key`` regex)."""
    img_dir = spec.root / spec.images
    if spec.layout == "isic2017":
        return isic_items(spec)
    if not img_dir.is_dir():
        raise InputError(img_dir, "images folder not found")
    if spec.layout == "nnunet":
        return _nnunet_items(spec, img_dir)
    masks = {}
    if spec.masks and (spec.root / spec.masks).is_dir():
        masks = {_key(p.stem, spec.key): p for p in _files(spec.root / spec.masks, MASK_SUFFIXES)}
    fovs = {}
    if spec.fov:
        fovs = {_key(p.stem, spec.key): p for p in _files(spec.root / spec.fov, MASK_SUFFIXES)}
    labels = read_labels(spec.root / spec.labels, spec.diagnosis or None) if spec.labels else {}
    items = []
    for p in _files(img_dir, IMAGE_SUFFIXES):
        k = _key(p.stem, spec.key)
        items.append(Item(k, p, masks.get(k), fovs.get(k), labels.get(k)))
    if not items:
        raise InputError(img_dir, "no images found")
    return items


def isic_items(spec: MedicalSpec) -> list[Item]:
    """ISIC 2017 (see the module docstring): every image of ``train/`` and ``val/`` with its melanoma label,
    metadata and, where a ``masks`` folder exists, its lesion mask.

    >>> items = isic_items(load_spec("datasets/medical-isic2017.yaml"))    # doctest: +SKIP
    >>> items[0].label, items[0].subset, items[0].meta["sex"]              # doctest: +SKIP
    ('not_melanoma', 'train', 'female')
    """
    items: list[Item] = []
    for subset in ("train", "val"):
        folder = spec.root / subset
        img_dir = folder / spec.images
        if not img_dir.is_dir():
            raise InputError(img_dir, "ISIC 2017 images folder not found (expected train/images and val/images)")
        labels = _read_isic_labels(folder / "labels.csv", spec.diagnosis)
        meta = _read_isic_metadata(folder / "metadata.csv")
        masks = {}
        if spec.masks and (folder / spec.masks).is_dir():
            masks = {re.sub(r"_segmentation$", "", p.stem): p for p in _files(folder / spec.masks, MASK_SUFFIXES)}
        for p in _files(img_dir, IMAGE_SUFFIXES):
            if p.stem not in labels:
                raise InputError(folder / "labels.csv", f"no label for image {p.stem}")
            items.append(
                Item(p.stem, p, masks.get(p.stem), None, labels[p.stem], subset=subset, meta=meta.get(p.stem, {}))
            )
    if not items:
        raise InputError(spec.root, "no ISIC images found")
    return items


def _read_isic_labels(path: Path, classes: list[str]) -> dict[str, str]:
    """``image_id,melanoma`` rows (1.0 / 0.0) -> {image_id: class name} (``classes`` = [negative, positive])."""
    if not path.is_file():
        raise InputError(path, "ISIC labels CSV not found")
    if len(classes) != 2:
        raise InputError(path, f"ISIC melanoma labels are binary; 'diagnosis' must name 2 classes, got {classes}")
    out: dict[str, str] = {}
    with open(path, newline="") as f:
        rows = csv.DictReader(f)
        if not rows.fieldnames or not {"image_id", "melanoma"} <= set(rows.fieldnames):
            raise InputError(path, f"expected columns image_id,melanoma; got {rows.fieldnames}")
        for n, row in enumerate(rows, 2):
            try:
                value = float(row["melanoma"])
            except (TypeError, ValueError):
                value = -1.0
            if value not in (0.0, 1.0):
                raise InputError(path, f"line {n}: melanoma must be 1.0 or 0.0, got {row['melanoma']!r}")
            out[row["image_id"].strip()] = classes[int(value)]
    return out


def _read_isic_metadata(path: Path) -> dict[str, dict]:
    """``image_id,age_approximate,sex`` -> {image_id: {"age": float | None, "sex": str | None}} ({} if absent)."""
    if not path.is_file():
        return {}
    out: dict[str, dict] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            age = (row.get("age_approximate") or "").strip()
            sex = (row.get("sex") or "").strip()
            try:
                age_v = float(age)
            except ValueError:
                age_v = None
            out[(row.get("image_id") or "").strip()] = {"age": age_v, "sex": None if sex in ("", "unknown") else sex}
    return out


def _nnunet_items(spec: MedicalSpec, img_dir: Path) -> list[Item]:
    from polyhead.apps.medical.volume import volume_shape

    items = []
    lab_dir = spec.root / (spec.masks or "labelsTr")
    for p in _files(img_dir, NIFTI_SUFFIXES):
        case = re.sub(r"_\d{4}$", "", _stem(p))  # nnU-Net: CASE_0000.nii.gz is channel 0 of CASE
        if _stem(p) != case + "_0000" and re.search(r"_\d{4}$", _stem(p)):
            continue  # other modalities: channel 0 only
        lab = next((q for q in (lab_dir / f"{case}.nii.gz", lab_dir / f"{case}.nii") if q.is_file()), None)
        for z in range(volume_shape(p)[spec.slice_axis]):
            items.append(Item(f"{case}:{z}", p, lab, None, None, z))
    if not items:
        raise InputError(img_dir, "no NIfTI volumes (*.nii, *.nii.gz) found")
    return items


def split_items(items: list[Item], spec: MedicalSpec, split: str) -> list[Item]:
    """The seeded, label-stratified train/val split (by case, so slices of a volume stay together)."""
    if split not in ("train", "val", "all"):
        raise InputError(spec.source, f"unknown split '{split}'; use train, val or all")
    if split == "all":
        return items
    if spec.split.get("official"):
        return [it for it in items if it.subset == split]
    cases = sorted({it.key.split(":")[0] for it in items})
    if "val" in spec.split:
        val = {str(v) for v in spec.split["val"]}
        unknown = val - set(cases)
        if unknown:
            raise InputError(spec.source, f"split.val names unknown keys {sorted(unknown)[:5]}")
    else:
        rng = np.random.default_rng(int(spec.split.get("seed", 0)))
        frac = float(spec.split.get("val_fraction", 0.2))
        by_label: dict[str | None, list[str]] = {}
        label_of = {it.key.split(":")[0]: it.label for it in items}
        for c in cases:
            by_label.setdefault(label_of[c], []).append(c)
        val = set()
        for group in by_label.values():
            order = rng.permutation(len(group))
            val |= {group[i] for i in order[: max(1, round(frac * len(group)))]} if len(group) > 1 else set()
    keep = (lambda c: c in val) if split == "val" else (lambda c: c not in val)
    return [it for it in items if keep(it.key.split(":")[0])]


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Grey, RGBA or 16-bit -> RGB uint8 (volume slices are already scaled to 0..255)."""
    if image.dtype != np.uint8:
        lo, hi = np.percentile(image, (0.5, 99.5)) if image.size else (0, 1)
        image = np.clip((image.astype(np.float32) - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, -1)
    return image[..., :3]


def build_augment(mode: str, size: tuple[int, int]):
    """One albumentations pipeline that moves the image, the mask and the field of view together."""
    import albumentations as A

    h, w = size
    geometric = [A.HorizontalFlip(), A.VerticalFlip()]
    if h == w:  # a quarter turn keeps the shape only for square inputs
        geometric.append(A.RandomRotate90())
    photometric = [A.RandomBrightnessContrast(0.15, 0.15, p=0.5), A.HueSaturationValue(5, 10, 5, p=0.3)]
    if mode == "patch":
        crop = [A.PadIfNeeded(h, w, border_mode=cv2.BORDER_REFLECT_101), A.RandomCrop(h, w)]
        return A.Compose([*crop, *geometric, *photometric])
    affine = A.Affine(scale=(0.85, 1.15), rotate=(-20, 20), translate_percent=(-0.05, 0.05), p=0.7)
    return A.Compose([A.Resize(h, w), *geometric, affine, *photometric])


class MedicalDataset(Dataset):
    """Samples ``{"image": (3, H, W), "targets": {"mask": (H, W) long | None, "diagnosis": () long | None},
    "name"}``. ``resize`` mode resizes whole images to the input size; ``patch`` mode takes random
    patches (training) at native resolution. Pixels outside the field of view are ``IGNORE_INDEX``.
    Bad files give ``None`` (skipped and counted by the Trainer) and are listed in ``bad``."""

    def __init__(
        self,
        spec: MedicalSpec,
        split: str,
        augment: bool = False,
        patches_per_image: int = 1,
        norm: Norm = (IMAGENET_MEAN, IMAGENET_STD),
    ):
        self.spec = spec
        self.norm = norm
        self.items = split_items(list_items(spec), spec, split)
        self.augment = build_augment(spec.input_mode, spec.input_size) if augment else None
        self.repeat = patches_per_image if (augment and spec.input_mode == "patch") else 1
        self.bad: dict[str, str] = {}
        self._volumes: dict[Path, object] = {}
        #: decoded (and FOV-rescaled) samples of patch-mode sets, which read each image many times per epoch
        self._cache: dict[int, tuple] = {}
        self.cache = spec.input_mode == "patch"

    def __len__(self) -> int:
        return len(self.items) * self.repeat

    @property
    def num_classes(self) -> int:
        return len(self.spec.classes)

    def load_raw(self, i: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, int | None]:
        """RGB image, class-id mask (or None), FOV (or None) and diagnosis id (or None): original pixels, or
        rescaled so the field of view is ``spec.fov_diameter`` wide when that is set."""
        if i in self._cache:
            return self._cache[i]
        raw = self._load_raw(i)
        if self.cache:
            self._cache[i] = raw
        return raw

    def _load_raw(self, i: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, int | None]:
        it = self.items[i]
        if it.slice_index is not None:
            img, mask = self._slice(it)
            fov = None
        else:
            img = to_rgb(read_image(it.image))
            size = img.shape[:2]
            mask = read_mask(it.mask, self.num_classes, size) if it.mask else None
            if mask is not None and self.spec.invert_masks:
                mask = 1 - mask
            fov = read_mask(it.fov, 2, size) if it.fov else None
            if fov is None and self.spec.fov_from_red:
                from polyhead.apps.medical.fov import fov_from_red

                fov = fov_from_red(img)
                if not fov.any():
                    raise InputError(it.image, "no field of view found (red channel dark everywhere)")
            if self.spec.fov_diameter:
                from polyhead.apps.medical.fov import fov_scale, rescale

                if fov is None:
                    raise InputError(it.image, "fov_diameter needs a field of view: set 'fov' (a folder or 'red')")
                try:
                    factor = fov_scale(fov, self.spec.fov_diameter)
                except ValueError:
                    raise InputError(it.fov or it.image, "field-of-view mask is empty") from None
                img, mask, fov = rescale(img, mask, fov, factor)
        label = self.spec.diagnosis.index(it.label) if it.label is not None else None
        return img, mask, fov, label

    def _slice(self, it: Item) -> tuple[np.ndarray, np.ndarray | None]:
        from polyhead.apps.medical.volume import read_volume, take_slice, volume_to_uint8

        if it.image not in self._volumes:
            vol = read_volume(it.image)
            lab = read_volume(it.mask) if it.mask else None
            if lab is not None and lab.data.shape != vol.data.shape:
                raise InputError(it.mask, f"label volume {lab.data.shape} does not match image {vol.data.shape}")
            self._volumes[it.image] = (volume_to_uint8(vol.data), None if lab is None else lab.data)
        img, lab = self._volumes[it.image]
        axis = self.spec.slice_axis
        mask = None if lab is None else take_slice(lab, it.slice_index, axis).astype(np.int64)
        if mask is not None and mask.max() >= self.num_classes:
            raise InputError(it.mask, f"label {int(mask.max())} out of range for {self.num_classes} classes")
        return to_rgb(take_slice(img, it.slice_index, axis)), None if mask is None else mask.astype(np.uint8)

    def __getitem__(self, index: int) -> dict | None:
        i = index % len(self.items)
        it = self.items[i]
        try:
            img, mask, fov, label = self.load_raw(i)
        except InputError as e:
            if str(it.image) not in self.bad:
                self.bad[str(it.image)] = e.problem
                print(f"skipping sample {e}", file=sys.stderr)
            return None
        img = apply_contrast(img, self.spec.input_contrast)  # val and predict: the Predictor applies it
        h, w = img.shape[:2]
        m = mask if mask is not None else np.zeros((h, w), np.uint8)
        f = fov if fov is not None else np.ones((h, w), np.uint8)
        if self.augment is not None:
            r = self.augment(image=img, masks=[m, f])
            img, (m, f) = r["image"], r["masks"]
        elif self.spec.input_mode == "resize":
            H, W = self.spec.input_size
            img = cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)
            m = cv2.resize(m, (W, H), interpolation=cv2.INTER_NEAREST)
            f = cv2.resize(f, (W, H), interpolation=cv2.INTER_NEAREST)
        target = None
        if mask is not None:
            target = torch.from_numpy(np.where(f > 0, m, IGNORE_INDEX).astype(np.int64))
        diag = torch.tensor(label) if label is not None and self.spec.diagnosis else None
        return {
            "image": to_tensor(np.ascontiguousarray(img), *self.norm),
            "targets": {"mask": target, "diagnosis": diag},
            "name": it.key,
        }
