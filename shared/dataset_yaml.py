"""The part of every app's dataset YAML that is the same: read it safely, find the root, check the format.

>>> raw, root, layout = read_dataset_yaml("datasets/medical-ph2.yaml", ("folders",), "folders")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import yaml

from shared.errors import InputError


def read_dataset_yaml(
    path: str | Path, layouts: tuple[str, ...], default: str, root_must_exist: bool = True
) -> tuple[dict, Path, str]:
    """Parse ``path``; return ``(raw dict, dataset root resolved against the YAML's folder, format)``.

    Every problem is an InputError naming the file: missing, not YAML, no ``path``, unknown ``format``,
    a root that does not exist (unless ``root_must_exist`` is False).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "dataset YAML not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(path, f"not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict) or "path" not in raw:
        raise InputError(path, "dataset YAML needs at least 'path' (the dataset root)")
    layout = str(raw.get("format", default))
    if layout not in layouts:
        raise InputError(path, f"unknown format '{layout}'; expected one of {', '.join(layouts)}")
    root = Path(str(raw["path"]))
    root = root if root.is_absolute() else (path.parent / root).resolve()
    if root_must_exist and not root.is_dir():
        raise InputError(root, f"dataset root from {path.name} does not exist")
    return raw, root, layout
