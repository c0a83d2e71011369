"""Bounded demo jobs: one private result folder per request, input budgets, a time limit per job,
a cap on jobs running at once, and a sweep that removes old request folders.

A tab's handler is wrapped with :func:`demo_job`; inside it, :func:`job_file` names a file in the
request's own folder, :func:`check_deadline` stops a long loop once the job has run out of time, and
:func:`read_upload` / :func:`check_video` / :func:`check_volume` refuse inputs over the budget before
any heavy work starts.

>>> @demo_job(timeout=60)
... def on_image(path):
...     rgb = read_upload(path)
...     return str(write_image(job_file("result.jpg"), rgb))
"""

from __future__ import annotations

import contextvars
import functools
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from polyhead.errors import InputError

#: decoded image budget (pixels); ``polyhead.io.read_image`` already decodes larger files reduced
MAX_IMAGE_PIXELS = 40_000_000
#: video frame budget (pixels per frame, 4K UHD) and length budget (frames)
MAX_VIDEO_PIXELS = 3840 * 2160
MAX_VIDEO_FRAMES = 9_000
#: NIfTI budget (voxels), checked from the header before the voxels are read
MAX_VOLUME_VOXELS = 32_000_000
#: wall-clock limits (seconds): one image, one video / volume; ``POLYHEAD_DEMO_TIMEOUT`` overrides both
IMAGE_TIMEOUT = 120.0
LONG_TIMEOUT = 600.0
#: jobs computing at once, over all tabs (the rest wait in Gradio's queue)
MAX_RUNNING = 4
#: request folders older than this (seconds) are removed by the sweep
MAX_AGE = 3600.0
SWEEP_EVERY = 300.0
PREFIX = "req-"

F = TypeVar("F", bound=Callable[..., Any])


class JobTimeout(Exception):
    """The job ran past its time limit."""


def jobs_root() -> Path:
    """The demo's own temp root (``POLYHEAD_DEMO_JOBS`` or ``<system temp>/polyhead-demo-<uid>``).

    It lies under the system temp folder, which Gradio may copy results from."""
    default = Path(tempfile.gettempdir()) / f"polyhead-demo-{os.getuid() if hasattr(os, 'getuid') else 0}"
    return Path(os.environ.get("POLYHEAD_DEMO_JOBS", default))


@dataclass
class Job:
    """One request: its private folder, its deadline and a cancel flag."""

    timeout: float
    folder: Path = field(default_factory=lambda: jobs_root() / f"{PREFIX}{time.time_ns()}-{uuid.uuid4().hex[:12]}")
    started: float = field(default_factory=time.monotonic)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def file(self, name: str) -> Path:
        """A path in this request's folder (created on first use); ``name`` must be a plain file name."""
        if Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"not a plain file name: {name!r}")
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / name

    def check(self) -> None:
        """Raise :class:`JobTimeout` once the time is up or the job was given up on."""
        if self.cancelled.is_set() or time.monotonic() - self.started > self.timeout:
            self.cancelled.set()
            raise JobTimeout(self.message())

    def message(self) -> str:
        return (
            f"the job was stopped after its {self.timeout:.0f} s time limit; try a smaller image, a shorter "
            "video or a smaller volume"
        )


_CURRENT: contextvars.ContextVar[Job | None] = contextvars.ContextVar("polyhead_demo_job", default=None)
_RUNNING = threading.BoundedSemaphore(MAX_RUNNING)


class _LiveFolders:
    """Folders of jobs still running or just answered (never swept while listed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folders: dict[Path, int] = {}

    def hold(self, folder: Path) -> None:
        with self._lock:
            self._folders[folder] = self._folders.get(folder, 0) + 1

    def release(self, folder: Path) -> None:
        with self._lock:
            n = self._folders.get(folder, 1) - 1
            if n <= 0:
                self._folders.pop(folder, None)
            else:
                self._folders[folder] = n

    def __contains__(self, folder: Path) -> bool:
        with self._lock:
            return folder in self._folders


_LIVE = _LiveFolders()


def current_job() -> Job | None:
    return _CURRENT.get()


def job_file(name: str) -> Path:
    """A file in the running request's private folder (outside a job: a fresh folder of its own)."""
    job = _CURRENT.get() or Job(timeout=LONG_TIMEOUT)
    return job.file(name)


def job_folder() -> Path:
    """The running request's private folder, created (outside a job: a fresh folder of its own)."""
    job = _CURRENT.get() or Job(timeout=LONG_TIMEOUT)
    job.folder.mkdir(parents=True, exist_ok=True)
    return job.folder


def check_deadline() -> None:
    """Stop the running job if its time is up (a no-op outside a job)."""
    job = _CURRENT.get()
    if job is not None:
        job.check()


def _timeout(default: float) -> float:
    value = os.environ.get("POLYHEAD_DEMO_TIMEOUT")
    try:
        return float(value) if value else default
    except ValueError:
        return default


def run_job(fn: Callable[..., Any], args: tuple, kwargs: dict, timeout: float) -> Any:
    """Run ``fn`` in a worker thread as one bounded job; raise ``gr.Error`` with a one-line reason on a
    bad input or when the time is up (the worker is told to stop at its next :func:`check_deadline`)."""
    import gradio as gr

    job = Job(timeout=timeout)
    box: dict[str, Any] = {}
    done = threading.Event()
    _RUNNING.acquire()  # waits while MAX_RUNNING jobs compute (timed-out ones count until they stop)
    _LIVE.hold(job.folder)
    job.started = time.monotonic()

    def work() -> None:
        _CURRENT.set(job)
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = e
        finally:
            _RUNNING.release()
            _LIVE.release(job.folder)
            done.set()

    ctx = contextvars.copy_context()  # carries Gradio's progress tracker into the worker
    worker = threading.Thread(target=ctx.run, args=(work,), name="polyhead-demo-job", daemon=True)
    try:
        worker.start()
    except BaseException:
        _RUNNING.release()
        _LIVE.release(job.folder)
        raise
    if not done.wait(timeout):
        job.cancelled.set()
        raise gr.Error(job.message())
    error = box.get("error")
    if error is None:
        return box.get("value")
    if isinstance(error, JobTimeout):
        raise gr.Error(str(error)) from None
    if isinstance(error, InputError | ValueError):
        raise gr.Error(str(error)) from None
    if isinstance(error, MemoryError):
        raise gr.Error("the input needs more memory than this demo allows; try a smaller one") from None
    raise error


def demo_job(timeout: float = IMAGE_TIMEOUT) -> Callable[[F], F]:
    """Decorator: the handler runs as a bounded job (its signature is kept for Gradio)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            return run_job(fn, args, kwargs, _timeout(timeout))

        run.__polyhead_job__ = True  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return wrap


def is_job(fn: Callable[..., Any]) -> bool:
    """True for a handler already wrapped by :func:`demo_job`."""
    return bool(getattr(fn, "__polyhead_job__", False))


def arrays_to_files(fn: F, image_outputs: list[bool]) -> F:
    """Wrap a handler so every numpy array it returns for an image output is written (atomically) into
    the request's own folder and handed to Gradio as that file. Gradio would otherwise save the array
    under a content-hash name in its shared cache, rewriting the very file another client is
    downloading when two answers are equal (the h11 "Too little data for declared Content-Length")."""
    from polyhead.io import to_rgb8
    from polyhead.io.writers import write_image

    def as_file(value: Any, k: int) -> Any:
        if not isinstance(value, np.ndarray):
            return value
        ok = value.dtype == np.uint8 and (value.ndim == 2 or (value.ndim == 3 and value.shape[2] == 3))
        return str(write_image(job_file(f"output{k}.png"), value if ok else to_rgb8(value)))

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if len(image_outputs) == 1:
            return as_file(result, 0) if image_outputs[0] else result
        if isinstance(result, tuple | list) and len(result) == len(image_outputs):
            return type(result)(as_file(v, k) if image_outputs[k] else v for k, v in enumerate(result))
        return result

    return run  # type: ignore[return-value]


# ---------------------------------------------------------------- input budgets
def upload_path(value: Any) -> str | None:
    """The local path of a Gradio file value (str, ``FileData``-like or a dict), or None."""
    if value is None:
        return None
    if isinstance(value, str | Path):
        return str(value) or None
    if isinstance(value, dict):
        return value.get("path") or value.get("name")
    return getattr(value, "path", None) or getattr(value, "name", None)


def read_upload(path: str | Path) -> np.ndarray:
    """An uploaded image through the CLI's reader (its size guards apply), then the demo's budget."""
    from polyhead.io import read_image

    rgb = read_image(path)
    h, w = rgb.shape[:2]
    if h * w > MAX_IMAGE_PIXELS:
        raise InputError(Path(path).name, f"image is {w}x{h}, above the demo's {MAX_IMAGE_PIXELS / 1e6:.0f} MP limit")
    return rgb


def check_video(path: str | Path) -> None:
    """Refuse a video whose frames or length are over the demo's budget (reads only the first frame)."""
    from polyhead.io import VideoReader

    reader = VideoReader(path)
    try:
        if reader.width * reader.height > MAX_VIDEO_PIXELS:
            raise InputError(
                Path(path).name, f"video frames are {reader.width}x{reader.height}, above the demo's 3840x2160 limit"
            )
        if reader.frame_count and reader.frame_count > MAX_VIDEO_FRAMES:
            raise InputError(
                Path(path).name, f"video has {reader.frame_count} frames, above the demo's {MAX_VIDEO_FRAMES} limit"
            )
    finally:
        reader._cap.release()  # VideoReader has no close(); the frames are not needed here


def check_volume(path: str | Path) -> tuple[int, ...]:
    """The NIfTI's shape from its header; refuses volumes over the demo's voxel budget before reading."""
    import nibabel as nib

    try:
        shape = tuple(int(s) for s in nib.load(str(path)).shape)
    except Exception:  # the volume reader gives the precise reason
        from polyhead.apps.medical.volume import read_volume

        read_volume(path)
        raise InputError(Path(path).name, "not a readable NIfTI volume") from None
    voxels = int(np.prod(shape, dtype=np.int64)) if shape else 0
    if voxels > MAX_VOLUME_VOXELS:
        raise InputError(
            Path(path).name,
            f"volume {'x'.join(map(str, shape))} has {voxels / 1e6:.0f} M voxels, above the demo's "
            f"{MAX_VOLUME_VOXELS / 1e6:.0f} M limit",
        )
    return shape


# ---------------------------------------------------------------- cleaning
def sweep(root: Path | None = None, max_age: float = MAX_AGE, now: float | None = None) -> list[Path]:
    """Remove request folders under ``root`` not touched for ``max_age`` seconds (never a live one);
    returns the removed folders. Only ``req-*`` folders this module made are considered."""
    root = jobs_root() if root is None else Path(root)
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return removed
    for p in entries:
        if not p.name.startswith(PREFIX) or p.is_symlink() or not p.is_dir() or p in _LIVE:
            continue
        try:
            newest = max([p.stat().st_mtime, *(c.stat().st_mtime for c in p.iterdir())])
        except OSError:
            continue
        if now - newest > max_age:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


class Sweeper:
    """A daemon thread that calls :func:`sweep` every ``every`` seconds until :meth:`stop`."""

    def __init__(self, every: float = SWEEP_EVERY, max_age: float = MAX_AGE, root: Path | None = None):
        self.every, self.max_age, self.root = every, max_age, root
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="polyhead-demo-sweep", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while True:
            sweep(self.root, self.max_age)
            if self._stop.wait(self.every):
                return


_SWEEPER: Sweeper | None = None
_SWEEPER_LOCK = threading.Lock()


def ensure_sweeper() -> Sweeper:
    """Start the process's one background sweep of old request folders (idempotent)."""
    global _SWEEPER
    with _SWEEPER_LOCK:
        if _SWEEPER is None:
            _SWEEPER = Sweeper().start()
        return _SWEEPER


_LOAD_LOCK = threading.Lock()


def ensure_loaded(app: Any) -> Any:
    """Load an app's default weights once, even when two first requests arrive together."""
    with _LOAD_LOCK:
        app.ensure_loaded()
    return app
