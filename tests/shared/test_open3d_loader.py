"""open3d on a bare machine: the libusb wheel replaces the system ``libusb-1.0-0`` (issue 14 §1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import polyhead.open3d_loader as loader
from polyhead.cli import main
from polyhead.errors import DependencyError, InputError

REPO = Path(__file__).resolve().parents[2]
LOADER_SNIPPET = (
    "import numpy as np\n"
    "from polyhead.open3d_loader import open3d\n"
    "o3d = open3d()\n"
    "pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.random.default_rng(0).random((500, 3))))\n"
    "down = pcd.voxel_down_sample(0.2)\n"
    "assert 0 < len(down.points) < 500, len(down.points)\n"
    "print('ok', len(pcd.points))\n"
)
PLAIN_SNIPPET = "import open3d\nprint('plain import worked')\n"
# what a user's script, or a test module, does: import the package, then open3d directly
AFTER_PACKAGE_SNIPPET = "import polyhead\nimport open3d\nprint('ok', open3d.geometry.PointCloud().is_empty())\n"


def system_libusb() -> list[str]:
    """Real paths of every ``libusb-1.0.so.0`` the dynamic linker knows (``ldconfig -p``)."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        listing = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    paths = {
        os.path.realpath(line.rsplit("=>", 1)[1].strip())
        for line in listing.splitlines()
        if "libusb-1.0.so.0" in line and "=>" in line
    }
    return sorted(p for p in paths if os.path.isfile(p))


def _python(code: str, prefix: list[str] | None = None, hide: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; with ``hide``, inside a private mount namespace in which
    ``/dev/null`` is bound over each of those files (nothing outside the namespace changes)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-c", code]
    if hide:
        mounts = " && ".join(f"mount --bind /dev/null '{p}'" for p in hide)
        script = f'{mounts} && exec "$@"'
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def _can_hide() -> str | None:
    """Why a mount namespace cannot be made here, or None if it can."""
    if os.geteuid() != 0:
        return "hiding the system libusb needs root (mount namespace)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return f"unshare -m is not permitted here ({probe.stderr.decode(errors='replace').strip()[:80]})"
    return None


def test_open3d_loads_with_the_system_libusb_hidden():
    """With every system ``libusb-1.0.so.0`` hidden, plain ``import open3d`` fails (so the library
    really is gone) and the loader still gives a working open3d. On a machine without the system
    package there is nothing to hide: the same two checks run directly."""
    libs = system_libusb()
    if libs:
        reason = _can_hide()
        if reason:
            pytest.skip(reason)
    plain = _python(PLAIN_SNIPPET, hide=libs)
    if libs or plain.returncode != 0:  # hidden or absent: the plain import must fail on libusb
        assert plain.returncode != 0, "open3d imported although the system libusb is hidden"
        assert "libusb" in plain.stderr, plain.stderr[-400:]
    loaded = _python(LOADER_SNIPPET, hide=libs)
    assert loaded.returncode == 0, loaded.stderr[-800:]
    assert loaded.stdout.strip() == "ok 500"
    after = _python(AFTER_PACKAGE_SNIPPET, hide=libs)  # import polyhead pre-loads the wheel's libusb
    assert after.returncode == 0, after.stderr[-800:]
    assert after.stdout.strip() == "ok True"


def test_loader_returns_one_cached_module():
    o3d = loader.open3d()
    assert loader.open3d() is o3d and hasattr(o3d.geometry, "TriangleMesh")
    path = loader.libusb_path()
    assert path is not None and Path(path).is_file(), "the libusb-package wheel is a dependency"


@pytest.fixture()
def broken_open3d(monkeypatch):
    """open3d that cannot be imported (as without libusb and without the wheel)."""
    monkeypatch.setattr(loader, "_module", None)
    monkeypatch.setitem(sys.modules, "open3d", None)  # makes ``import open3d`` raise ImportError
    monkeypatch.setattr(loader, "libusb_path", lambda: None)
    monkeypatch.setattr(loader, "_preloaded", False)  # the one pre-load attempt happens again, without the wheel


def test_unimportable_open3d_is_a_one_line_error(broken_open3d):
    with pytest.raises(DependencyError) as info:
        loader.open3d()
    text = str(info.value)
    assert isinstance(info.value, InputError)  # every one-line error handler reports it
    assert text.startswith("open3d cannot be imported (") and "\n" not in text
    assert "libusb-package wheel is not installed" in text and "pip install -e ." in text


def test_floorplan_3d_does_not_need_open3d(broken_open3d, tmp_path, capsys):
    """The floor-plan mesh is built and written by trimesh, so ``--3d`` works where open3d cannot load."""
    plan = REPO / "apps" / "floorplan" / "examples" / "generated_plan_0.jpg"
    code = main(["floorplan", "predict", str(plan), "--3d", "--no-ocr", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 0 and "open3d" not in err and "Traceback" not in err
    assert (tmp_path / "generated_plan_0.glb").stat().st_size > 0 and (tmp_path / "generated_plan_0.ply").is_file()
