"""open3d on a machine without the system ``libusb-1.0-0``: the one place that imports it.

open3d's shared library links against ``libusb-1.0.so.0``. The ``libusb-package`` wheel (a
dependency of polyhead) ships that library; loading it with ``RTLD_GLOBAL`` before the first
``import open3d`` satisfies the link, so no apt step is needed. Import open3d only through
:func:`open3d`, lazily, where it is used:

>>> o3d = open3d()                                          # doctest: +SKIP
>>> o3d.geometry.PointCloud()                               # doctest: +SKIP
"""

from __future__ import annotations

import ctypes
import threading
from types import ModuleType

from polyhead.errors import DependencyError

_lock = threading.Lock()
_module: ModuleType | None = None


def libusb_path() -> str | None:
    """Path of the libusb shipped by the ``libusb-package`` wheel, or None without the wheel."""
    try:
        import libusb_package
    except ImportError:
        return None
    path = libusb_package.get_library_path()
    return None if path is None else str(path)


_preloaded: str | None | bool = False  # False: not tried yet; else the outcome of the one attempt


def preload_libusb() -> str | None:
    """Load the wheel's libusb into the global symbol namespace once; the problem as text, or None.

    Done at ``import polyhead`` (see ``shared/__init__.py``), so that any later ``import open3d`` in the
    process, ours or the user's, finds ``libusb-1.0.so.0`` already loaded by its soname."""
    global _preloaded
    if _preloaded is False:
        _preloaded = _load_libusb()
    return _preloaded


def _load_libusb() -> str | None:
    path = libusb_path()
    if path is None:
        return "the libusb-package wheel is not installed"
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        return f"cannot load {path} ({e})"
    return None


def open3d() -> ModuleType:
    """The ``open3d`` module, imported once (libusb pre-loaded from the wheel).

    Raises :class:`DependencyError` (one line) when open3d still cannot be imported.
    """
    global _module
    if _module is not None:
        return _module
    with _lock:
        if _module is None:
            preload_problem = preload_libusb()
            try:
                import open3d as o3d
            except (ImportError, OSError) as e:
                detail = (str(e).splitlines() or [type(e).__name__])[0][:160]
                hint = f"; {preload_problem}" if preload_problem else ""
                raise DependencyError(
                    None,
                    f"open3d cannot be imported ({detail}{hint}); reinstall polyhead with `pip install -e .` "
                    "(it brings open3d and libusb-package)",
                ) from None
            _module = o3d
    return _module
