"""polyhead's shared core: encoders, necks, heads, losses, trainer, io, viz, export, cli, demo."""

from shared import offline as _offline  # noqa: F401  (sets the offline switches before anything loads)

__all__ = ["__version__"]
__version__ = "0.1.0"
