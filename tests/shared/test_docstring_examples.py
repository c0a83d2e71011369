"""Every docstring example in the package runs and prints what it shows (``# doctest: +SKIP`` marks the ones
that need shipped weights or user files)."""

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import polyhead
import polyhead.apps


def _modules() -> list[str]:
    names = set()
    for pkg in (polyhead, polyhead.apps):
        names.update(m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."))
    return sorted(n for n in names if not n.endswith("__main__"))


MODULES = _modules()


def test_every_app_is_walked():
    assert {"polyhead.apps.face.align", "polyhead.apps.medical.model", "polyhead.necks"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # examples name repo paths (weights/, datasets/)
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples in {name} failed"
