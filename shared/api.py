"""The Python API: ``load(name)`` gives an app; calling it on an image, array, folder, glob or video
gives :class:`Prediction` objects; ``train`` / ``val`` / ``export`` take the CLI's options as keywords.

>>> import polyhead                                                           # doctest: +SKIP
>>> app = polyhead.load("driving")                                            # doctest: +SKIP
>>> [p.to_json()["objects"] for p in app("street.jpg", conf=0.3)]             # doctest: +SKIP
>>> for p in app("dashcam.mp4", stream=True): p.save("runs/frames")           # doctest: +SKIP
>>> app.train(data="datasets/driving.yaml", epochs=3)                        # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import difflib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polyhead.errors import InputError
from polyhead.results import Result, envelope


def load(name: str, weights: str | Path | None = None, **options):
    """The registered app ``name`` with its weights loaded (default: the shipped ones).

    >>> app = load("face")                                            # doctest: +SKIP
    """
    from polyhead.registry import discover_apps

    apps = discover_apps()
    if name not in apps:
        raise InputError(None, f"no app '{name}'{_suggest(name, apps)}; installed: {', '.join(sorted(apps))}")
    app = apps[name]
    check_options(app.load, options, f"{name} load")
    return app.load(weights, **options)


@dataclass
class Prediction:
    """One frame's result with its input: serialises into the common envelope, draws, saves.

    App-specific fields are reachable directly (``p.boxes``, ``p.faces``, ``p.rooms``...).
    """

    result: Result
    image: np.ndarray  # the RGB input
    source: str
    name: str
    frame: int | None = None
    overlay_suffix: str = ".jpg"  # the app's overlay file type

    def __getattr__(self, key: str):
        if key.startswith("__") or key in ("result", "image", "source", "name", "frame", "overlay_suffix"):
            raise AttributeError(key)
        return getattr(self.result, key)

    def to_json(self) -> dict:
        return envelope(self.result.to_json(), self.source, self.image.shape[:2], self.frame)

    def plot(self) -> np.ndarray:
        """The overlay as an RGB array."""
        return self.result.plot(self.image)

    def save(self, out_dir: str | Path, overlay: bool = True) -> list[Path]:
        """``<name>.jpg`` (or the app's overlay type), the result's extra files, then ``<name>.json`` into ``out_dir``
        (atomically, exactly what batch predict writes); returns the paths. As in batch predict, a file
        that is the input itself is never replaced (one-line error, nothing of the item written)."""
        from polyhead.predict import BatchReport, safe_name, write_image_outputs

        report = BatchReport()
        name = safe_name(self.name if self.frame is None else f"{self.name}_{self.frame:06d}")
        out = Path(out_dir)
        inputs: set[tuple[int, int]] = set()
        if self.source not in ("array", "PIL image") and Path(self.source).is_file():
            st = Path(self.source).stat()
            inputs.add((st.st_dev, st.st_ino))
        suffix = self.overlay_suffix
        write_image_outputs(
            report, out, name, self.source, self.image, self.result, overlay, True, inputs, overlay_suffix=suffix
        )
        return report.written


def predict_call(app, source, stream: bool = False, bgr: bool = False, **options):
    """What ``app(source, ...)`` does: a list of predictions, or a generator with ``stream=True``."""
    check_options(app.predict_image, options, f"{app.name} predict", skip_first=True)
    if hasattr(app, "ensure_loaded"):
        app.ensure_loaded()
    gen = (
        Prediction(app.predict_image(rgb, **options), rgb, label, name, frame, getattr(app, "overlay_suffix", ".jpg"))
        for rgb, label, name, frame in iter_inputs(source, bgr)
    )
    return gen if stream else list(gen)


def iter_inputs(source, bgr: bool = False) -> Iterator[tuple[np.ndarray, str, str, int | None]]:
    """``(rgb, source label, name, frame index or None)`` for a path, folder, glob, video, numpy array
    (RGB; BGR with ``bgr=True``, as from ``cv2.imread``), PIL image, or a list of those."""
    from polyhead.io import VideoReader, read_image, resolve_source
    from polyhead.io.readers import to_rgb8

    if isinstance(source, (list, tuple)):
        for i, s in enumerate(source):
            for rgb, label, name, frame in iter_inputs(s, bgr):
                yield rgb, label, name if label != "array" else f"image{i}", frame
        return
    if isinstance(source, np.ndarray):
        if source.ndim not in (2, 3) or (source.ndim == 3 and source.shape[2] not in (1, 3, 4)) or source.size == 0:
            raise InputError("array", f"expected an (h, w), (h, w, 3) or (h, w, 4) image, got shape {source.shape}")
        yield to_rgb8(source, bgr=bgr), "array", "image", None
        return
    if type(source).__module__.startswith("PIL."):
        yield np.asarray(source.convert("RGB")).copy(), "PIL image", "image", None
        return
    if not isinstance(source, (str, Path, int)):
        raise InputError(None, f"cannot predict on a {type(source).__name__}: give a path, array or PIL image")
    for item in resolve_source(source):
        if item.kind == "image":
            yield read_image(item.path), str(item.path), item.name, None
        else:
            reader = VideoReader(item.camera if item.kind == "camera" else item.path)
            label = str(item.path) if item.path else f"camera {item.camera}"
            for i, rgb in enumerate(reader):
                yield rgb, label, item.name, i


def check_options(fn, options: dict, what: str, skip_first: bool = False) -> None:
    """Refuse keywords ``fn`` does not take (``skip_first``: nor its first parameter, the input),
    suggesting the nearest valid name."""
    params = dict(inspect.signature(fn).parameters)
    if skip_first and params:
        params.pop(next(iter(params)))
    if any(p.kind is p.VAR_KEYWORD and p.name != "_" for p in params.values()):
        return
    valid = [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n != "self"]
    for key in options:
        if key not in valid:
            raise InputError(None, f"{what}: unknown option '{key}'{_suggest(key, valid)}; valid: {', '.join(valid)}")


def mode_namespace(app, mode: str, options: dict) -> argparse.Namespace:
    """The ``argparse.Namespace`` that ``polyhead APP MODE`` would build, from Python keywords: the
    CLI's defaults, ``options`` on top; unknown names and missing required ones are one-line errors."""
    from polyhead.cli import mode_parser

    parser = mode_parser(app, mode)
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", argparse.SUPPRESS)}
    for key in options:
        if key not in actions:
            raise InputError(
                None, f"{app.name} {mode}: unknown option '{key}'{_suggest(key, actions)}; valid: {', '.join(actions)}"
            )
    missing = [d for d, a in actions.items() if (a.required or not a.option_strings) and d not in options]
    if missing:
        raise InputError(None, f"{app.name} {mode}: needs {', '.join(f'{m}=...' for m in missing)}")
    values = {d: a.default for d, a in actions.items()}
    for key, value in options.items():
        action = actions[key]
        if action.choices is not None and value is not None:
            wanted = value if isinstance(value, (list, tuple)) else [value]
            bad = [v for v in wanted if v not in action.choices]
            if bad:
                raise InputError(None, f"{app.name} {mode}: {key}={bad[0]!r} is not one of {list(action.choices)}")
        values[key] = str(value) if isinstance(value, Path) else value
    return argparse.Namespace(**values)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
