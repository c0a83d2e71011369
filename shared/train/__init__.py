"""Training: the Trainer and multi-task batching."""

from shared.train.data import collate_multitask
from shared.train.trainer import TrainConfig, Trainer, config_from_args, seed_everything

__all__ = ["TrainConfig", "Trainer", "config_from_args", "collate_multitask", "seed_everything"]
