"""The examples in lossctl's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import lossctl

MODULES = sorted(m.name for m in pkgutil.walk_packages(lossctl.__path__, "lossctl.") if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", ["lossctl", *MODULES])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    failed, _ = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failed == 0


def test_the_api_docstring_has_an_example():
    assert doctest.DocTestFinder().find(lossctl.api.compute)[0].examples
