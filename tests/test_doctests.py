"""Every docstring example in the package runs."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import symkl

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(symkl.__path__, "symkl.")
    if not name.endswith("__main__") and not name.endswith("_ckernels")  # C library, ctypes
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failures == 0
