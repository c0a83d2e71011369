"""Hard examples for each stage from the cascade before it (MTCNN's bootstrapping step); for P-Net, from its
own proposals (the windows it passes to R-Net), so it learns to reject what it wrongly lets through.

The trained P-Net (and R-Net, for O-Net) runs over training scenes at the detector's own settings:
face-free backgrounds, composites with pasted faces, labelled photos and landmark crops. Every window
that gets through is labelled by its overlap with the known faces (face > 0.65, part face 0.4-0.65,
non-face < 0.3, in between dropped) and cut as the training windows are. These are the windows the
next stage sees at inference, including the mistakes it has to reject.

>>> extra = mined("rnet", sources, parts, "train")          # doctest: +SKIP
>>> extra.counts()                                          # doctest: +SKIP
{'face': 5210, 'part': 7034, 'non_face': 30122, 'with_landmarks': 3301}
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from polyhead.apps.face.cascade import INPUT_SIZES
from polyhead.apps.face.detect import DetectorConfig, FaceDetector
from polyhead.apps.face.samples import (
    FaceSources,
    Samples,
    Scene,
    _fit,
    _read,
    box_scenes,
    composite,
    cut,
    face_scenes,
    in_holdout,
    label_windows,
    voc_scenes,
)

MAX_NEG_PER_SCENE = 24
MAX_FACE_PER_SCENE = 12  # faces and part faces each
#: the windows a stage is trained on when mined: what reaches it (P-Net: what it passes on itself)
REACHING = {"pnet": "rnet", "rnet": "rnet", "onet": "onet"}


def mine_scene(det: FaceDetector, scene: Scene, stage: str, rng: np.random.Generator) -> Samples:
    """The labelled, capped hard windows of one scene."""
    size = INPUT_SIZES[stage]
    wins = det.windows_reaching(scene.image, REACHING[stage])
    if len(wins) == 0:
        return Samples.concat([], size)
    label, box, lmk = label_windows(wins, scene)
    keep = []
    for value, cap in ((1, MAX_FACE_PER_SCENE), (-1, MAX_FACE_PER_SCENE), (0, MAX_NEG_PER_SCENE)):
        idx = np.nonzero(label == value)[0]
        keep.append(rng.permutation(idx)[:cap])
    keep = np.concatenate(keep)
    return Samples(cut(scene.image, wins[keep], size), label[keep], box[keep], lmk[keep])


def _scenes(
    src: FaceSources, split: str, rng: np.random.Generator, n_composites: int, n_crops: int, voc_scale: float = 1.0
):
    """Backgrounds of the split, composites, labelled photos (train) and landmark crops, one at a time."""
    bgs = [b for b in src.background_files() if in_holdout(b.name, 0.15, src.seed) == (split != "train")]
    bg_images = [_fit(im, 640) for im in (_read(p) for p in bgs) if im is not None]
    for im in bg_images:
        yield Scene(im, np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32))
    faces = face_scenes(src, split)
    lmk_faces = [f for f in faces if np.isfinite(f.points).all()]
    if bg_images and lmk_faces:
        for _ in range(n_composites):
            bg = bg_images[rng.integers(len(bg_images))]
            hw = (int(rng.integers(160, 360)), int(rng.integers(200, 480)))
            picks = [lmk_faces[i] for i in rng.integers(0, len(lmk_faces), int(rng.integers(1, 4)))]
            yield composite(bg, picks, rng, hw, min_side=20)
    if split == "train":
        yield from box_scenes(src)
    yield from voc_scenes(src, split, voc_scale)  # crowd photos (hold-out lists excluded): masked, small, turned faces
    for i in rng.permutation(len(lmk_faces))[:n_crops]:
        yield lmk_faces[i]


def mined(
    stage: str,
    src: FaceSources,
    parts: dict[str, torch.nn.Module],
    split: str,
    config: DetectorConfig | None = None,
    n_composites: int | None = None,
    n_crops: int | None = None,
    seed: int = 0,
    progress: bool = True,
    voc_scale: float = 1.0,
) -> Samples:
    """Hard windows for ``stage`` (``pnet``, ``rnet`` or ``onet``) from the cascade in ``parts`` (for ``pnet``:
    P-Net's own proposals, labelled by overlap, so its false windows become negatives)."""
    from tqdm import tqdm

    if stage not in REACHING:
        raise ValueError(f"hard examples are mined for pnet, rnet or onet, not '{stage}'")
    train = split == "train"
    n_composites = (1500 if train else 200) if n_composites is None else n_composites
    n_crops = (3000 if train else 300) if n_crops is None else n_crops
    det = FaceDetector(parts, config or DetectorConfig())
    rng = np.random.default_rng(seed + 11 + (0 if train else 1000))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small images: one thread each is the efficient setting
    try:
        out = [
            mine_scene(det, sc, stage, rng)
            for sc in tqdm(
                _scenes(src, split, rng, n_composites, n_crops, voc_scale),
                desc=f"mining {stage} {split}",
                disable=not progress,
                leave=False,
            )
        ]
    finally:
        torch.set_num_threads(threads)
    return Samples.concat(out, INPUT_SIZES[stage])


def mined_cached(
    stage: str,
    src: FaceSources,
    weights: str | Path,
    split: str,
    cache_dir: str | Path = "runs/face_cache",
    scale: float = 1.0,
) -> Samples:
    """:func:`mined` with the cascade of a face weights file, cached by sources, weights and split."""
    from polyhead.apps.face.model import load_face_weights

    parts, _ = load_face_weights(weights)
    sig_w = [round(float(sum(p.detach().double().sum() for p in parts[k].parameters())), 6) for k in ("pnet", "rnet")]
    n_comp = int((1500 if split == "train" else 200) * scale)
    n_crops = int((3000 if split == "train" else 300) * scale)
    recipe = (stage, split, repr(src), sig_w, n_comp, n_crops, MAX_NEG_PER_SCENE, MAX_FACE_PER_SCENE)
    recipe += (tuple(src.coco), src.voc_signature(), scale) if (src.coco or src.voc) else ()
    path = Path(cache_dir) / f"{stage}_mined_{split}_{hashlib.sha1(repr(recipe).encode()).hexdigest()[:10]}.npz"
    if path.is_file():
        return Samples.load(path)
    s = mined(stage, src, parts, split, n_composites=n_comp, n_crops=n_crops, voc_scale=scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    s.save(path)
    return s
