"""polyhead apps: each folder is one app on the shared core, announced through the
``polyhead.apps`` entry-point group in ``pyproject.toml``."""

import shared as _shared  # noqa: F401  (offline switches first)
