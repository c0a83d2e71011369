"""Offline OCR for every app: text lines with boxes from an RGB image, through an optional extra.

The engine is RapidOCR 3 (``pip install 'polyhead[ocr]'``: the ``rapidocr`` wheel, which ships its three
ONNX models inside it, PP-OCRv6 small detection and recognition and the PP-OCR v2.0 mobile angle
classifier, Apache-2.0, checked by SHA-256 at load, so nothing downloads). Without it,
:func:`available` is False and :func:`ocr_missing_message` says how to install it; callers switch
text reading off with that one message instead of failing. Tesseract (Debian's ``tesseract-ocr``
through ``pytesseract``) is a second engine for machines that have it (``engine="tesseract"``).

>>> from polyhead.ocr import available, read_text                       # doctest: +SKIP
>>> [line.text for line in read_text(rgb)] if available() else []      # doctest: +SKIP
['BEDROOM', "11'1 x 8'8", '(3.4m x 2.6m)']
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from dataclasses import dataclass

import numpy as np

ENGINES = ("rapidocr", "tesseract")
#: what the ``ocr`` extra ships, for model cards: the models inside the ``rapidocr`` wheel (3.10.0)
RAPIDOCR_MODELS = {
    "package": "rapidocr>=3.10,<4 (Apache-2.0)",
    "licence": "Apache-2.0 (code: RapidOCR authors; weights: Baidu / PaddleOCR, see the wheel's MODEL_LICENSES.md)",
    "files": {
        "PP-OCRv6_det_small.onnx": "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
        "PP-OCRv6_rec_small.onnx": "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
        "ch_ppocr_mobile_v2.0_cls_mobile.onnx": "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
    },
}
_lock = threading.Lock()
_engines: dict = {}


@dataclass(frozen=True)
class TextLine:
    """One line of text: its string, axis-aligned box ``(x0, y0, x1, y1)`` in image pixels, score 0-1."""

    text: str
    box: tuple[float, float, float, float]
    score: float

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def to_json(self) -> dict:
        return {"text": self.text, "box_xyxy": [round(v, 1) for v in self.box], "score": round(self.score, 3)}


def available(engine: str = "rapidocr") -> bool:
    """True when ``engine`` can run here (its package, and for tesseract the program, installed)."""
    if engine == "rapidocr":
        return importlib.util.find_spec("rapidocr") is not None
    if engine == "tesseract":
        return importlib.util.find_spec("pytesseract") is not None and shutil.which("tesseract") is not None
    raise ValueError(f"unknown OCR engine {engine!r}; choose one of {ENGINES}")


def ocr_missing_message(engine: str = "rapidocr") -> str:
    """The one line shown when text reading is off because ``engine`` is missing."""
    if engine == "tesseract":
        return "text reading off: tesseract needs 'pip install pytesseract' and the tesseract-ocr program"
    return "text reading off: the OCR extra is not installed (pip install 'polyhead[ocr]')"


def read_text(rgb: np.ndarray, engine: str = "rapidocr", min_score: float = 0.5) -> list[TextLine]:
    """Text lines of an RGB uint8 image, top to bottom; lines scoring below ``min_score`` are dropped.

    >>> read_text(np.full((64, 64, 3), 255, np.uint8))                 # doctest: +SKIP
    []
    """
    if not available(engine):
        raise RuntimeError(ocr_missing_message(engine))
    rgb = np.ascontiguousarray(rgb[..., :3] if rgb.ndim == 3 else np.stack([rgb] * 3, -1))
    lines = _rapid(rgb) if engine == "rapidocr" else _tesseract(rgb)
    lines = [ln for ln in lines if ln.score >= min_score and ln.text.strip()]
    return sorted(lines, key=lambda ln: (ln.box[1], ln.box[0]))


def _threads() -> int:
    return max(1, int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or min(2, os.cpu_count() or 1))


def _rapid(rgb: np.ndarray) -> list[TextLine]:
    with _lock:
        eng = _engines.get("rapidocr")
        if eng is None:
            from rapidocr import RapidOCR

            params = {
                "Global.log_level": "error",
                "EngineConfig.onnxruntime.intra_op_num_threads": _threads(),
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
            eng = _engines["rapidocr"] = RapidOCR(params=params)
        result = eng(rgb[..., ::-1])  # RapidOCR takes BGR arrays, as cv2 reads them
    boxes = result.boxes if result.boxes is not None else []
    out = []
    for quad, text, score in zip(boxes, result.txts or (), result.scores or (), strict=False):
        q = np.asarray(quad, np.float64)
        out.append(TextLine(str(text), (q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()), float(score)))
    return out


def _tesseract(rgb: np.ndarray) -> list[TextLine]:
    import pytesseract

    d = pytesseract.image_to_data(rgb, config="--psm 11", output_type=pytesseract.Output.DICT)
    groups: dict[tuple, list[int]] = {}
    for i, word in enumerate(d["text"]):
        if word.strip() and float(d["conf"][i]) >= 0:
            groups.setdefault((d["block_num"][i], d["par_num"][i], d["line_num"][i]), []).append(i)
    out = []
    for idx in groups.values():
        x0 = min(d["left"][i] for i in idx)
        y0 = min(d["top"][i] for i in idx)
        x1 = max(d["left"][i] + d["width"][i] for i in idx)
        y1 = max(d["top"][i] + d["height"][i] for i in idx)
        score = float(np.mean([float(d["conf"][i]) for i in idx])) / 100
        out.append(TextLine(" ".join(d["text"][i] for i in idx), (x0, y0, x1, y1), score))
    return out
