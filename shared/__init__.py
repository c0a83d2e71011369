"""polyhead: the shared core (encoders, necks, heads, losses, trainer, io, viz, export, api, cli, demo).

Folders and import names: this folder, ``shared/``, is the package ``polyhead``; ``apps/`` is
``polyhead.apps``; ``weights/`` ships as the data package ``polyhead._weights`` (``pyproject.toml``
maps them with setuptools' ``package-dir``), so nothing importable is called ``shared`` or ``apps``.

The Python API in one line per use:

>>> app = load("driving")                                   # doctest: +SKIP
>>> preds = app("street.jpg", conf=0.3)                     # doctest: +SKIP
>>> preds[0].to_json()["objects"], preds[0].save("runs/x")  # doctest: +SKIP

Importing changes no environment variable; the ``polyhead`` command and the demo set the offline
switches of the libraries they load (:func:`polyhead.offline.apply`).
"""

from polyhead.api import Prediction, load
from polyhead.open3d_loader import preload_libusb

preload_libusb()  # open3d links against libusb-1.0.so.0: the wheel's copy serves it on a bare machine

__all__ = ["Prediction", "__version__", "load"]
__version__ = "0.1.0"
