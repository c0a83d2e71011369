"""App discovery through the ``polyhead.apps`` entry-point group (the core never imports an app by name).

A user's own app plugs in the same way, in its own ``pyproject.toml``::

    [project.entry-points."polyhead.apps"]
    myapp = "mypackage.app:MyApp"
"""

from __future__ import annotations

import os
import sys
from functools import cache
from importlib.metadata import entry_points

from polyhead.app import App

GROUP = "polyhead.apps"


@cache
def discover_apps() -> dict[str, App]:
    """Instantiate every registered app, by name (sorted)."""
    apps: dict[str, App] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            cls = ep.load()
        except ImportError as e:  # a registered app whose package is missing: leave it out
            if os.environ.get("POLYHEAD_DEBUG"):
                print(f"app '{ep.name}' unavailable ({e})", file=sys.stderr)
            continue
        app = cls()
        apps[app.name or ep.name] = app
    return apps


def get_app(name: str) -> App:
    apps = discover_apps()
    if name not in apps:
        raise KeyError(f"unknown app '{name}'; installed apps: {', '.join(apps) or 'none'}")
    return apps[name]
