"""The batch predict loop every app shares: sources in, overlays + JSON out, bad items skipped.

Videos run as a three-stage pipeline (decode | infer | draw + encode) in threads, so decoding and
encoding overlap with the model (PyTorch and OpenCV release the GIL).
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from polyhead.errors import InputError
from polyhead.io import (
    SourceItem,
    VideoReader,
    VideoWriter,
    read_image,
    resolve_source,
    write_bytes,
    write_image,
    write_json,
)
from polyhead.io.run_files import RunFiles
from polyhead.io.writers import sweep_temp_files
from polyhead.results import Result, envelope
from polyhead.shard import split_shard

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
    partial: list[tuple[str, str]] = field(default_factory=list)  # videos decoded only in part
    names: dict[str, str] = field(default_factory=dict)  # item key (see item_key) -> output name
    run_files: list[Path] = field(default_factory=list)  # summary.csv, COCO tables (see RunFiles)

    @property
    def exit_code(self) -> int:
        """0: everything done; 1: something skipped or partial; 2: nothing done at all."""
        if self.skipped and not self.written and not self.resumed:
            return 2
        return 1 if self.skipped or self.partial else 0


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
    also_named: Sequence[SourceItem] = (),
    overlay_suffix: str = ".jpg",
    extra_suffixes: tuple[str, ...] = (),
    shard: tuple[int, int] | None = None,
    run_files: RunFiles | None = None,
) -> BatchReport:
    """Run ``predict`` over an image, folder, glob or video; write ``<name>.jpg`` (``overlay_suffix``) +
    ``<name>.json`` per image and ``<name>.mp4`` + ``<name>/<frame>.json`` per video into ``out_dir``. A
    result with an ``artifacts()`` method (``{suffix: image array | bytes | writer(path)}``) also gets
    ``<name><suffix>`` files, written before the JSON, so an existing JSON means the item is complete; a
    key holding ``{name}`` is a path inside ``out_dir`` instead (e.g. ``"crops/{name}_0.jpg"``).
    ``extra_suffixes`` are the artifact suffixes an app may write, so naming never hands out a name
    whose extra files would replace a user's.

    With ``predict_many`` (images -> results), images are read ``batch`` at a time and predicted
    together; if the batch call rejects an input, that batch falls back to ``predict`` one image at a
    time so only the bad image is skipped. ``per_video(name)`` makes a fresh predict function for each
    video (e.g. one that tracks objects across its frames).

    Unreadable items are skipped, reported on stderr as ``skipped <file>: <problem>`` and listed in
    the report; the rest finish. Any exception of one item (not only :class:`InputError`) skips that
    item as ``skipped <file>: <ExceptionType>: <message>``; KeyboardInterrupt and SystemExit stop the
    run. A video that decodes only in part is written with what could be read, warned about and
    listed in ``report.partial`` (exit code 1).

    Inputs are never modified, files inside ``out_dir`` are never taken as inputs, and output names
    are sanitised and unique (see :func:`unique_names`; ``also_named`` items take part in the naming
    without being processed, e.g. medical volumes, and ``report.names`` holds every name). An output
    never replaces an input, nor a file that this program did not write (see :func:`unique_names`).
    With ``resume``, items whose outputs already exist (and whose JSON names the same input) are not
    processed again (outputs are atomic, so an existing file is a complete one). At start-up only
    this program's stale temp files are removed, only in the folders this run writes into.
    ``stages = (infer, finish)`` splits video frames into inference and post-processing that overlap
    (see :func:`predict_video`).

    ``shard = (I, N)`` processes only shard I of N of the inputs (see :mod:`polyhead.shard`); names
    are still given over all inputs, so shards can share ``out_dir``. ``run_files`` (a
    :class:`~polyhead.io.run_files.RunFiles`) gets every input's outcome and writes ``summary.csv``
    (and with its options YOLO labels and COCO results) at the end, also when items were skipped.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(out, "--out is a file, not a folder")
    items = inputs_outside(resolve_source(source), out, source)
    if not items:
        raise InputError(source, "every input lies inside the output folder")
    everything = list(items)
    items, others = split_shard(items, [i.path for i in items], shard)
    also_named = [*also_named, *others]
    if run_files is not None:
        run_files.check()  # before anything is written
        run_files.begin(everything)
    sweep_temp_files(out)  # temp files of writes cut short by a kill; every real output is whole
    swept = {out}
    report = BatchReport()
    outputs = {**OUTPUTS, "image": (overlay_suffix, ".json", *extra_suffixes)}
    report.names = unique_names([*items, *also_named], out, outputs)
    inputs = _input_ids([*items, *also_named])

    def skip(item: SourceItem, problem: str) -> None:
        _skip(report, item.label, problem)
        if run_files is not None:
            run_files.skipped(item, report.names[item_key(item)], problem)

    images = [i for i in items if i.kind == "image"]
    bar = tqdm(total=len(images), desc="images", disable=not progress or len(images) < 2, dynamic_ncols=True)
    todo = []
    for item in images:
        name = report.names[item_key(item)]
        targets = [out / f"{name}{overlay_suffix}"] * save_overlay + [out / f"{name}.json"] * save_json
        done = all(t.exists() for t in targets) and (not save_json or json_claims(out / f"{name}.json", item))
        if resume and targets and done:
            report.resumed += 1
            if run_files is not None:
                run_files.resumed(item, name, out / f"{name}.json" if save_json else None)
            bar.update()
        else:
            todo.append(item)
    step = max(1, batch) if predict_many is not None else 1
    for start in range(0, len(todo), step):
        group = []
        for item in todo[start : start + step]:
            try:
                group.append((item, read_image(item.path)))
            except Exception as e:  # noqa: BLE001 - one bad item never costs the others
                skip(item, problem_of(e, item.label))
                bar.update()
        results: list = [None] * len(group)
        if predict_many is not None and len(group) > 1:
            try:
                results = list(predict_many([rgb for _, rgb in group]))
            except Exception:  # noqa: BLE001 - find the bad image one at a time
                results = []
            if len(results) != len(group):
                results = [None] * len(group)
        for (item, rgb), result in zip(group, results, strict=True):
            try:
                if result is None:
                    result = predict(rgb)
                name = report.names[item_key(item)]
                doc = write_image_outputs(
                    report, out, name, item.path, rgb, result, save_overlay, save_json, inputs, swept, overlay_suffix
                )
                if run_files is not None:
                    run_files.image(item, name, doc)
            except Exception as e:  # noqa: BLE001
                skip(item, problem_of(e, item.label))
            bar.update()
    bar.close()
    for item in (i for i in items if i.kind != "image"):
        name = report.names[item_key(item)]
        if resume and (out / f"{name}.mp4").exists():
            report.resumed += 1
            if run_files is not None:
                run_files.resumed(item, name, None)
            continue
        stats: dict = {}
        on_frame = None
        if run_files is not None:
            on_frame = partial(run_files.frame, item, name)
        if stages and hasattr(stages[1], "new_video"):
            stages[1].new_video()  # fresh track ids for every video
        try:
            if save_json:
                sweep_temp_files(out / name)
            frames = predict_video(
                item.path if item.kind == "video" else item.camera,
                out / f"{name}.mp4",
                per_video(name) if per_video else stages[0] if stages else predict,
                json_dir=out / name if save_json else None,
                progress=progress,
                finish=stages[1] if stages and not per_video else None,
                stats=stats,
                on_frame=on_frame,
            )
            report.frames += frames
            report.written.append(out / f"{name}.mp4")
            if stats.get("incomplete"):
                report.partial.append((item.label, stats["summary"]))
            if run_files is not None:
                run_files.video(item, name, frames, stats["summary"] if stats.get("incomplete") else "")
        except Exception as e:  # noqa: BLE001
            _skip(report, item.label, problem_of(e, item.label))
            if run_files is not None:
                run_files.video_skipped(item, name, problem_of(e, item.label))
    if run_files is not None:
        report.run_files = run_files.finish()
    return report


def inputs_outside(items: Iterable[SourceItem], out: str | Path, source=None) -> list[SourceItem]:
    """The items that do not lie inside the output folder ``out`` (a folder or glob never reads our
    own outputs back); a ``source`` that is one existing file is kept wherever it lies, as named."""
    items = list(items)
    if source is not None and not isinstance(source, int) and Path(str(source)).is_file():
        return items
    out_abs = Path(out).resolve()
    return [i for i in items if i.path is None or out_abs not in i.path.resolve().parents]


def problem_of(e: BaseException, label: str | None = None) -> str:
    """One line for a skipped item ``label``: the problem of an :class:`InputError` (with the file it
    names, when that is another file than ``label``), else ``Type: first line of the message``.

    >>> problem_of(ValueError("bad\\nsecond line")), problem_of(InputError("a.jpg", "zero-byte file"), "a.jpg")
    ('ValueError: bad', 'zero-byte file')
    """
    if isinstance(e, InputError):
        return e.problem if e.path in (None, label) else f"{e.path}: {e.problem}"
    lines = str(e).strip().splitlines()
    text = lines[0].strip()[:300] if lines else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _input_ids(items: Iterable[SourceItem]) -> set[tuple[int, int]]:
    ids = set()
    for item in items:
        if item.path is not None:
            try:
                st = item.path.stat()
            except OSError:
                continue
            ids.add((st.st_dev, st.st_ino))
    return ids


def _is_input(path: Path, inputs: set[tuple[int, int]]) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return (st.st_dev, st.st_ino) in inputs


def write_image_outputs(
    report: BatchReport,
    out: Path,
    name: str,
    source,
    rgb: np.ndarray,
    result: Result,
    overlay: bool,
    json_: bool,
    inputs: set[tuple[int, int]] = frozenset(),
    swept: set[Path] | None = None,
    overlay_suffix: str = ".jpg",
) -> dict:
    """Artifacts, overlay, then JSON (last, so an existing JSON means the item is complete). A path
    that is an input of the run is refused (:class:`InputError`) before anything of the item is written.
    Returns the item's result JSON (also when it is not written)."""
    jobs: list[tuple[Path, str, object]] = []
    for key, data in getattr(result, "artifacts", dict)().items():  # e.g. {"_mask.png": array}
        jobs.append((out / (key.format(name=name) if "{name}" in key else f"{name}{key}"), "artifact", data))
    if overlay:
        jobs.append((out / f"{name}{overlay_suffix}", "overlay", None))
    if json_:
        jobs.append((out / f"{name}.json", "json", None))
    for path, _, _ in jobs:
        if _is_input(path, inputs):
            raise InputError(path, "output would replace an input of this run; choose another --out")
    doc = envelope(result.to_json(), source, rgb.shape[:2])
    for path, kind, data in jobs:
        if swept is not None and path.parent not in swept:
            sweep_temp_files(path.parent)
            swept.add(path.parent)
        if kind == "json":
            report.written.append(write_json(path, doc))
        elif kind == "overlay":
            report.written.append(write_image(path, result.plot(rgb)))
        elif callable(data):  # a writer of its own (meshes): writes ``path`` atomically, returns it
            report.written.append(Path(data(path)))
        else:
            report.written.append(write_bytes(path, data) if isinstance(data, bytes) else write_image(path, data))
    report.frames += 1
    return doc


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


#: the files each kind of item writes, as suffixes of its name ("/" is a folder <name>/)
OUTPUTS: dict[str, tuple[str, ...]] = {
    "image": (".jpg", ".json"),
    "video": (".mp4", ".json", "/"),
    "camera": (".mp4", ".json", "/"),
    "volume": (".json", "_pred.nii.gz"),
}
_SOURCE_RE = re.compile(r'\A\s*\{\s*"source"\s*:\s*("(?:[^"\\]|\\.)*")')


def item_key(item: SourceItem) -> str:
    """A stable key of an item: its absolute path, or ``camera:<N>``."""
    return f"camera:{item.camera}" if item.path is None else os.path.abspath(item.path)


def json_source(path: Path) -> str | None:
    """The ``"source"`` a polyhead output JSON starts with; ``""`` for a file that is not one
    (another program's JSON, a BIDS sidecar, ...); None when there is no file."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16).decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    m = _SOURCE_RE.match(head)
    if m is None:
        return ""
    try:
        return str(json.loads(m.group(1)))
    except ValueError:  # pragma: no cover - the regex only matches JSON strings
        return ""


def json_claims(path: Path, item: SourceItem) -> bool:
    """True when ``path`` is a polyhead output JSON written for ``item`` (same input file)."""
    src = json_source(path)
    if not src or item.path is None:
        return False
    try:
        return os.path.samefile(src, item.path)
    except OSError:
        return os.path.abspath(src) == os.path.abspath(item.path)


def unique_names(
    items: Sequence[SourceItem], out: str | Path, outputs: Mapping[str, tuple[str, ...]] = OUTPUTS
) -> dict[str, str]:
    """Output names (``item_key(item) -> name``), sanitised by :func:`safe_name`, unique over any
    number of collisions, compared case-insensitively (``A.jpg`` and ``a.png`` would share files on a
    case-insensitive filesystem), and deterministic: the same input set gives the same names, so
    ``--resume`` finds them again.

    Items are named in sorted order. A name only one item wants, and that is free, is kept. Where
    several items want one name, the first keeps it, the next get ``<name>_<suffix>`` (``a_png``),
    then ``<name>_<suffix>_2``, ``_3``, ...; a candidate is never a name another item wants.

    A name is not free when one of its outputs (``outputs[kind]``) exists and would be replaced
    against the rule "never overwrite an input, nor a file this program did not write": it is an
    input of the run; or it is a JSON that is not a polyhead output (a sidecar such as BIDS
    ``sub-01_T1w.json``, or any other program's file); or it lies in a folder that holds inputs and
    the item's own JSON does not prove it ours (a previous run of the same input). Such an item
    takes the next free name instead and a ``note:`` line says so.
    """
    out = Path(out)
    inputs = _input_ids(items)
    input_dirs = {os.path.dirname(os.path.realpath(i.path)) for i in items if i.path is not None}
    order = sorted(items, key=lambda i: (safe_name(i.name).casefold(), item_key(i)))
    wanted: dict[str, int] = {}
    for item in order:
        wanted[safe_name(item.name).casefold()] = wanted.get(safe_name(item.name).casefold(), 0) + 1
    taken: set[str] = set()
    names: dict[str, str] = {}

    def free(name: str, item: SourceItem) -> bool:
        if name.casefold() in taken:
            return False
        mine = json_claims(out / f"{name}.json", item)
        for suffix in outputs.get(item.kind, (".json",)):
            path = out / (name if suffix == "/" else f"{name}{suffix}")
            if not os.path.lexists(path):
                continue
            if suffix == "/":
                if not path.is_dir():
                    return False
                continue
            if _is_input(path, inputs):
                return False
            if mine:
                continue
            if suffix == ".json" and json_source(path) == "":
                return False
            if os.path.dirname(os.path.realpath(path)) in input_dirs:
                return False
        return True

    for item in order:  # names that one item alone wants
        base = safe_name(item.name)
        if wanted[base.casefold()] == 1 and free(base, item):
            names[item_key(item)] = base
            taken.add(base.casefold())
    for item in order:  # the rest, in sorted order
        if item_key(item) in names:
            continue
        base = safe_name(item.name)
        suffix = item.path.name[len(item.name) :] if item.path is not None else ""
        ext = safe_name(suffix.replace(".", "_")) if suffix.strip(".") else ""
        first = [base] if wanted[base.casefold()] > 1 else []
        tail = f"{base}_{ext}" if ext and ext != "item" else f"{base}_1"
        for cand in itertools.chain(first, [tail], (f"{tail}_{k}" for k in itertools.count(2))):
            if cand.casefold() != base.casefold() and cand.casefold() in wanted:
                continue
            if free(cand, item):
                break
        if cand != base:
            why = "another input or a file this program did not write has it"
            print(f"note: {item.label}: outputs named {cand}.* ({base}.*: {why})", file=sys.stderr)
        names[item_key(item)] = cand
        taken.add(cand.casefold())
    return names


def _video_source(source) -> str:
    """What a frame's JSON names as its source: the video file, or ``camera N``."""
    return f"camera {source}" if isinstance(source, int) else str(source)


def predict_video(
    source,
    out_path: str | Path,
    predict: PredictFn,
    json_dir: str | Path | None = None,
    progress: bool = True,
    max_queue: int = 8,
    finish: FinishFn | None = None,
    stats: dict | None = None,
    on_frame: Callable[[int, dict], None] | None = None,
) -> int:
    """Process a video (or camera) into an H.264 overlay video with the input's fps; returns frames.

    With ``finish``, ``predict`` returns raw model output and ``finish(raw) -> Result`` runs in the
    drawing thread, so post-processing overlaps with the next frame's inference.
    The output appears only when complete; on any error the partial file is removed.
    Frame JSONs are named by the frame's index in the file. A video the reader could decode only in
    part (corrupt stretch, cut short) still gives its decodable frames, with a ``warning:`` line on
    stderr; ``stats`` (if given) gets ``decoded``, ``expected``, ``missing``, ``incomplete`` and a
    one-line ``summary``. ``on_frame(index, doc)`` gets each frame's result JSON (in order, from the
    drawing thread).
    """
    reader = VideoReader(source)
    frames_q: queue.Queue = queue.Queue(max_queue)
    results_q: queue.Queue = queue.Queue(max_queue)
    errors: list[BaseException] = []
    stop = threading.Event()
    writer = VideoWriter(out_path, fps=reader.fps)

    def decode():
        try:
            for i, rgb in reader.indexed():
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
                if json_dir is not None or on_frame is not None:
                    doc = envelope(result.to_json(), _video_source(source), rgb.shape[:2], frame=i)
                    if json_dir is not None:
                        write_json(Path(json_dir) / f"{i:06d}.json", doc)
                    if on_frame is not None:
                        on_frame(i, doc)
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
        raise InputError(reader.label, "video has no decodable frames")
    writer.close()
    if stats is not None or reader.incomplete:
        of = f" of {reader.frame_count}" if reader.frame_count else ""
        summary = (
            f"decoded {reader.decoded}{of} frames ({reader.missing} unreadable: corrupt or cut short); "
            "the overlay holds the decoded ones"
        )
        if reader.incomplete:
            print(f"warning: {reader.label}: {summary}", file=sys.stderr)
        if stats is not None:
            stats.update(
                decoded=reader.decoded,
                expected=reader.frame_count,
                missing=reader.missing,
                incomplete=reader.incomplete,
                summary=summary,
            )
    return n
