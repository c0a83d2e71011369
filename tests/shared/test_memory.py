"""Peak resident memory on an 8000x8000 input stays bounded (the image is decoded at a reduced size with a
warning, then letterboxed or windowed), measured in a fresh process."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

RSS_BOUND_MB = 2500  # stated in docs/reliability.md

# VmHWM is the peak RSS of this process image only; ru_maxrss would also count the parent's RSS at
# fork time (Linux keeps it across execve), so a large pytest process made the child look large
SCRIPT = """
import json, sys
from polyhead.cli import main
code = main(sys.argv[1:])
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"code": code, "peak_mb": int(hwm.split()[1]) / 1024}))
"""


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    ramp = np.tile(np.arange(8000, dtype=np.uint16)[None] % 256, (8000, 1)).astype(np.uint8)
    cv2.imwrite(str(path), cv2.merge([ramp, ramp.T.copy(), ramp]))
    return path


def _peak(args: list[str]) -> dict:
    run = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1]) | {"stderr": run.stderr}


@pytest.mark.slow
@pytest.mark.parametrize("app", ["driving", "medical"])
def test_8000x8000_input_stays_under_the_memory_bound(app, huge_png, tmp_path, tiny_weights, tiny_medical_weights):
    weights = tiny_weights if app == "driving" else tiny_medical_weights
    extra = ["--overlap", "0"] if app == "medical" else []  # windows still tile a 4000x4000 decode
    out = _peak([app, "predict", str(huge_png), "--weights", str(weights), "--out", str(tmp_path / "out"), *extra])
    print(app, round(out["peak_mb"]), "MB")
    assert out["code"] == 0
    assert "decoded at" in out["stderr"] or "downscal" in out["stderr"]  # the one-line warning
    assert out["peak_mb"] < RSS_BOUND_MB, f"{app}: peak RSS {out['peak_mb']:.0f} MB"
    assert (tmp_path / "out" / "huge.json").is_file()
