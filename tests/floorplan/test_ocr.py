"""OCR on rendered plans (known words, sizes and scale) and the plan without the OCR extra."""

from __future__ import annotations

import numpy as np
import pytest

from polyhead import ocr
from polyhead.apps.floorplan.postprocess import apply_text, vectorise
from polyhead.apps.floorplan.synthetic import labelled_plan
from polyhead.apps.floorplan.text import room_type_of

needs_ocr = pytest.mark.skipif(
    not ocr.available(), reason="the OCR extra is not installed (pip install 'polyhead[ocr]')"
)


@pytest.fixture(scope="module")
def rendered():
    """Two rendered plans (a metric and a feet + metres one) with what OCR read on them."""
    out = []
    for seed in (1, 6):
        lp = labelled_plan(np.random.default_rng(seed), (640, 640))
        out.append((lp, ocr.read_text(lp.image) if ocr.available() else []))
    return out


@needs_ocr
def test_ocr_reads_the_printed_room_names(rendered):
    for lp, lines in rendered:
        assert lp.labels
        read_types = [room_type_of(ln.text)[0] for ln in lines]
        for lab in lp.labels:
            assert lab["type"] in read_types, (lab["name"], [ln.text for ln in lines])
        assert all(0.5 <= ln.score <= 1 and ln.box[0] < ln.box[2] and ln.box[1] < ln.box[3] for ln in lines)


@needs_ocr
def test_text_fixes_room_types_and_reads_the_scale(rendered):
    for lp, lines in rendered:
        plan = lp.plan
        wrong = np.where(plan.room > 0, 4, 0).astype(np.uint8)  # a network that calls every room a bedroom
        result = apply_text(vectorise(plan.boundary, wrong), lines)
        doc = result.to_json()
        assert doc["text"]["status"] == "on" and doc["text"]["lines"]
        for lab in lp.labels:
            x0, y0, x1, y1 = plan.rooms[lab["room"]].cell
            (room,) = [r for r in doc["rooms"] if x0 <= r["centroid"][0] <= x1 and y0 <= r["centroid"][1] <= y1]
            assert room["network_type"] == "bedroom" and room["type"] == lab["type"], (lab, room)
            assert room["type_source"] == ("network+text" if lab["type"] == "bedroom" else "text")
            assert room["text"] and room["dimensions"]
        scale = doc["scale"]
        assert scale["source"] == "dimensions" and scale["rooms"] >= 0.8 * len(lp.labels)
        assert scale["px_per_m"] == pytest.approx(lp.px_per_m, rel=0.03)
        assert scale["spread"] < 0.05
        for r in doc["rooms"]:
            assert r["area_m2"] == pytest.approx(r["area_px"] / scale["px_per_m"] ** 2, abs=0.01)
        gross = doc["text"]["gross_area"]
        truth_m2 = float(lp.gross_text.split()[3])
        assert gross["m2"] == truth_m2
        assert scale["gross_area_check"]["ratio"] == pytest.approx(1.0, abs=0.06)


@needs_ocr
def test_a_user_scale_wins_and_the_estimate_is_reported_beside_it(rendered):
    lp, lines = rendered[0]
    result = apply_text(vectorise(lp.plan.boundary, lp.plan.room, scale=10.0), lines, user_scale=True)
    doc = result.to_json()
    assert doc["scale"]["source"] == "user" and doc["scale"]["px_per_m"] == 10.0 and doc["scale_px_per_m"] == 10.0
    assert doc["scale"]["estimate"]["px_per_m"] == pytest.approx(lp.px_per_m, rel=0.03)
    assert all(r["area_m2"] == pytest.approx(r["area_px"] / 100, abs=0.01) for r in doc["rooms"])


def test_without_the_ocr_extra_text_is_off_with_one_message(tiny_fp_weights, monkeypatch, capsys):
    from polyhead.apps.floorplan import app as app_module
    from polyhead.apps.floorplan.app import FloorplanApp

    monkeypatch.setattr(ocr, "available", lambda engine="rapidocr": False)
    monkeypatch.setattr(app_module, "_said", set())
    app = FloorplanApp().load(tiny_fp_weights, scale=20.0)
    lp = labelled_plan(np.random.default_rng(0), (200, 200))
    docs = [app.predict_image(lp.image).to_json() for _ in range(2)]
    err = capsys.readouterr().err
    assert err.count("text reading off") == 1 and "polyhead[ocr]" in err
    for doc in docs:
        assert doc["text"] == {"status": "off", "reason": ocr.ocr_missing_message()}
        assert doc["scale"]["source"] == "user" and {"rooms", "walls", "openings"} <= set(doc)
        assert all(r["type_source"] == "network" and r["text"] == [] for r in doc["rooms"])
    off = app.predict_image(lp.image, ocr=False).to_json()
    assert off["text"]["status"] == "off" and "not asked" in off["text"]["reason"]


def test_read_text_without_the_engine_says_how_to_install(monkeypatch):
    with pytest.raises(ValueError, match="unknown OCR engine"):
        ocr.available("nope")
    monkeypatch.setattr(ocr, "available", lambda engine="rapidocr": False)
    with pytest.raises(RuntimeError, match=r"polyhead\[ocr\]"):
        ocr.read_text(np.zeros((10, 10, 3), np.uint8))


@needs_ocr
def test_a_blank_page_reads_nothing():
    assert ocr.read_text(np.full((120, 160, 3), 255, np.uint8)) == []


def test_an_ocr_failure_costs_the_text_not_the_plan(tiny_fp_weights, monkeypatch):
    from polyhead.apps.floorplan.app import FloorplanApp

    def broken(rgb, engine="rapidocr", min_score=0.5):
        raise MemoryError("out of memory in the recogniser")

    monkeypatch.setattr(ocr, "available", lambda engine="rapidocr": True)
    monkeypatch.setattr(ocr, "read_text", broken)
    lp = labelled_plan(np.random.default_rng(0), (200, 200))
    doc = FloorplanApp().load(tiny_fp_weights).predict_image(lp.image).to_json()
    assert doc["text"] == {"status": "off", "reason": "OCR failed: MemoryError: out of memory in the recogniser"}
    assert {"rooms", "walls", "openings", "totals"} <= set(doc)


@needs_ocr
def test_the_models_come_inside_the_wheel():
    """Every model file the engine loads is in the installed package, with the hash the card names."""
    import hashlib
    from importlib.util import find_spec
    from pathlib import Path

    models = Path(find_spec("rapidocr").origin).parent / "models"
    for name, sha in ocr.RAPIDOCR_MODELS["files"].items():
        assert hashlib.sha256((models / name).read_bytes()).hexdigest() == sha, name
