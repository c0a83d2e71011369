"""The batch predict loop every app shares: sources in, overlays + JSON out, bad items skipped.

Videos run as a three-stage pipeline (decode | infer | draw + encode) in threads, so decoding and
encoding overlap with the model (PyTorch and OpenCV release the GIL).
"""

from __future__ import annotations

import queue
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from shared.errors import InputError
from shared.io import VideoReader, VideoWriter, read_image, resolve_source, write_bytes, write_image, write_json
from shared.results import Result

PredictFn = Callable[[np.ndarray], Result]
PredictManyFn = Callable[[list[np.ndarray]], list[Result]]
FinishFn = Callable[[object], Result]
_END = object()


@dataclass
class BatchReport:
    """What a batch run did: written files, skipped items with the reason."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0
    resumed: int = 0  # items whose outputs already existed (``resume``)

    @property
    def exit_code(self) -> int:
        if self.skipped and not self.written and not self.resumed:
            return 2
        return 1 if self.skipped else 0


def predict_source(
    source,
    out_dir: str | Path,
    predict: PredictFn,
    save_json: bool = True,
    save_overlay: bool = True,
    progress: bool = True,
    resume: bool = False,
    stages: tuple[Callable, FinishFn] | None = None,
    predict_many: PredictManyFn | None = None,
    batch: int = 1,
    per_video: Callable[[str], PredictFn] | None = None,
) -> BatchReport:
    """Run ``predict`` over an image, folder, glob or video; write ``<name>.jpg`` + ``<name>.json``
    per image and ``<name>.mp4`` + ``<name>/<frame>.json`` per video into ``out_dir``. A result with an
    ``artifacts()`` method (``{suffix: image array | bytes}``) also gets ``<name><suffix>`` files,
    written before the JSON, so an existing JSON means the item is complete; a key holding ``{name}``
    is a path inside ``out_dir`` instead (e.g. ``"crops/{name}_0.jpg"``).

    With ``predict_many`` (images -> results), images are read ``batch`` at a time and predicted
    together; if the batch call rejects an input, that batch falls back to ``predict`` one image at a
    time so only the bad image is skipped. ``per_video(name)`` makes a fresh predict function for each
    video (e.g. one that tracks objects across its frames).

    Unreadable items are skipped, reported on stderr as ``skipped <file>: <problem>`` and listed in
    the report; the rest finish. Inputs are never modified, files inside ``out_dir`` are never taken
    as inputs, and output names are sanitised so they cannot leave ``out_dir``. With ``resume``,
    items whose outputs already exist are not processed again (outputs are atomic, so an existing
    file is a complete one). ``stages = (infer, finish)`` splits video frames into inference and
    post-processing that overlap (see :func:`predict_video`).
    """
    out = Path(out_dir)
    out_abs = out.resolve()
    items = [i for i in resolve_source(source) if i.path is None or out_abs not in i.path.resolve().parents]
    if not items:
        raise InputError(source, "every input lies inside the output folder")
    if out.is_dir():  # temp files of writes cut short by a kill; every real output is whole
        for stale in out.rglob(".*.part*"):
            stale.unlink(missing_ok=True)
    report = BatchReport()
    names = _unique_names(items)
    images = [i for i in items if i.kind == "image"]
    bar = tqdm(total=len(images), desc="images", disable=not progress or len(images) < 2, dynamic_ncols=True)
    todo = []
    for item in images:
        name = names[id(item)]
        targets = [out / f"{name}.jpg"] * save_overlay + [out / f"{name}.json"] * save_json
        if resume and targets and all(t.exists() for t in targets):
            report.resumed += 1
            bar.update()
        else:
            todo.append(item)
    step = max(1, batch) if predict_many is not None else 1
    for start in range(0, len(todo), step):
        group = []
        for item in todo[start : start + step]:
            try:
                group.append((item, read_image(item.path)))
            except InputError as e:
                _skip(report, str(item.path), e.problem)
                bar.update()
        results: list = [None] * len(group)
        if predict_many is not None and len(group) > 1:
            try:
                results = list(predict_many([rgb for _, rgb in group]))
            except InputError:
                results = [None] * len(group)  # find the bad image one at a time
        for (item, rgb), result in zip(group, results, strict=True):
            try:
                if result is None:
                    result = predict(rgb)
                _write_image_outputs(report, out, names[id(item)], item.path, rgb, result, save_overlay, save_json)
            except InputError as e:
                _skip(report, str(item.path), e.problem)
            bar.update()
    bar.close()
    for item in (i for i in items if i.kind != "image"):
        name = names[id(item)]
        if resume and (out / f"{name}.mp4").exists():
            report.resumed += 1
            continue
        try:
            report.frames += predict_video(
                item.path if item.kind == "video" else item.camera,
                out / f"{name}.mp4",
                per_video(name) if per_video else stages[0] if stages else predict,
                json_dir=out / name if save_json else None,
                progress=progress,
                finish=stages[1] if stages and not per_video else None,
            )
            report.written.append(out / f"{name}.mp4")
        except InputError as e:
            _skip(report, str(item.path), e.problem)
    return report


def _write_image_outputs(
    report: BatchReport, out: Path, name: str, source, rgb: np.ndarray, result: Result, overlay: bool, json_: bool
) -> None:
    """Artifacts, overlay, then JSON (last, so an existing JSON means the item is complete)."""
    for key, data in getattr(result, "artifacts", dict)().items():  # e.g. {"_mask.png": array}
        path = out / (key.format(name=name) if "{name}" in key else f"{name}{key}")
        report.written.append(write_bytes(path, data) if isinstance(data, bytes) else write_image(path, data))
    if overlay:
        report.written.append(write_image(out / f"{name}.jpg", result.plot(rgb)))
    if json_:
        report.written.append(write_json(out / f"{name}.json", _with_source(result, source)))
    report.frames += 1


def safe_name(stem: str) -> str:
    """A file name that stays inside its folder: letters, digits, ``._-`` only, no leading dot.

    >>> safe_name("../../etc/passwd"), safe_name("café 1"), safe_name("..")
    ('etc_passwd', 'caf__1', 'item')
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip("._")
    cleaned = re.sub(r"_+", "_", cleaned) if "/" in stem else cleaned
    return cleaned[:120] or "item"


def _skip(report: BatchReport, name: str, problem: str) -> None:
    report.skipped.append((name, problem))
    print(f"skipped {name}: {problem}", file=sys.stderr)


def _with_source(result: Result, path) -> dict:
    return {"source": str(path), **result.to_json()}


def _unique_names(items) -> dict[int, str]:
    seen: dict[str, int] = {}
    names = {}
    for item in items:
        stem = safe_name(item.name)
        if stem in seen:
            seen[stem] += 1
            stem = f"{stem}_{item.path.suffix.lstrip('.') if item.path else seen[stem]}"
        else:
            seen[stem] = 0
        names[id(item)] = stem
    return names


def predict_video(
    source,
    out_path: str | Path,
    predict: PredictFn,
    json_dir: str | Path | None = None,
    progress: bool = True,
    max_queue: int = 8,
    finish: FinishFn | None = None,
) -> int:
    """Process a video (or camera) into an H.264 overlay video with the input's fps; returns frames.

    With ``finish``, ``predict`` returns raw model output and ``finish(raw) -> Result`` runs in the
    drawing thread, so post-processing overlaps with the next frame's inference.
    The output appears only when complete; on any error the partial file is removed.
    """
    reader = VideoReader(source)
    frames_q: queue.Queue = queue.Queue(max_queue)
    results_q: queue.Queue = queue.Queue(max_queue)
    errors: list[BaseException] = []
    stop = threading.Event()
    writer = VideoWriter(out_path, fps=reader.fps)

    def decode():
        try:
            for i, rgb in enumerate(reader):
                if stop.is_set():
                    break
                frames_q.put((i, rgb))
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            errors.append(e)
        finally:
            frames_q.put(_END)

    def encode():
        try:
            while (job := results_q.get()) is not _END:
                i, rgb, result = job
                if finish is not None:
                    result = finish(result)
                writer.write(result.plot(rgb))
                if json_dir is not None:
                    write_json(Path(json_dir) / f"{i:06d}.json", {"frame": i, **result.to_json()})
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            while results_q.get() is not _END:  # drain so the producer never blocks
                pass

    threads = [threading.Thread(target=decode, daemon=True), threading.Thread(target=encode, daemon=True)]
    for t in threads:
        t.start()
    bar = tqdm(total=reader.frame_count, desc=str(reader.name), disable=not progress, dynamic_ncols=True)
    n = 0
    try:
        while (job := frames_q.get()) is not _END:
            i, rgb = job
            if not errors:
                results_q.put((i, rgb, predict(rgb)))
            n += 1
            bar.update()
    except BaseException:
        stop.set()
        while frames_q.get() is not _END:  # let the decoder finish
            pass
        results_q.put(_END)
        for t in threads:
            t.join()
        writer.abort()
        raise
    finally:
        bar.close()
    results_q.put(_END)
    for t in threads:
        t.join()
    if errors or n == 0:
        writer.abort()
        if errors:
            raise errors[0]
        raise InputError(source, "video has no decodable frames")
    writer.close()
    return n
