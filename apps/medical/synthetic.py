"""Generated medical-like data with exact labels: skin-lesion images, vessel-like images and NIfTI
volumes, written in the folder and nnU-Net layouts. For tests and the demo's example inputs.

>>> rgb, mask = lesion_image(np.random.default_rng(0), (192, 256))
>>> rgb.shape, mask.dtype, int(mask.max())
((192, 256, 3), dtype('uint8'), 1)
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from polyhead.io import write_image


def lesion_image(rng: np.random.Generator, size: tuple[int, int] = (192, 256), dark: float | None = None):
    """A skin-toned image with an irregular dark blob, a few hairs and noise; returns (rgb, 0/1 mask)."""
    h, w = size
    base = np.array([205, 160, 140], np.float32) + rng.normal(0, 8, 3)
    img = np.ones((h, w, 3), np.float32) * base
    yy, xx = np.mgrid[0:h, 0:w]
    img *= (1 - 0.25 * (((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2))[..., None]  # vignette
    cy, cx = h / 2 + rng.uniform(-0.12, 0.12) * h, w / 2 + rng.uniform(-0.12, 0.12) * w
    r = min(h, w) * rng.uniform(0.18, 0.32)
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    radii = r * (1 + 0.18 * rng.standard_normal(24)).clip(0.6, 1.4)
    pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1).astype(np.int32)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [pts], 1)
    mask = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 3) > 0.5
    level = dark if dark is not None else rng.uniform(0.35, 0.6)
    lesion = np.array([110, 70, 55], np.float32) * level / 0.5
    blotch = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 6)[..., None] * 40
    img = np.where(mask[..., None], lesion + blotch, img)
    for _ in range(rng.integers(0, 4)):  # hairs
        p0 = rng.integers(0, [w, h])
        p1 = rng.integers(0, [w, h])
        cv2.line(img, tuple(int(v) for v in p0), tuple(int(v) for v in p1), (40, 30, 25), 1, cv2.LINE_AA)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), mask.astype(np.uint8)


def write_folder_dataset(root: str | Path, n: int = 12, size=(192, 256), seed: int = 0) -> Path:
    """``images/``, ``masks/`` (0/255 PNG), ``labels.csv`` (``benign``/``malignant`` by lesion darkness) and a
    dataset YAML; returns the YAML path."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows = ["image,label"]
    for i in range(n):
        malignant = i % 2 == 1
        rgb, mask = lesion_image(rng, size, dark=0.3 if malignant else 0.75)
        write_image(root / "images" / f"case{i:03d}.jpg", rgb)
        write_image(root / "masks" / f"case{i:03d}.png", mask * 255)
        rows.append(f"case{i:03d},{'malignant' if malignant else 'benign'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    yaml_path = root / "data.yaml"
    yaml_path.write_text(
        "format: folders\npath: .\nimages: images\nmasks: masks\nlabels: labels.csv\n"
        "classes: [background, lesion]\ndiagnosis: [benign, malignant]\n"
        f"input: {{mode: resize, size: [{size[0] // 32 * 32}, {size[1] // 32 * 32}]}}\n"
        "split: {val_fraction: 0.25, seed: 0}\n"
    )
    return yaml_path


def blob_volume(rng: np.random.Generator, shape=(48, 48, 24), radius: float = 10.0):
    """A noisy volume with a bright ellipsoid; returns (float32 image, uint8 labels)."""
    zz, yy, xx = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    c = np.array(shape) / 2 + rng.uniform(-2, 2, 3)
    r = np.array([radius, radius * 0.8, radius * 0.6 * shape[2] / shape[0]])
    inside = ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2 <= 1
    image = rng.normal(100, 10, shape).astype(np.float32) + 120 * inside
    return image, inside.astype(np.uint8)


def write_nifti(path: str | Path, data: np.ndarray, spacing=(1.0, 1.0, 2.0)) -> Path:
    import nibabel as nib

    affine = np.diag([*spacing[:3], 1.0])
    affine[:3, 3] = [-10.0, 5.0, 2.5]
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms(spacing)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


def write_nnunet_dataset(root: str | Path, n: int = 3, shape=(48, 48, 24), seed: int = 0) -> Path:
    """``imagesTr/case_XXX_0000.nii.gz``, ``labelsTr/case_XXX.nii.gz``, ``dataset.json`` and a YAML."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for i in range(n):
        image, labels = blob_volume(rng, shape)
        write_nifti(root / "imagesTr" / f"case_{i:03d}_0000.nii.gz", image)
        write_nifti(root / "labelsTr" / f"case_{i:03d}.nii.gz", labels)
    (root / "dataset.json").write_text(
        json.dumps(
            {
                "channel_names": {"0": "CT"},
                "labels": {"background": 0, "blob": 1},
                "numTraining": n,
                "file_ending": ".nii.gz",
            }
        )
    )
    yaml_path = root / "data.yaml"
    yaml_path.write_text(
        "format: nnunet\npath: .\nslice_axis: 2\ninput: {mode: resize, size: [64, 64]}\nsplit: {val: [case_000]}\n"
    )
    return yaml_path


def fundus_image(rng: np.random.Generator, size: int = 384):
    """A fundus-like image: an orange disc with dark branching vessels; returns (rgb, 0/1 vessel mask, fov)."""
    img = np.zeros((size, size, 3), np.float32)
    fov = np.zeros((size, size), np.uint8)
    c = size // 2
    cv2.circle(fov, (c, c), int(size * 0.46), 1, -1)
    yy, xx = np.mgrid[0:size, 0:size]
    shade = 1 - 0.5 * np.hypot(yy - c, xx - c) / size
    img[:] = np.array([200, 90, 40], np.float32)
    img *= shade[..., None]
    vessels = np.zeros((size, size), np.uint8)
    disc = (int(c + size * 0.2), c)

    def branch(p, angle, length, width, depth):
        if depth == 0 or length < 8:
            return
        pts = [p]
        for _ in range(12):
            angle += rng.normal(0, 0.15)
            q = pts[-1]
            pts.append((q[0] + length / 12 * np.cos(angle), q[1] + length / 12 * np.sin(angle)))
        poly = np.array(pts, np.int32)
        cv2.polylines(vessels, [poly], False, 1, max(1, int(width)), cv2.LINE_AA)
        mid = pts[len(pts) // 2]
        branch(mid, angle + 0.6, length * 0.6, width * 0.7, depth - 1)
        branch(pts[-1], angle - 0.5, length * 0.6, width * 0.7, depth - 1)

    for a in np.linspace(0, 2 * np.pi, 5, endpoint=False):
        branch(disc, a + rng.normal(0, 0.2), size * 0.35, 4, 4)
    vessels &= fov
    img[vessels > 0] *= 0.45
    cv2.circle(img, disc, int(size * 0.06), (250, 210, 150), -1)
    img += rng.normal(0, 3, img.shape)
    img *= fov[..., None]
    return np.clip(img, 0, 255).astype(np.uint8), vessels, fov
