"""From model outputs to a MedicalResult: resize or sliding-window inference, class-id mask, connected
lesions with areas, diagnosis probabilities; contours drawn on the overlay.

>>> predictor = Predictor(model, classes=["background", "lesion"], diagnosis=["benign", "malignant"],
...                       mode="resize", size=(192, 256))          # doctest: +SKIP
>>> result = predictor(rgb)                                        # doctest: +SKIP
>>> result.to_json()["classes"]["lesion"]["area_px"]               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from polyhead.preprocess import IMAGENET_MEAN, IMAGENET_STD, Norm, apply_contrast, to_tensor
from polyhead.sliding import sliding_window
from polyhead.tta import flip_tta, flips_for
from polyhead.viz import color, draw_legend, put_text


@dataclass
class MedicalResult:
    """Class-id mask in original pixels, foreground probability, diagnosis probabilities."""

    mask: np.ndarray | None
    classes: list[str]
    diagnosis: dict[str, float] | None = None
    probability: np.ndarray | None = None  # (H, W) float16: P(not background)
    pixel_size_mm: float | None = None
    min_area: int = 0
    components: dict[str, list[dict]] = field(default_factory=dict)
    #: further image-level heads (``{"melanoma": {"not_melanoma": 0.8, "melanoma": 0.2}}``)
    labels: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mask is not None and not self.components:
            self.components = {
                name: connected_regions(self.mask == c, self.min_area) for c, name in enumerate(self.classes) if c > 0
            }

    @property
    def diagnosis_label(self) -> str | None:
        return max(self.diagnosis, key=self.diagnosis.get) if self.diagnosis else None

    def to_json(self) -> dict:
        doc: dict = {}
        if self.mask is not None:
            h, w = self.mask.shape
            doc["image_size"] = {"width": int(w), "height": int(h)}
            doc["classes"] = {}
            for c, name in enumerate(self.classes):
                if c == 0:
                    continue
                area = int((self.mask == c).sum())
                entry = {
                    "area_px": area,
                    "share": round(area / max(h * w, 1), 6),
                    "count": len(self.components.get(name, [])),
                    "regions": self.components.get(name, []),
                }
                if self.pixel_size_mm:
                    entry["area_mm2"] = round(area * self.pixel_size_mm**2, 3)
                doc["classes"][name] = entry
        heads = {"diagnosis": self.diagnosis, **self.labels} if self.diagnosis is not None else dict(self.labels)
        for head, probs in heads.items():
            rounded = {k: round(v, 5) for k, v in probs.items()}
            doc[head] = {"label": max(probs, key=probs.get), "probabilities": rounded}
        return doc

    def artifacts(self) -> dict[str, np.ndarray]:
        """``<name>_mask.png``: 0/255 for a binary mask, class ids for several classes."""
        if self.mask is None:
            return {}
        mask = self.mask * 255 if len(self.classes) == 2 else self.mask
        return {"_mask.png": mask.astype(np.uint8)}

    def plot(self, image: np.ndarray) -> np.ndarray:
        out = image[..., :3].copy() if image.ndim == 3 else np.repeat(image[..., None], 3, -1)
        legend = []
        if self.mask is not None:
            thick = max(1, round(max(out.shape[:2]) / 400))
            for c, name in enumerate(self.classes):
                if c == 0:
                    continue
                m = (self.mask == c).astype(np.uint8)
                col = color(c + 1)
                tint = out.copy()
                tint[m > 0] = col
                out = np.where(m[..., None] > 0, cv2.addWeighted(out, 0.7, tint, 0.3, 0), out)
                contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
                cv2.drawContours(out, contours, -1, col, thick, cv2.LINE_AA)
                legend.append((name, col))
        if legend:
            out = draw_legend(out, legend)
        if self.diagnosis:
            label = self.diagnosis_label
            out = put_text(out, f"{label} {self.diagnosis[label]:.2f}", (8, max(24, out.shape[0] // 24)))
        return out


def connected_regions(binary: np.ndarray, min_area: int = 0) -> list[dict]:
    """Connected components (8-connectivity) with area and box, largest first; tiny ones dropped."""
    n, _, stats, centroids = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    regions = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < max(min_area, 1):
            continue
        regions.append(
            {"area_px": area, "box_xyxy": [x, y, x + w, y + h], "centroid": [round(float(v), 1) for v in centroids[i]]}
        )
    return sorted(regions, key=lambda r: -r["area_px"])


def default_window(patch: tuple[int, int], side: int = 512) -> tuple[int, int]:
    """Inference tile of a patch model: the models are fully convolutional (encoder, U-Net decoder and mask
    head have no fixed-size layer), so tiles larger than the training patch work and re-compute far fewer
    borders; ``side`` (a multiple of 32) or the patch itself when that is larger.

    >>> default_window((128, 128))
    (512, 512)
    """
    return (max(patch[0], side), max(patch[1], side))


class Predictor:
    """Runs a medical model on one RGB image in original pixels.

    ``mode="resize"`` resizes the whole image to ``size``; ``mode="patch"`` runs overlapping ``size``
    windows with Gaussian blending (images of any size, bounded memory). ``tta`` adds flipped runs.
    Works with torch models and :class:`polyhead.export.OnnxModel` alike (both return ``{task: tensor}``).

    Image-level heads (``diagnosis`` and any in ``labels``, e.g. ``melanoma``) give logits; with ``tta``
    the flipped runs' logits are averaged, divided by the head's calibration ``temperature`` (1 when the
    card has none) and turned into probabilities. Patch models are fully convolutional, so inference runs
    ``window``-sized tiles (default: the training patch), larger windows meaning fewer, cheaper borders;
    ``overlap`` is a share of the training patch (see :attr:`window_overlap`).
    """

    def __init__(
        self,
        model,
        classes: list[str],
        diagnosis: list[str] | None = None,
        mode: str = "resize",
        size: tuple[int, int] = (256, 320),
        overlap: float = 0.5,
        tta: bool = False,
        threshold: float = 0.5,
        min_area: int = 0,
        batch_size: int = 4,
        keep_largest: bool = False,
        norm: Norm | None = None,
        labels: dict[str, list[str]] | None = None,
        temperature: dict[str, float] | None = None,
        window: tuple[int, int] | None = None,
        fov_diameter: float | None = None,
        fixed_window: bool = False,
        contrast: str | None = None,
    ):
        self.model = model
        #: input normalisation: given (from the card, for ONNX models), else the torch model's own
        self.norm: Norm = norm or getattr(model, "normalisation", None) or (IMAGENET_MEAN, IMAGENET_STD)
        self.classes, self.diagnosis = list(classes), list(diagnosis or [])
        self.mode, self.size = mode, tuple(size)
        self.overlap, self.tta, self.threshold, self.min_area = overlap, tta, threshold, min_area
        self.batch_size = batch_size
        self.keep_largest = keep_largest
        #: image-level heads -> class names (the 3-class ``diagnosis`` first)
        self.heads: dict[str, list[str]] = {"diagnosis": self.diagnosis} if self.diagnosis else {}
        self.heads.update({k: list(v) for k, v in (labels or {}).items()})
        self.temperature = {k: float(v) for k, v in (temperature or {}).items()}
        self.window = tuple(window) if window else self.size
        #: fundus models trained at a common field-of-view width: inputs are rescaled to it (FOV from the red
        #: channel) and the mask comes back in the input's pixels
        self.fov_diameter = fov_diameter
        self.fixed_window = fixed_window  # a fixed-size network (ONNX): small images are padded, not windowed smaller
        #: the card's ``input.contrast`` (e.g. CLAHE), applied to every input at the scale the model reads
        self.contrast = contrast

    @property
    def tasks(self) -> list[str]:
        active = getattr(self.model, "active_tasks", None) or getattr(self.model, "tasks", [])
        return list(active)

    def _run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mask: mean of the flipped runs' softmax; image heads: mean of their logits."""
        return flip_tta(self.model, x, flips_for(self.tta), activation=lambda p: p.softmax(1))

    def calibrated(self, head: str, logits: np.ndarray) -> np.ndarray:
        """Probabilities of one head's logits after its temperature (1 when uncalibrated)."""
        from polyhead.calibration import softmax

        return softmax(np.asarray(logits, np.float64) / self.temperature.get(head, 1.0))

    @property
    def window_overlap(self) -> float:
        """``overlap`` is a share of the training patch: with larger windows the blended margin keeps its
        width in pixels (0.5 of a 128 patch = 64 px = 0.125 of a 512 window), so compute does not grow."""
        return min(self.overlap * p / w for p, w in zip(self.size, self.window, strict=True))

    @torch.inference_mode()
    def outputs(self, rgb: np.ndarray) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
        """(K, H, W) mask probabilities in original pixels (or None) and ``{head: logits}`` of the image heads."""
        h, w = rgb.shape[:2]
        if self.mode == "patch":
            factor = self._fov_factor(rgb)
            if factor != 1.0:
                mask_p, logits = self._outputs_scaled(rgb, factor)
                return mask_p, logits
            rgb = apply_contrast(rgb, self.contrast)
            x = to_tensor(np.ascontiguousarray(rgb), *self.norm)
            mask_p = None
            if "mask" in self.tasks:
                # a window no larger than the image (rounded up to 32), never below the training patch
                win = self.window
                if not self.fixed_window:
                    win = tuple(
                        max(p, min(q, -(-n // 32) * 32)) for p, q, n in zip(self.size, win, (h, w), strict=True)
                    )
                batch = max(1, self.batch_size * self.size[0] * self.size[1] // (win[0] * win[1]))
                ov = min(self.overlap * p / q for p, q in zip(self.size, win, strict=True))
                mask_p = sliding_window(x, lambda t: self._run(t)["mask"], win, ov, batch).numpy()
            logits = {}
            if any(t != "mask" for t in self.tasks):  # image labels read the whole image at the patch size
                small = cv2.resize(rgb, self.size[::-1], interpolation=cv2.INTER_AREA)
                out = self._run(to_tensor(small, *self.norm)[None])
                logits = {k: v[0].numpy() for k, v in out.items() if k != "mask"}
            return mask_p, logits
        H, W = self.size
        rgb = apply_contrast(rgb, self.contrast)  # at the original scale, as the training samples get it
        small = cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA if h * w > H * W else cv2.INTER_LINEAR)
        out = self._run(to_tensor(small, *self.norm)[None])
        mask_p = None
        if "mask" in out:
            probs = out["mask"][0].numpy()
            mask_p = np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in probs])
        return mask_p, {k: v[0].numpy() for k, v in out.items() if k != "mask"}

    def _fov_factor(self, rgb: np.ndarray) -> float:
        if not self.fov_diameter:
            return 1.0
        from polyhead.apps.medical.fov import fov_from_red, fov_scale

        fov = fov_from_red(rgb)
        return fov_scale(fov, self.fov_diameter) if fov.any() else 1.0

    def _outputs_scaled(self, rgb: np.ndarray, factor: float) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
        from polyhead.apps.medical.fov import rescale

        h, w = rgb.shape[:2]
        small, _, _ = rescale(rgb, None, None, factor)
        keep, self.fov_diameter = self.fov_diameter, None
        try:
            mask_p, logits = self.outputs(small)
        finally:
            self.fov_diameter = keep
        if mask_p is not None:
            mask_p = np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in mask_p])
        return mask_p, logits

    def probabilities(self, rgb: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(K, H, W) class probabilities in original pixels (or None) and diagnosis probabilities (or None)."""
        mask_p, logits = self.outputs(rgb)
        diag = self.calibrated("diagnosis", logits["diagnosis"]) if "diagnosis" in logits else None
        return mask_p, diag

    def mask_from_probs(self, probs: np.ndarray) -> np.ndarray:
        """Threshold (binary) or argmax (classes); then, if asked, keep each class's largest region only
        (one lesion per image, as in dermoscopy) and drop regions under ``min_area`` pixels."""
        if probs.shape[0] == 2:
            mask = (probs[1] >= self.threshold).astype(np.uint8)
        else:
            mask = probs.argmax(0).astype(np.uint8)
        if self.keep_largest or self.min_area:
            for c in range(1, probs.shape[0]):
                n, labels, stats, _ = cv2.connectedComponentsWithStats((mask == c).astype(np.uint8), connectivity=8)
                if n <= 1:
                    continue
                areas = stats[1:, cv2.CC_STAT_AREA]
                keep = np.zeros(n, bool)
                keep[1:] = areas >= max(self.min_area, 1)
                if self.keep_largest:
                    keep[1:] &= np.arange(1, n) == 1 + int(areas.argmax())
                mask[(labels > 0) & ~keep[labels]] = 0
        return mask

    def __call__(self, rgb: np.ndarray) -> MedicalResult:
        probs, logits = self.outputs(rgb)
        diag = self.calibrated("diagnosis", logits["diagnosis"]) if "diagnosis" in logits else None
        labels = {}
        for head, value in logits.items():
            if head == "diagnosis":
                continue
            p = self.calibrated(head, value)
            names = self.heads.get(head) or [f"class_{i}" for i in range(len(p))]
            labels[head] = {n: float(v) for n, v in zip(names, p, strict=True)}
        mask = fg = None
        if probs is not None:
            fg = 1.0 - probs[0]
            mask = self.mask_from_probs(probs)
        diagnosis = None
        if diag is not None:
            names = self.diagnosis or [f"class_{i}" for i in range(len(diag))]
            diagnosis = {n: float(p) for n, p in zip(names, diag, strict=True)}
        return MedicalResult(
            mask,
            self.classes,
            diagnosis,
            None if fg is None else fg.astype(np.float16),
            min_area=self.min_area,
            labels=labels,
        )
