"""Every example in the package's docstrings runs and prints what it says (they are the first thing a
reader of the API tries; two had drifted from the code before this check)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import analysis

def _fail(name: str) -> None:
    raise ImportError(f"{name} does not import, so its examples would go unchecked")


MODULES = sorted(m.name for m in pkgutil.walk_packages(analysis.__path__, "analysis.", onerror=_fail)
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} fail (run pytest --doctest-modules on it)"


def test_the_package_has_examples():
    """The check above finds the modules and their examples (it cannot pass on an empty list)."""
    assert len(MODULES) >= 30 and "analysis.segment.value" in MODULES
    finder = doctest.DocTestFinder()
    assert sum(len(t.examples) for t in finder.find(importlib.import_module("analysis.segment.value"))) >= 5
