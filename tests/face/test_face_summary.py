"""Python FaceApp.predict writes the same run-level files as the CLI (summary.csv, YOLO labels)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from polyhead.apps.face.app import FaceApp

EXAMPLES = Path(__file__).resolve().parents[2] / "apps" / "face" / "examples"


def test_python_face_predict_writes_summary_and_labels(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    image = next(p for p in sorted(EXAMPLES.iterdir()) if p.suffix.lower() in (".jpg", ".png"))
    shutil.copy(image, src / image.name)
    (src / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    FaceApp().load().predict(str(src), out, save_txt=True)
    rows = list(csv.DictReader((out / "summary.csv").open()))
    by_file = {Path(r["file"]).name: r for r in rows}
    assert set(by_file) == {image.name, "broken.jpg"}
    assert by_file["broken.jpg"]["status"] == "skipped"
    assert by_file[image.name]["status"] == "ok"
    assert (out / "labels" / f"{image.stem}.txt").is_file()
