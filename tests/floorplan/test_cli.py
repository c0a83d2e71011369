"""CLI: predict on a folder writes overlay + JSON + SVG (+ mesh); bad files skipped; train and val smoke runs."""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np

from polyhead.cli import main
from polyhead.io.writers import TEMP_PREFIX


def test_predict_folder(tiny_fp_weights, plan_folder, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "floorplan",
            "predict",
            str(plan_folder),
            "--weights",
            str(tiny_fp_weights),
            "--out",
            str(out),
            "--scale",
            "40",
            "--3d",
        ]
    )
    assert code == 1  # one input skipped, the rest written
    err = capsys.readouterr().err
    assert "broken.jpg" in err
    for name in ("plan0", "plan1", "blank"):
        for suffix in (".png", ".json", ".svg"):
            assert (out / f"{name}{suffix}").stat().st_size > 0
    blank = json.loads((out / "blank.json").read_text())
    assert blank["rooms"] == [] and blank["walls"] == [] and blank["scale_px_per_m"] == 40.0
    doc = json.loads((out / "plan0.json").read_text())
    assert doc["image_size"] == {"width": 240, "height": 200} and {"rooms", "walls", "openings", "totals"} <= set(doc)
    assert not (out / "broken.png").exists()
    assert not list(out.glob(f"{TEMP_PREFIX}*"))


def test_app_result_and_large_scan(tiny_fp_weights):
    from polyhead.apps.floorplan import app as app_module
    from polyhead.apps.floorplan.app import FloorplanApp
    from polyhead.apps.floorplan.synthetic import synthetic_plan

    app = FloorplanApp().load(tiny_fp_weights, scale=20.0)
    plan = synthetic_plan(np.random.default_rng(0), (160, 160)).image
    result = app.predict_image(plan)
    assert result.plot(plan).shape == plan.shape and "rooms" in result.to_json()
    big = np.tile(plan, (1, 14, 1))[:, : app_module.MAX_SIDE + 100]  # 160 x 2148
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        doc = app.predict_image(big).to_json()
    assert len(caught) == 1 and "downscaled" in str(caught[0].message)
    assert doc["image_size"] == {"width": big.shape[1], "height": big.shape[0]}
    for room in doc["rooms"]:
        assert max(x for x, _ in room["polygon"]) <= big.shape[1] + 1


def test_train_and_val_smoke(tmp_path, capsys):
    from polyhead.apps.floorplan.synthetic import write_r3d_dataset
    from polyhead.weights import load_card

    data = write_r3d_dataset(tmp_path / "data", n=5, size=(96, 96))
    run = tmp_path / "run"
    code = main(
        [
            "floorplan",
            "train",
            "--data",
            str(data),
            "--imgsz",
            "64",
            "64",
            "--epochs",
            "1",
            "--batch",
            "4",
            "--encoder",
            "lcnet_100",
            "--no-pretrained",
            "--out",
            str(run),
            "--no-ema",
        ]
    )
    assert code == 0
    card = load_card(run / "best.safetensors")
    assert card["data"]["train_plans"] == 4 and card["data"]["val_plans"] == 1
    assert "boundary_miou" in card["metrics"] and card["model"]["heads"]["floorplan"]["room_weights"]
    capsys.readouterr()
    report = tmp_path / "val.json"
    assert (
        main(
            ["floorplan", "val", "--data", str(data), "--weights", str(run / "best.safetensors"), "--json", str(report)]
        )
        == 0
    )
    doc = json.loads(report.read_text())
    assert doc["plans"] == 1 and 0 <= doc["metrics"]["room_acc"] <= 1


def test_tta_predictions_follow_a_mirrored_plan(tiny_fp_weights):
    """With the 4 flips averaged the masks of a mirrored plan are the mirrored masks (exactly: the flip
    group), which one pass of the shipped network does not give; the CLI's --tta reaches the app."""
    from polyhead.apps.floorplan.app import FloorplanApp
    from polyhead.apps.floorplan.synthetic import synthetic_plan

    app = FloorplanApp().load()  # the shipped weights' input is square: a plan of that size is not letterboxed
    rgb = synthetic_plan(np.random.default_rng(5), tuple(app.imgsz)).image
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    plain = [app.predict_masks(rgb, tta=False), app.predict_masks(mirrored, tta=False)]
    tta = [app.predict_masks(rgb, tta=True), app.predict_masks(mirrored, tta=True)]
    for a, b in zip(*tta, strict=True):
        assert (a[:, ::-1] != b).mean() < 0.001  # argmax ties at most
    assert any((a[:, ::-1] != b).mean() > 0.002 for a, b in zip(*plain, strict=True))
    assert not app.tta, "a call's tta does not change the loaded setting"
    parser = argparse.ArgumentParser()
    app.add_arguments("predict", parser)
    args = parser.parse_args(["--tta"])
    args.trust_pickle = False
    assert FloorplanApp().load(tiny_fp_weights, **app.load_options(args)).tta is True


def test_bench_reports_every_figure(tiny_fp_weights, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "floorplan",
                "--weights",
                str(tiny_fp_weights),
                "--imgsz",
                "128",
                "--rounds",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    for key in ("model_plans_per_s", "end_to_end_no_ocr_plans_per_s", "end_to_end_tta_no_ocr_plans_per_s"):
        assert doc[key] > 0, key
    assert doc["input"] == "128x128" and doc["vectorise_ms"] > 0 and doc["plan"]["walls"] > 0
