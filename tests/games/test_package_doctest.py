"""The varl.games package docstring example runs (import purity: tests/test_import_purity.py)."""

from __future__ import annotations

import doctest
import importlib


def test_package_doctest() -> None:
    assert doctest.testmod(importlib.import_module("varl.games"), raise_on_error=True).failed == 0
