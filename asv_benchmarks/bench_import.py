"""Cold start (asv ``timeraw_``: each sample is a fresh interpreter).

The setup part of each tuple only puts the tree under test first on ``sys.path`` (the
dashboard script benchmarks old commits from exported trees) and is not timed.
"""
from __future__ import annotations

import os

import engine

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(engine.__file__)))
_SETUP = f"import sys; sys.path.insert(0, {_ROOT!r})"


def timeraw_import_engine() -> tuple[str, str]:
    return "import engine", _SETUP


def timeraw_import_and_warm_up() -> tuple[str, str]:
    """Import plus the first verification: loads every verify kernel from the Numba cache."""
    return "import engine.verification.api; engine.verification.api.warm_up()", _SETUP


timeraw_import_engine.repeat = (3, 10, 20.0)
timeraw_import_and_warm_up.repeat = (3, 10, 20.0)
