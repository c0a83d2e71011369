"""The Trainer: AdamW + cosine, clipping, EMA, seeding, progress bar, CSV + PNG curves, atomic
checkpoints every epoch, ``resume``, best-by-metric weights and DDP through ``torchrun``.

>>> trainer = Trainer(model, train_set, evaluate, TrainConfig(out_dir="runs/x", epochs=3))  # doctest: +SKIP
>>> trainer.fit()                                                                            # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from polyhead.device import distributed_setup, place, to_device, use_amp
from polyhead.device import resolve as resolve_device
from polyhead.errors import InputError
from polyhead.io.writers import atomic_path, write_bytes
from polyhead.losses import create_balancer
from polyhead.model import MultiTaskModel
from polyhead.train.data import collate_multitask
from polyhead.weights import save_weights


@dataclass
class TrainConfig:
    out_dir: str | Path = "runs/train"
    epochs: int = 10
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_iters: int = 100
    clip_grad: float = 10.0
    ema: bool = True
    ema_decay: float | None = None  # None: fitted to the run length (see Trainer.ema_decay)
    seed: int = 0
    workers: int = 0
    balancing: str = "fixed"
    task_weights: dict[str, float] = field(default_factory=dict)
    main_metric: str = "score"
    mode: str = "max"
    resume: bool = False
    max_batches: int | None = None  # cap per epoch (smoke runs)
    card: dict = field(default_factory=dict)  # model-card fields for best weights
    weights_name: str = "best.safetensors"
    encoder_lr: float = 1.0  # encoder learning rate as a factor of ``lr`` (below 1 for a pretrained encoder)
    freeze_encoder_epochs: int = 0  # neck and heads only for the first epochs
    freeze_bn: bool = False  # keep the encoder's BatchNorm statistics as loaded
    device: str | None = None  # "cpu" | "cuda" | "cuda:N" | "mps"; None: polyhead.device.current()


def config_from_args(args, out_dir: str | Path, card: dict, main_metric: str = "score", **overrides) -> TrainConfig:
    """The TrainConfig of the standard ``polyhead APP train`` options (``overrides`` win).

    >>> cfg = config_from_args(parser.parse_args(["--data", "d.yaml"]), "runs/x", {})   # doctest: +SKIP
    """
    from polyhead.cli import parse_task_weights

    fields = {
        "out_dir": out_dir,
        "epochs": args.epochs,
        "batch_size": args.batch,
        "lr": args.lr,
        "seed": args.seed,
        "workers": args.workers,
        "balancing": args.balancing,
        "task_weights": parse_task_weights(args.task_weights),
        "ema": not args.no_ema,
        "resume": args.resume,
        "max_batches": args.max_batches,
        "main_metric": main_metric,
        "card": card,
        "device": getattr(args, "device", None),
    }
    return TrainConfig(**{**fields, **overrides})


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_augmentations(dataset: object, seed: int) -> int:
    """Seed every albumentations pipeline a dataset holds (also inside ``Subset`` / ``ConcatDataset``).

    albumentations 2 gives each ``Compose`` its own generators, seeded from the OS when it is built:
    global seeds do not reach them, so without this two runs with the same ``--seed`` augment
    differently. Returns how many pipelines were seeded.
    """
    n, todo, seen = 0, [dataset], set()
    while todo:
        obj = todo.pop()
        if id(obj) in seen or obj is None:
            continue
        seen.add(id(obj))
        inner = [getattr(obj, "dataset", None), *(getattr(obj, "datasets", None) or [])]
        todo.extend(x for x in inner if x is not None)
        for value in vars(obj).values() if hasattr(obj, "__dict__") else ():
            if callable(getattr(value, "set_random_seed", None)) and hasattr(value, "transforms"):
                value.set_random_seed(seed % 2**32)
                n += 1
    return n


def _seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: each worker's generators from the loader's seeded base seed."""
    info = torch.utils.data.get_worker_info()
    seed = info.seed % 2**32 if info is not None else worker_id
    random.seed(seed)
    np.random.seed(seed)
    if info is not None:
        seed_augmentations(info.dataset, seed)


def check_config(cfg: TrainConfig) -> None:
    """Refuse settings that cannot train (one-line InputError): no epochs, empty batches, a non-finite rate."""
    if not isinstance(cfg.epochs, int) or cfg.epochs < 1:
        raise InputError(None, f"epochs must be at least 1, got {cfg.epochs} (nothing would be trained or written)")
    if not isinstance(cfg.batch_size, int) or cfg.batch_size < 1:
        raise InputError(None, f"batch size must be at least 1, got {cfg.batch_size}")
    if not math.isfinite(cfg.lr) or cfg.lr <= 0:
        raise InputError(None, f"learning rate must be a finite number above 0, got {cfg.lr}")
    if cfg.workers < 0:
        raise InputError(None, f"workers must be 0 or more, got {cfg.workers}")
    if cfg.max_batches is not None and cfg.max_batches < 1:
        raise InputError(None, f"max batches must be at least 1, got {cfg.max_batches}")


class Trainer:
    """Trains a :class:`MultiTaskModel` on a dataset of multi-task samples.

    ``evaluate(model) -> dict[str, float]`` is the app's validation; its ``config.main_metric``
    picks the best checkpoint. Files in ``out_dir``: ``last.pt`` (resumable, loaded with
    ``weights_only=True``), ``best.safetensors`` + card, ``metrics.csv``, ``curves.png``.
    """

    def __init__(
        self, model: MultiTaskModel, train_set: Dataset, evaluate: Callable[[MultiTaskModel], dict], config: TrainConfig
    ):
        check_config(config)
        self.cfg = config
        self.out = Path(config.out_dir)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = resolve_device(config.device)
        if self.world > 1:
            backend, self.device = distributed_setup(self.device, int(os.environ.get("LOCAL_RANK", "0")))
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group(backend)
        self.amp = use_amp(self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.model = place(model, self.device)  # also takes CPU inputs in the app's evaluate
        self.evaluate = evaluate
        self.train_set = train_set
        kinds = {t: h.target_kind for t, h in model.heads.items()}
        self.collate = partial(collate_multitask, kinds=kinds)
        self.balancer = create_balancer(config.balancing, model.tasks, config.task_weights)
        self.optimizer = torch.optim.AdamW(self._param_groups(model), lr=config.lr)
        self.iters_per_epoch = self._iters_per_epoch()
        total = max(1, config.epochs * self.iters_per_epoch)
        warm = min(config.warmup_iters, total // 3)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda i: (
                min(1.0, (i + 1) / max(1, warm)) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(i, total) / total)))
            ),
        )
        self.ema = None
        if config.ema:
            from ultralytics.utils.torch_utils import ModelEMA

            self.ema = ModelEMA(model, decay=self.ema_decay(total), tau=max(1, self.iters_per_epoch))
        self.ddp_model = model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self.start_epoch, self.best, self.history, self.skipped = 0, None, [], 0

    # ---------------------------------------------------------------- helpers
    def _param_groups(self, model: MultiTaskModel) -> list[dict]:
        """Decay / no-decay groups, the encoder's at ``encoder_lr`` times the base rate (``lr_scale``)."""
        enc = {id(p) for p in model.encoder.parameters()}
        groups = []
        for name, params, scale in (
            ("encoder", [p for p in model.parameters() if id(p) in enc], self.cfg.encoder_lr),
            ("rest", [p for p in model.parameters() if id(p) not in enc] + list(self.balancer.parameters()), 1.0),
        ):
            for decay in (True, False):
                chosen = [p for p in params if (p.ndim > 1) == decay]
                if chosen:
                    groups.append(
                        {
                            "params": chosen,
                            "weight_decay": self.cfg.weight_decay if decay else 0.0,
                            "lr": self.cfg.lr * scale,
                            "lr_scale": scale,
                            "name": f"{name}/{'decay' if decay else 'no_decay'}",
                        }
                    )
        return groups

    def _set_train_mode(self, epoch: int) -> None:
        """Train mode, with the encoder frozen for the first ``freeze_encoder_epochs`` and its
        BatchNorm statistics fixed when ``freeze_bn`` (or while frozen)."""
        from polyhead.train.finetune import freeze_batchnorm, set_encoder_trainable

        frozen = epoch < self.cfg.freeze_encoder_epochs
        set_encoder_trainable(self.model, not frozen)
        self.model.train()
        if frozen or self.cfg.freeze_bn:
            freeze_batchnorm(self.model.encoder)

    def ema_decay(self, total_iters: int) -> float:
        """The configured decay, or one that averages over the last ~10% of the run (at most ~1000 steps).

        A fixed 0.999 averages over ~1000 steps: on a short CPU run (a few hundred steps) the EMA weights
        would still carry much of the early, untrained model (measured: DRIVE Dice 0.715 EMA vs 0.772 raw
        after 448 steps)."""
        if self.cfg.ema_decay is not None:
            return self.cfg.ema_decay
        return float(min(0.999, max(0.9, 1 - 10 / max(total_iters, 1))))

    def improves(self, score: float | None) -> bool:
        """True when ``score`` should become the best weights: better than the best so far. A NaN / inf score
        is taken only while nothing better exists (so a best file is always written), and never blocks a
        later finite one (``x > nan`` is always False)."""
        if score is None:
            return False
        if not math.isfinite(float(score)):
            return self.best is None
        if self.best is None or not math.isfinite(self.best):
            return True
        return score > self.best if self.cfg.mode == "max" else score < self.best

    def _iters_per_epoch(self) -> int:
        n = math.ceil(len(self.train_set) / self.world / self.cfg.batch_size)
        return min(n, self.cfg.max_batches) if self.cfg.max_batches else n

    def _loader(self, epoch: int) -> DataLoader:
        g = torch.Generator().manual_seed(self.cfg.seed + epoch)
        if hasattr(self.train_set, "set_epoch"):  # datasets that seed their augmentation by epoch
            self.train_set.set_epoch(epoch)
        sampler = None
        if self.world > 1:
            sampler = DistributedSampler(self.train_set, self.world, self.rank, shuffle=True, seed=self.cfg.seed)
            sampler.set_epoch(epoch)
        return DataLoader(
            self.train_set,
            batch_size=self.cfg.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            num_workers=self.cfg.workers,
            collate_fn=self.collate,
            generator=g,
            worker_init_fn=_seed_worker if self.cfg.workers > 0 else None,
            drop_last=False,
        )

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def eval_model(self) -> MultiTaskModel:
        return self.ema.ema if self.ema is not None else self.model

    # ---------------------------------------------------------------- checkpoints
    def _checkpoint(self, epoch: int) -> dict:
        return {
            "epoch": epoch,
            "best": self.best,
            "history": self.history,
            "skipped": self.skipped,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "balancer": self.balancer.state_dict(),
            "ema": self.ema.ema.state_dict() if self.ema else None,
            "ema_updates": self.ema.updates if self.ema else 0,
            **({"scaler": self.scaler.state_dict()} if self.amp else {}),
        }

    def save_checkpoint(self, epoch: int) -> Path:
        path = self.out / "last.pt"
        try:
            with atomic_path(path) as tmp:
                torch.save(self._checkpoint(epoch), tmp)
        except RuntimeError as e:  # torch's zip writer reports a full disk as a RuntimeError
            raise _write_error(path, e) from None
        return path

    def load_checkpoint(self, path: Path) -> None:
        """Restore a ``last.pt``; a cut-short file or one from another architecture is a one-line InputError."""
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # zip, pickle and EOF errors of many types for a cut-short or foreign file
            raise InputError(
                path, f"checkpoint is damaged or not a polyhead last.pt ({type(e).__name__}); delete it to start over"
            ) from None
        try:
            self.model.load_state_dict(ck["model"])
            self.optimizer.load_state_dict(ck["optimizer"])
            self.scheduler.load_state_dict(ck["scheduler"])
            self.balancer.load_state_dict(ck["balancer"])
            if self.ema and ck.get("ema") is not None:
                self.ema.ema.load_state_dict(ck["ema"])
                self.ema.updates = ck["ema_updates"]
            if self.amp and ck.get("scaler"):
                self.scaler.load_state_dict(ck["scaler"])
            self.start_epoch, self.best = ck["epoch"] + 1, ck["best"]
            self.history, self.skipped = list(ck["history"]), ck.get("skipped", 0)
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as e:
            first = (str(e).strip().splitlines() or [""])[0][:120]
            raise InputError(
                path,
                f"checkpoint does not match this run's model or settings ({type(e).__name__}: {first}); "
                "use another --out, or delete it to start over",
            ) from None

    # ---------------------------------------------------------------- loop
    def fit(self) -> list[dict]:
        """Train ``epochs`` epochs (continuing from ``last.pt`` when ``resume``); return the history."""
        self.out.mkdir(parents=True, exist_ok=True)
        if self.is_main:  # our temp files of writes cut short by a kill (the real files are intact)
            from polyhead.io.writers import sweep_temp_files

            sweep_temp_files(self.out)
        last = self.out / "last.pt"
        if self.cfg.resume and last.is_file():
            self.load_checkpoint(last)
            if self.is_main:
                print(f"resumed from {last} at epoch {self.start_epoch}/{self.cfg.epochs}")
        for epoch in range(self.start_epoch, self.cfg.epochs):
            seed_everything(self.cfg.seed + epoch)
            seed_augmentations(self.train_set, (self.cfg.seed + epoch) * 1_000_003 + self.rank)
            row = {"epoch": epoch + 1, **self.train_one_epoch(epoch)}
            if self.is_main:
                metrics = self.evaluate(self.eval_model())
                row.update({f"val/{k}": v for k, v in metrics.items()})
                self.history.append(row)
                score = metrics.get(self.cfg.main_metric)
                if self.improves(score):
                    self.best = float(score)
                    card = {**self.cfg.card, "metrics": metrics, "epoch": epoch + 1}
                    save_weights(self.eval_model(), self.out / self.cfg.weights_name, card)
                self.save_checkpoint(epoch)
                self.write_metrics()
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            if self.world > 1:
                dist.barrier()
        if self.is_main and self.skipped:
            print(f"skipped {self.skipped} unreadable or invalid samples during training")
        return self.history

    def train_one_epoch(self, epoch: int) -> dict:
        self._set_train_mode(epoch)
        sums: dict[str, float] = {}
        n, t0 = 0, time.time()
        bar = tqdm(
            self._loader(epoch),
            total=self.iters_per_epoch,
            desc=f"epoch {epoch + 1}/{self.cfg.epochs}",
            disable=not self.is_main,
            leave=False,
            dynamic_ncols=True,
        )
        shared = self.model.shared_parameters()
        for i, batch in enumerate(bar):
            if self.cfg.max_batches and i >= self.cfg.max_batches:
                break
            self.skipped += batch["skipped"]
            if "image" not in batch:
                continue
            image = batch["image"].to(self.device, non_blocking=True)
            targets = to_device(batch["targets"], self.device, non_blocking=True)
            present = to_device(batch["present"], self.device, non_blocking=True)
            with torch.autocast(self.device.type, enabled=self.amp):
                outputs = self.ddp_model(image)
                losses = self.model.compute_losses(outputs, targets, present)
            if self.amp:  # gradients into the network scaled by the GradScaler's factor (see _ScaleGrad)
                scale = self.scaler.get_scale()
                losses = {k: _ScaleGrad.apply(v.float(), scale) for k, v in losses.items()}
            self.optimizer.zero_grad(set_to_none=True)
            total = self.balancer.backward(losses, shared)
            if not torch.isfinite(total):
                raise FloatingPointError(f"loss is {total.item()} at epoch {epoch + 1}, batch {i}: lower --lr")
            if self.amp:
                for p in self.balancer.parameters():  # their gradients came unscaled: match the rest
                    if p.grad is not None:
                        p.grad.mul_(scale)
                self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad)
            self.scaler.step(self.optimizer)  # a plain optimizer.step() when AMP is off
            self.scaler.update()
            self.scheduler.step()
            if self.ema:
                self.ema.update(self.model)
            n += 1
            for k, v in {"loss": total, **losses}.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.set_postfix({k: f"{v / n:.3f}" for k, v in sums.items()})
        out = {f"train/{k}": v / max(n, 1) for k, v in sums.items()}
        out["lr"] = max(g["lr"] for g in self.optimizer.param_groups)
        out["time_s"] = round(time.time() - t0, 2)
        return out

    def write_metrics(self) -> None:
        keys = list(dict.fromkeys(k for row in self.history for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.history)
        write_bytes(self.out / "metrics.csv", buf.getvalue().encode())
        plot_curves(self.history, self.out / "curves.png")


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; multiplies the gradient by ``scale`` on the way back. Applied to each task
    loss under mixed precision, so everything behind the losses (the network) gets GradScaler-scaled
    gradients whatever the balancer does with them (PCGrad's per-task gradients included), while
    loss values, logs and the balancer's own parameters keep their true scale."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad * ctx.scale, None


def _write_error(path: Path, e: BaseException) -> OSError:
    """An OSError naming ``path`` for a failed write (ENOSPC when the disk is full)."""
    import errno
    import shutil

    try:
        full = shutil.disk_usage(path.parent).free < 64 * 2**20
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, "No space left on device", str(path))
    return OSError(errno.EIO, f"could not write ({(str(e).strip().splitlines() or [''])[0][:120]})", str(path))


def plot_curves(history: list[dict], path: Path) -> None:
    """One small plot per numeric column against the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in history[0] if k != "epoch" and all(isinstance(r.get(k), (int, float)) for r in history)]
    cols = min(4, max(1, len(keys)))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    epochs = [r["epoch"] for r in history]
    for ax, k in zip(axes.flat, keys, strict=False):
        ax.plot(epochs, [r[k] for r in history], marker="o", ms=3)
        ax.set_title(k, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    write_bytes(path, buf.getvalue())


def config_dict(cfg: TrainConfig) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
