"""How the OCR engine was chosen: words and dimension strings read right, and seconds per plan.

``python -m polyhead.apps.floorplan.ocr_measure [--engines rapidocr rapidocr-v4 tesseract] [--r3d DIR]``
runs each engine on (1) 12 real R3D plans from our validation split whose printed room names and
metric dimension pairs were transcribed by hand (:data:`R3D_TRUTH`) and (2) 12 plans rendered by
:func:`polyhead.apps.floorplan.synthetic.labelled_plan` (seeds 0-11, DejaVu Sans, known words and
sizes). "Words right" is the share of the room-name words found among the words read (multiset);
"dims right" the share of dimension pairs parsed from the text read to the printed values (0.01 m).
``rapidocr`` is the chosen engine (the ``rapidocr`` 3 wheel, PP-OCRv6 small, ``polyhead[ocr]``);
``rapidocr-v4`` the older ``rapidocr-onnxruntime`` 1.4 wheel (PP-OCRv4), measured here only
(``pip install rapidocr-onnxruntime`` to repeat it); ``tesseract`` needs Debian's ``tesseract-ocr``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

#: hand transcription of 12 R3D val plans: room-name words (lower case) and metric pairs printed
R3D_TRUTH: dict[str, dict] = {
    "31036152": {"words": "reception kitchen bedroom", "dims": [(4.7, 2.9), (4.5, 2.9)]},
    "31727418": {
        "words": "bedroom bathroom entrance hall reception dining room kitchen store",
        "dims": [(3.40, 4.29), (1.88, 2.29), (1.35, 1.73), (5.18, 4.11), (2.18, 3.56)],
    },
    "31834734": {
        "words": "bedroom kitchen reception room bathroom hallway",
        "dims": [(3.2, 3.2), (3.2, 2.6), (4.0, 2.2), (3.3, 1.4)],
    },
    "31878750": {
        "words": "balcony bedroom reception room bedroom kitchen area",
        "dims": [(6.95, 2.95), (9.00, 4.20), (6.30, 3.40)],
    },
    "31887492": {
        "words": "terrace dressing room bedroom bedroom kitchen dining reception room bedroom",
        "dims": [(5.30, 3.89), (2.43, 2.43), (5.35, 2.96), (4.92, 4.70), (5.78, 3.55), (8.32, 7.84)],
    },
    "31890228": {
        "words": "terrace kitchen bedroom bedroom",
        "dims": [(7.01, 3.12), (3.28, 1.83), (8.00, 4.95), (7.01, 6.10), (4.95, 3.51), (6.10, 6.02)],
    },
    "43169833": {
        "words": "reception kitchen bedroom shower room ensuite",
        "dims": [(4.2, 3.7), (3.4, 2.6), (2.0, 1.5)],
    },
    "44637031": {
        "words": "vault vault utility master bedroom bedroom kitchen dining room bedroom reception room",
        "dims": [
            (4.20, 4.20),
            (2.73, 2.22),
            (2.70, 2.19),
            (5.11, 3.61),
            (4.25, 4.15),
            (5.27, 5.09),
            (3.51, 3.46),
            (5.29, 4.73),
        ],
    },
    "45608287": {"words": "kitchen entrance hall reception room bedroom dressing room", "dims": []},
    "45719912": {"words": "reception kitchen bedroom", "dims": [(4.7, 4.1), (4.6, 2.7)]},
    "45724129": {
        "words": "balcony kitchen shower room bedroom",
        "dims": [(4.1, 1.1), (2.2, 2.2), (1.8, 1.2), (4.7, 2.9)],
    },
    "45724345": {
        "words": "bedroom bedroom en suite shower room wc en suite bathroom garden wc reception room",
        "dims": [
            (5.35, 4.65),
            (4.66, 4.65),
            (2.17, 1.88),
            (2.16, 1.00),
            (2.25, 2.12),
            (12.29, 2.89),
            (1.86, 1.46),
            (10.35, 7.10),
        ],
    },
}


def _reader(engine: str):
    if engine == "rapidocr-v4":
        from rapidocr_onnxruntime import RapidOCR

        eng = RapidOCR(intra_op_num_threads=2, inter_op_num_threads=1)

        def read(rgb):
            result, _ = eng(rgb[..., ::-1])
            return [text for _, text, score in result or [] if score >= 0.5]

        return read
    from polyhead.ocr import read_text

    return lambda rgb: [ln.text for ln in read_text(rgb, engine=engine)]


def _score(lines: list[str], words: list[str], dims: list[tuple[float, float]]) -> tuple[int, int]:
    from polyhead.apps.floorplan.text import parse_dimensions, words_of

    read = Counter(w for ln in lines for w in words_of(ln))
    truth = Counter(words)
    words_ok = sum(min(n, read[w]) for w, n in truth.items())
    found = [tuple(sorted(d.metres)) for ln in lines for d in parse_dimensions(ln, singles=False)]
    dims_ok = 0
    for d in dims:
        want = tuple(sorted(d))
        hit = next((f for f in found if np.allclose(f, want, atol=0.011)), None)
        if hit is not None:
            found.remove(hit)
            dims_ok += 1
    return words_ok, dims_ok


def measure(engines: list[str], r3d: Path, rendered: int = 12) -> dict:
    """``{engine: {set: {words, words_right, dims, dims_right, s_per_plan}}}``."""
    from polyhead.apps.floorplan.synthetic import labelled_plan
    from polyhead.apps.floorplan.text import words_of
    from polyhead.io import read_image

    plans = {}
    for name, truth in R3D_TRUTH.items():
        plans[("r3d", name)] = (read_image(r3d / f"{name}.jpg"), words_of(truth["words"]), truth["dims"])
    for seed in range(rendered):
        lp = labelled_plan(np.random.default_rng(seed), (640, 640))
        words = [w for lab in lp.labels for w in words_of(lab["name"])]
        dims = [lab["size_m"] for lab in lp.labels if len(lab["dims"]) == 1 and "'" not in lab["dims"][0]]
        dims += [tuple(round(v, 1) for v in lab["size_m"]) for lab in lp.labels if len(lab["dims"]) == 2]
        plans[("rendered", str(seed))] = (lp.image, words, dims)
    readers = {engine: _reader(engine) for engine in engines}
    for read in readers.values():
        read(np.full((64, 64, 3), 255, np.uint8))  # load the models outside the timing
    report: dict = {engine: {} for engine in engines}
    for (kind, _name), (rgb, words, dims) in plans.items():
        for engine, read in readers.items():  # engines interleaved plan by plan: the same machine load
            t0 = time.perf_counter()
            lines = read(rgb)
            dt = time.perf_counter() - t0
            w_ok, d_ok = _score(lines, words, dims)
            r = report[engine].setdefault(
                kind, {"plans": 0, "words": 0, "words_right": 0, "dims": 0, "dims_right": 0, "s": 0.0}
            )
            r["plans"] += 1
            r["words"] += len(words)
            r["words_right"] += w_ok
            r["dims"] += len(dims)
            r["dims_right"] += d_ok
            r["s"] += dt
    for engine, rows in report.items():
        for r in rows.values():
            r["s_per_plan"] = round(r.pop("s") / r["plans"], 3)
            r["word_accuracy"] = round(r["words_right"] / max(1, r["words"]), 4)
            r["dim_accuracy"] = round(r["dims_right"] / max(1, r["dims"]), 4)
        print(engine, json.dumps(rows), flush=True)
    return report


def measure_fusion(r3d: Path, names: list[str] | None = None, weights=None, tta: bool = False) -> dict:
    """On R3D plans (default: the shipped card's 20 validation plans): room-type pixel accuracy of the
    vectorised rooms over the ground-truth room pixels, network alone against network + text; and the
    scale read from the plan: plans where one was found, and the rooms with a printed size whose size
    at the estimated scale agrees with their pixel extents within 10% on both sides (``share_within_10pct``)
    and, looser, whose own pixels per metre (geometric mean over the two sides) is within 10% of the
    plan's estimate (``room_scale_share_within_10pct``). ``tta``: the masks from the 4-flip average."""
    import cv2

    from polyhead.apps.floorplan.app import FloorplanApp
    from polyhead.apps.floorplan.data import r3d_rooms
    from polyhead.apps.floorplan.model import ROOM_CLASSES
    from polyhead.apps.floorplan.postprocess import apply_text, vectorise
    from polyhead.io import read_image
    from polyhead.ocr import read_text

    app = FloorplanApp().load(weights)
    names = names or app.card["data"]["val_names"]
    n = len(ROOM_CLASSES)
    hits = {"network": np.zeros(n, np.int64), "network+text": np.zeros(n, np.int64)}
    total = np.zeros(n, np.int64)
    plans_scaled, rooms_sized, rooms_agree, scale_agree, changed, ratios = 0, 0, 0, 0, 0, []
    for name in names:
        rgb = read_image(r3d / f"{name}.jpg")
        gt = r3d_rooms(cv2.imread(str(r3d / f"{name}_rooms.png")))
        b, r = app.predict_masks(rgb, tta=tta)
        net = vectorise(b, r)
        fused = apply_text(vectorise(b, r), read_text(rgb))
        sel = gt > 0
        total += np.bincount(gt[sel], minlength=n)
        for key, res in (("network", net), ("network+text", fused)):
            ok = sel & (res.room_mask == gt)
            hits[key] += np.bincount(gt[ok], minlength=n)
        changed += sum(room["type_source"] == "text" for room in fused.rooms)
        if fused.scale_info.get("source") == "dimensions":
            plans_scaled += 1
            if fused.text.get("gross_area") and fused.scale_info.get("gross_area_check"):
                ratios.append(fused.scale_info["gross_area_check"]["ratio"])
        for room in fused.rooms:
            dims = room.get("dimensions")
            if not dims or len(dims["m"]) != 2 or not fused.scale:
                continue
            rooms_sized += 1
            want = sorted(v * fused.scale for v in dims["m"])
            have = sorted(dims.get("wall_to_wall_px") or room["size_px"])
            rooms_agree += all(abs(h / w - 1) <= 0.1 for h, w in zip(have, want, strict=True))
            scale_agree += abs(float(np.sqrt(np.prod([h / w for h, w in zip(have, want, strict=True)]))) - 1) <= 0.1
    doc: dict = {"plans": len(names), "pixels": int(total[1:].sum())}
    for key, h in hits.items():
        per = {ROOM_CLASSES[c]: round(float(h[c] / total[c]), 4) for c in range(1, n) if total[c]}
        doc[key] = {
            "room_pixel_accuracy": round(float(h[1:].sum() / max(1, total[1:].sum())), 4),
            "mean_class_accuracy": round(float(np.mean(list(per.values()))), 4),
            "per_class": per,
        }
    doc["rooms_retyped_by_text"] = int(changed)
    doc["scale"] = {
        "plans_with_scale": plans_scaled,
        "rooms_with_printed_size": rooms_sized,
        "rooms_within_10pct": rooms_agree,
        "share_within_10pct": round(rooms_agree / max(1, rooms_sized), 4),
        "rooms_whose_scale_is_within_10pct": scale_agree,
        "room_scale_share_within_10pct": round(scale_agree / max(1, rooms_sized), 4),
        "gross_area_ratio_rooms_to_printed": ratios,
    }
    print(json.dumps(doc), flush=True)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engines", nargs="+", default=["rapidocr", "tesseract"])
    p.add_argument("--r3d", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data/floorplan/r3d/train")
    p.add_argument("--json", type=Path)
    p.add_argument("--fusion", action="store_true", help="also: network alone vs + text, scale, on the val plans")
    p.add_argument("--fusion-only", action="store_true", help="only the fusion and scale figures (no engine table)")
    p.add_argument("--tta", action="store_true", help="fusion: masks from the 4-flip average")
    args = p.parse_args(argv)
    report = {} if args.fusion_only else measure(args.engines, args.r3d)
    if args.fusion or args.fusion_only:
        report["fusion"] = measure_fusion(args.r3d, tta=args.tta)
    if args.json:
        from polyhead.io.writers import write_json

        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
