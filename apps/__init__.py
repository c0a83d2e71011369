"""polyhead apps: each folder is one app on the shared core, announced through the
``polyhead.apps`` entry-point group in ``pyproject.toml``."""
