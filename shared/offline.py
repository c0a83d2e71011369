"""Offline switches for every third-party library polyhead uses.

Set by the entry points (the ``polyhead`` command, the demo, the test suite) before torch hub,
Hugging Face, ultralytics or gradio load; **not** by ``import polyhead``, so a notebook that imports
polyhead and later loads a Hugging Face model is not silently offline. Library users who want the
same guarantee call :func:`apply` first. polyhead's own code never fetches anything either way.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CACHE_DIR = Path(os.environ.get("POLYHEAD_CACHE", Path.home() / ".cache" / "polyhead"))

_SWITCHES = {
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "0",
    "YOLO_VERBOSE": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "DO_NOT_TRACK": "1",
}


def _provide_font(config_dir: Path) -> None:
    """ultralytics downloads Arial.ttf unless one is present: hand it matplotlib's DejaVu Sans."""
    target = config_dir / "Ultralytics" / "Arial.ttf"
    if target.exists():
        return
    try:
        import matplotlib

        source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        target.parent.mkdir(parents=True, exist_ok=True)
        for name in ("Arial.ttf", "Arial.Unicode.ttf"):
            tmp = target.with_name(name + ".tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target.with_name(name))
    except Exception:  # a missing font only costs ultralytics its plot labels
        pass


def apply() -> None:
    """Set every offline switch (idempotent; user-set values are kept)."""
    for key, value in _SWITCHES.items():
        os.environ.setdefault(key, value)
    config_dir = Path(os.environ.setdefault("YOLO_CONFIG_DIR", str(CACHE_DIR / "ultralytics")))
    os.environ.setdefault("GRADIO_TEMP_DIR", str(CACHE_DIR / "gradio"))
    os.environ.setdefault("MPLCONFIGDIR", str(CACHE_DIR / "matplotlib"))
    config_dir.mkdir(parents=True, exist_ok=True)
    _provide_font(config_dir)
