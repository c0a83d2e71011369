"""The Trainer on generated data: one epoch, kill + resume, DDP with gloo, balancers."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from polyhead.apps.driving.data import DrivingDataset, load_spec
from polyhead.apps.driving.evaluate import evaluate
from polyhead.apps.driving.model import build_driving_model
from polyhead.io.writers import TEMP_PREFIX
from polyhead.train import TrainConfig, Trainer
from tests.conftest import TINY_SIZE

REPO = Path(__file__).resolve().parents[2]


def _trainer(yaml, out, epochs=1, balancing="fixed", resume=False, ema=True):
    spec = load_spec(yaml)
    train = DrivingDataset(spec, "train", imgsz=TINY_SIZE, augment=True)
    val = DrivingDataset(spec, "val", imgsz=TINY_SIZE)
    torch.manual_seed(0)
    model = build_driving_model()
    cfg = TrainConfig(
        out_dir=out,
        epochs=epochs,
        batch_size=4,
        balancing=balancing,
        resume=resume,
        ema=ema,
        card={"classes": spec.names, "input_size": list(TINY_SIZE)},
    )
    return Trainer(model, train, lambda m: evaluate(m, val), cfg)


def test_one_epoch_writes_every_artifact(synthetic_dataset, tmp_path):
    history = _trainer(synthetic_dataset, tmp_path).fit()
    assert len(history) == 1
    row = history[0]
    for key in ("train/loss", "train/det", "train/drivable", "train/lane", "val/da_miou", "val/score"):
        assert key in row and row[key] == row[key]  # present and not NaN
    for name in ("last.pt", "best.safetensors", "best.json", "metrics.csv", "curves.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert rows[0]["epoch"] == "1"
    ck = torch.load(tmp_path / "last.pt", weights_only=True)  # loadable without unpickling code
    assert ck["epoch"] == 0


@pytest.mark.parametrize("balancing", ["uncertainty", "pcgrad"])
def test_balancers_train(synthetic_dataset, tmp_path, balancing):
    t = _trainer(synthetic_dataset, tmp_path, balancing=balancing, ema=False)
    t.cfg.max_batches = 2
    before = [p.detach().clone() for p in t.model.encoder.parameters()]
    t.fit()
    moved = sum(float((a - p.detach()).abs().sum()) for a, p in zip(before, t.model.encoder.parameters(), strict=True))
    assert moved > 0


def test_resume_continues_after_the_last_epoch(synthetic_dataset, tmp_path):
    _trainer(synthetic_dataset, tmp_path, epochs=1).fit()
    history = _trainer(synthetic_dataset, tmp_path, epochs=2, resume=True).fit()
    assert [r["epoch"] for r in history] == [1, 2]


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_reaches_the_final_epoch(synthetic_dataset, tmp_path):
    """SIGKILL the CLI training three times at random moments (seeded), check the last checkpoint is always
    loadable, then resume to the end: every epoch is in the history once and no temp file is left."""
    import random

    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "polyhead",
        "driving",
        "train",
        "--data",
        str(synthetic_dataset),
        "--epochs",
        "4",
        "--batch",
        "4",
        "--imgsz",
        *map(str, TINY_SIZE),
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = random.Random(7)
    epochs_seen = []
    for attempt in range(3):
        proc = subprocess.Popen(
            cmd + (["--resume"] if attempt else []),
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        start = time.time()
        while not (out / "last.pt").exists() and time.time() - start < 300 and proc.poll() is None:
            time.sleep(0.1)  # the first kill lands after the first checkpoint ...
        time.sleep(rng.uniform(0.0, 4.0))  # ... then anywhere: mid-epoch, mid-validation, mid-write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ck = torch.load(out / "last.pt", weights_only=True)  # never corrupt
        epochs_seen.append(ck["epoch"])
    assert epochs_seen == sorted(epochs_seen)
    done = subprocess.run([*cmd, "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["epoch"] == 3
    assert [r["epoch"] for r in ck["history"]] == [1, 2, 3, 4]
    assert not [p.name for p in out.iterdir() if p.name.startswith(TEMP_PREFIX)]  # a write cut by a kill left nothing


@pytest.mark.slow
def test_ddp_with_gloo_two_processes(synthetic_dataset, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29517",
        "-m",
        "polyhead",
        "driving",
        "train",
        "--data",
        str(synthetic_dataset),
        "--epochs",
        "1",
        "--batch",
        "2",
        "--imgsz",
        *map(str, TINY_SIZE),
        "--out",
        str(out),
        "--no-ema",
    ]
    done = subprocess.run(
        cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "best.safetensors").exists() and (out / "last.pt").exists()
