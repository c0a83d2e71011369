"""Training: the Trainer and multi-task batching."""

from polyhead.train.data import collate_multitask
from polyhead.train.trainer import TrainConfig, Trainer, config_from_args, seed_everything

__all__ = ["TrainConfig", "Trainer", "config_from_args", "collate_multitask", "seed_everything"]
