"""``polyhead APP ship``: put a finished training run's best weights in place with a complete model card.

The card the Trainer wrote (architecture, normalisation, data, metrics of the best epoch) is kept and
completed with what a user of the shipped file needs to trust it: the training time per epoch (from the
run's ``metrics.csv``), the full recipe (every command, in order), the data terms, and the held-out
figures measured after training (``--merge KEY=FILE.json``: val, audit and bench JSONs).

>>> ship_run("runs/train/driving", "weights/driving.safetensors",
...          merge={"val": "runs/val/driving.json"}, commands=["polyhead driving train ..."])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from polyhead.errors import InputError
from polyhead.io.writers import atomic_path, write_json
from polyhead.weights import card_path, load_model


def training_time(run: str | Path) -> dict:
    """Epochs and training seconds per epoch of a run folder, read from its ``metrics.csv`` (the last
    row of each epoch counts: a resumed run rewrites the epochs it repeats).

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> _ = (d / "metrics.csv").write_text("epoch,time_s\\n1,300.5\\n2,280\\n")
    >>> training_time(d)["train_seconds_total"]
    580.5
    """
    path = Path(run) / "metrics.csv"
    if not path.is_file():
        raise InputError(path, "no metrics.csv in the run folder (is it a polyhead training run?)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    by_epoch: dict[str, float] = {}
    for row in rows:
        try:
            by_epoch[str(int(float(row["epoch"])))] = float(row["time_s"])
        except (KeyError, TypeError, ValueError):
            raise InputError(path, "needs numeric 'epoch' and 'time_s' columns") from None
    return {
        "epochs": len(by_epoch),
        "train_seconds_by_epoch": {k: round(v, 1) for k, v in by_epoch.items()},
        "train_seconds_total": round(sum(by_epoch.values()), 1),
    }


def _read_json(key: str, path: str | Path) -> object:
    try:
        return json.loads(Path(path).read_text())
    except OSError as e:
        raise InputError(path, f"--merge {key}: cannot read ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise InputError(path, f"--merge {key}: not valid JSON ({e.msg}, line {e.lineno})") from None


def ship_run(
    run: str | Path,
    out: str | Path,
    *,
    merge: Mapping[str, str | Path] | None = None,
    commands: Sequence[str] | None = None,
    notes: Mapping[str, object] | None = None,
    data_terms: Mapping[str, object] | str | None = None,
) -> Path:
    """Copy ``run/best.safetensors`` to ``out`` and write its completed card beside it (both atomically).

    ``merge``: card key -> JSON file to embed (e.g. ``{"val": ..., "audit": ..., "bench": ...}``);
    ``commands``: the whole recipe (default: the run's own training command); ``notes``: extra card
    entries (e.g. a wall-time note); ``data_terms``: the app's data origins and terms (under ``data``).
    The weights are loaded once (architecture from the card), so a broken run is refused before
    anything in ``weights/`` changes."""
    run, out = Path(run), Path(out)
    weights = run / "best.safetensors"
    if not weights.is_file():
        raise InputError(weights, "no best weights in the run folder (did the training finish an epoch?)")
    if out.suffix != ".safetensors":
        raise InputError(out, "the shipped weights must be a .safetensors file")
    load_model(weights)  # refuses a card/tensor mismatch before anything is replaced
    card = json.loads(card_path(weights).read_text())
    extra = {key: _read_json(key, path) for key, path in (merge or {}).items()}
    card["training_time"] = {**training_time(run), **(card.get("training_time") or {})}
    if commands:
        card["training_command"] = list(commands)
    if isinstance(data_terms, str):
        card["data"] = {**(card.get("data") or {}), "terms": data_terms}
    elif data_terms:
        card["data"] = {**(card.get("data") or {}), **dict(data_terms)}
    card.update(dict(notes or {}))
    card.update(extra)
    card["shipped"] = {"from": str(run), "date": dt.date.today().isoformat()}
    with atomic_path(out) as tmp:
        shutil.copyfile(weights, tmp)
    write_json(card_path(out), card)
    return out


def _key_file(text: str) -> tuple[str, str]:
    key, sep, path = text.partition("=")
    if not sep or not key or not path:
        raise argparse.ArgumentTypeError(f"expected KEY=FILE.json, got '{text}'")
    return key, path


def _key_json(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # plain text


def add_ship_arguments(p: argparse.ArgumentParser, default_out: str | None) -> None:
    """Options of ``polyhead APP ship`` (``--out`` is required when there is no ``default_out``)."""
    p.add_argument("--run", required=True, help="training run folder (holds best.safetensors, metrics.csv)")
    if default_out:
        p.add_argument("--out", default=default_out, help=f"shipped weights (default: {default_out})")
    else:
        p.add_argument("--out", required=True, help="shipped weights, e.g. weights/<name>.safetensors")
    p.add_argument(
        "--merge",
        type=_key_file,
        action="append",
        default=[],
        metavar="KEY=FILE.json",
        help="embed a JSON file in the card under KEY (val, audit, bench ...; repeatable)",
    )
    p.add_argument(
        "--command",
        action="append",
        default=[],
        metavar="TEXT",
        help="one step of the recipe, in order (repeatable; default: the run's training command)",
    )
    p.add_argument(
        "--note",
        type=_key_json,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra card entry (VALUE is JSON or plain text; repeatable)",
    )


def ship_command(app_name: str, terms_module: str | None = None, one_file: bool = True):
    """The ``ship`` :class:`~polyhead.app.Command` of an app whose weights are one MultiTaskModel;
    ``terms_module`` names the module whose ``DATA_TERMS`` go into the card (imported when run);
    an app that ships several files (``one_file=False``: medical) makes ``--out`` required."""
    import importlib

    from polyhead.app import Command

    default_out = f"weights/{app_name}.safetensors" if one_file else None

    def run(args: argparse.Namespace) -> int:
        data_terms = getattr(importlib.import_module(terms_module), "DATA_TERMS", None) if terms_module else None
        out = ship_run(
            args.run,
            args.out,
            merge=dict(args.merge),
            commands=args.command or None,
            notes=dict(args.note),
            data_terms=data_terms,
        )
        print(f"shipped {Path(args.run) / 'best.safetensors'} -> {out} (+ {card_path(out).name})")
        return 0

    return Command(
        "copy a training run's best weights into weights/ with a complete model card",
        lambda p: add_ship_arguments(p, default_out),
        run,
        f"example:\n  polyhead {app_name} ship --run runs/train/{app_name} --merge val=runs/val/{app_name}.json"
        + ("" if one_file else f" --out weights/{app_name}-NAME.safetensors"),
    )
