"""FaceResult: faces of one frame (boxes, scores, 5 points, age, gender, track id) that draw and serialise.

>>> r = FaceResult([Face(np.array([10, 10, 50, 50.]), 0.99, np.zeros((5, 2)))], (100, 100))
>>> r.to_json()["faces"][0]["box_xyxy"]
[10.0, 10.0, 50.0, 50.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from polyhead.viz import put_text

POINT_COLOURS = [(0, 255, 0), (0, 255, 0), (255, 255, 0), (255, 0, 255), (255, 0, 255)]


@dataclass
class Face:
    box: np.ndarray  # (4,) x1 y1 x2 y2, original pixels
    score: float
    points: np.ndarray  # (5, 2): left eye, right eye, nose, left mouth corner, right mouth corner
    age: float | None = None
    p_female: float | None = None
    track_id: int | None = None
    age_spread: float | None = None  # years: calibrated standard deviation of the age distribution

    @property
    def gender(self) -> str | None:
        return None if self.p_female is None else ("female" if self.p_female >= 0.5 else "male")

    def to_json(self) -> dict:
        d = {
            "box_xyxy": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "points": [[round(float(x), 1), round(float(y), 1)] for x, y in self.points],
        }
        if self.age is not None:
            d["age"] = round(float(self.age), 1)
        if self.age_spread is not None:
            d["age_spread"] = round(float(self.age_spread), 1)
        if self.p_female is not None:
            d["gender"] = self.gender
            d["p_female"] = round(float(self.p_female), 3)
        if self.track_id is not None:
            d["id"] = int(self.track_id)
        return d

    def label(self) -> str:
        parts = [f"#{self.track_id}"] if self.track_id is not None else []
        if self.gender is not None:
            parts.append("F" if self.gender == "female" else "M")
        if self.age is not None:
            parts.append(f"{self.age:.0f}")
        return " ".join(parts) or f"{self.score:.2f}"


@dataclass
class FaceResult:
    faces: list[Face]
    image_size: tuple[int, int]  # (h, w)
    blur: bool = False  # plot() anonymises instead of annotating
    extra: dict = field(default_factory=dict)
    crops: list[np.ndarray] = field(default_factory=list)  # aligned 112x112 crops to save (not in JSON)

    def artifacts(self) -> dict[str, np.ndarray]:
        """Aligned crops as ``crops/<name>_<k>.jpg`` files in batch predict (when crops were asked for)."""
        return {f"crops/{{name}}_{k}.jpg": c for k, c in enumerate(self.crops)}

    def to_json(self) -> dict:
        return {
            "image_size": {"width": int(self.image_size[1]), "height": int(self.image_size[0])},
            "count": len(self.faces),
            "faces": [f.to_json() for f in self.faces],
            **self.extra,
        }

    def plot(self, image: np.ndarray) -> np.ndarray:
        if self.blur:
            return blur_faces(image, [f.box for f in self.faces])
        out = np.ascontiguousarray(image[..., :3]).copy()
        h, w = out.shape[:2]
        thick = max(1, round(max(h, w) / 500))
        for f in self.faces:
            x1, y1, x2, y2 = (int(round(v)) for v in f.box)
            colour = (255, 80, 80) if f.gender == "female" else (80, 160, 255) if f.gender else (0, 220, 0)
            cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA)
            r = max(1, round((x2 - x1) / 40))
            for (px, py), c in zip(f.points, POINT_COLOURS, strict=True):
                cv2.circle(out, (int(round(px)), int(round(py))), r, c, -1, cv2.LINE_AA)
            text = f.label()
            scale = max(0.4, min(1.2, (x2 - x1) / 120))
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            ty = y1 - 4 if y1 - th - 6 > 0 else y2 + th + 4
            cv2.rectangle(out, (x1, ty - th - 3), (x1 + tw + 4, ty + 3), colour, -1)
            cv2.putText(out, text, (x1 + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
        return put_text(out, f"{len(self.faces)} face(s)")


def blur_faces(image: np.ndarray, boxes, grow: float = 0.1) -> np.ndarray:
    """A copy with every box (grown by ``grow`` per side, clipped) pixelated and blurred; nothing else
    changes."""
    out = np.ascontiguousarray(image[..., :3]).copy()
    h, w = out.shape[:2]
    for b in boxes:
        bw, bh = b[2] - b[0], b[3] - b[1]
        x1, y1 = max(0, int(np.floor(b[0] - grow * bw))), max(0, int(np.floor(b[1] - grow * bh)))
        x2, y2 = min(w, int(np.ceil(b[2] + grow * bw))), min(h, int(np.ceil(b[3] + grow * bh)))
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        roi = out[y1:y2, x1:x2]
        small = cv2.resize(roi, (max(1, (x2 - x1) // 12), max(1, (y2 - y1) // 12)), interpolation=cv2.INTER_AREA)
        roi = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
        k = max(3, ((x2 - x1) // 8) | 1)
        out[y1:y2, x1:x2] = cv2.GaussianBlur(roi, (k, k), 0)
    return out
