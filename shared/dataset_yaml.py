"""The part of every app's dataset YAML that is the same: read it safely, find the root, check the format.

>>> raw, root, layout = read_dataset_yaml("datasets/medical-ph2.yaml", ("folders",), "folders")  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from polyhead.errors import InputError


def read_dataset_yaml(
    path: str | Path,
    layouts: tuple[str, ...],
    default: str,
    root_must_exist: bool = True,
    keys: Iterable[str] | None = None,
) -> tuple[dict, Path, str]:
    """Parse ``path``; return ``(raw dict, dataset root resolved against the YAML's folder, format)``.

    Every problem is an InputError naming the file: missing, not YAML, no ``path``, unknown ``format``,
    a root that does not exist (unless ``root_must_exist`` is False). When ``keys`` lists the keys the
    app reads, any other key is a warning (a typo such as ``clases`` names the key it is closest to).
    """
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict) or "path" not in raw:
        raise InputError(path, "dataset YAML needs at least 'path' (the dataset root)")
    if keys is not None:
        check_keys(raw, {"path", "format", *keys}, path)
    if not isinstance(raw["path"], str | int | float) or isinstance(raw["path"], bool) or not str(raw["path"]):
        raise InputError(path, f"'path' must be a folder name, got {_show(raw['path'])}")
    layout = str(raw.get("format", default))
    if layout not in layouts:
        raise InputError(path, f"unknown format '{layout}'; expected one of {', '.join(layouts)}")
    root = Path(str(raw["path"]))
    root = root if root.is_absolute() else (path.parent / root).resolve()
    if root_must_exist and not root.is_dir():
        raise InputError(root, f"dataset root from {path.name} does not exist")
    return raw, root, layout


class UnknownKeyWarning(UserWarning):
    """A dataset YAML key that no reader uses (shown as one line: ``warning: d.yaml: unknown key ...``)."""


def read_yaml(path: str | Path):
    """The parsed YAML file (an empty file gives ``{}``); a missing or unparsable file is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "dataset YAML not found")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(path, f"not valid YAML ({str(e).splitlines()[0]})") from None


def check_keys(raw: dict, known: Iterable[str], path: str | Path, where: str = "") -> list[str]:
    """Warn (:class:`UnknownKeyWarning`) about every key of ``raw`` not in ``known``, naming the closest
    known key; the keys are ignored. Returns the unknown keys.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_keys({"clases": [], "path": "."}, ["classes", "path"], "d.yaml")
    ['clases']
    >>> str(caught[0].message)
    "d.yaml: unknown key 'clases' (did you mean 'classes'?), ignored"
    """
    known = sorted(known)
    unknown = []
    for key in raw:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"did you mean '{near[0]}'?" if near else f"known keys: {', '.join(known)}"
            warnings.warn(f"{path}: unknown key {_quote(f'{where}{key}')} ({hint}), ignored", UnknownKeyWarning, 2)
            unknown.append(str(key))
    return unknown


def get_str(raw: dict, key: str, path: str | Path, default: str | None = None) -> str | None:
    """``raw[key]`` as a string (numbers are accepted: folder ``2024``); lists, mappings, booleans are errors."""
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(path, f"'{key}' must be a single name, got {_show(value)}")
    return str(value)


def get_names(raw: dict, key: str, path: str | Path, default: list[str] | None = None) -> list[str]:
    """``raw[key]`` as a list of distinct non-empty names. A bare string is refused, not split into letters:
    ``classes: lesion`` would otherwise become six one-letter classes."""
    value = raw.get(key, default)
    if value is None:
        return []
    if isinstance(value, str):
        raise InputError(
            path, f"'{key}' must be a list of names such as [background, {value!r}], got the string {_quote(value)}"
        )
    if not isinstance(value, list) or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        raise InputError(path, f"'{key}' must be a list of names, got {_show(value)}")
    names = [str(v) for v in value]
    if any(not n.strip() for n in names) or len(set(names)) != len(names):
        raise InputError(path, f"'{key}' names must be non-empty and distinct, got {names}")
    return names


def get_number(
    raw: dict,
    key: str,
    path: str | Path,
    default: Any,
    kind: type = int,
    lo: float | None = None,
    hi: float | None = None,
) -> Any:
    """``raw[key]`` as ``kind`` (int or float) within ``[lo, hi]``; booleans and text are errors."""
    value = raw.get(key, default)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and (kind is float or float(value).is_integer())
    if not ok or value != value or value in (float("inf"), float("-inf")):
        raise InputError(path, f"'{key}' must be {'a whole number' if kind is int else 'a number'}, got {_show(value)}")
    value = kind(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InputError(path, f"'{key}' must be in [{lo}, {hi}], got {value}")
    return value


def get_bool(raw: dict, key: str, path: str | Path, default: bool = False) -> bool:
    """``raw[key]`` as a YAML boolean (``true`` / ``false``); the string ``"false"`` is an error, not True."""
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise InputError(path, f"'{key}' must be true or false, got {_show(value)}")
    return value


def get_mapping(raw: dict, key: str, path: str | Path, known: Iterable[str] | None = None) -> dict:
    """``raw[key]`` as a mapping (``{}`` when absent or null); with ``known``, other sub-keys are errors."""
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(path, f"'{key}' must be a mapping like {{name: value}}, got {_show(value)}")
    if known is not None:
        check_keys(value, known, path, where=f"{key}.")
    return value


def get_regex(raw: dict, key: str, path: str | Path) -> str | None:
    """``raw[key]`` as a compilable regular expression (or None)."""
    value = get_str(raw, key, path)
    if value is None:
        return None
    try:
        re.compile(value)
    except re.error as e:
        raise InputError(path, f"'{key}' is not a valid regular expression ({e})") from None
    return value


def _quote(text: str) -> str:
    """``'text'`` with control characters escaped (``\\n``), so a message stays on one line."""
    return "'" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text)) + "'"


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"
