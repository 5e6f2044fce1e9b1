"""Sizes for test files that also run uncompiled (NUMBA_DISABLE_JIT=1), the way `bizra gates`
measures kernel coverage: compiled kernels are invisible to coverage, so their unit tests run
them as plain Python, where one signature check takes seconds instead of microseconds.

A test file that imports this module declares it can run that way: the coverage gate runs
exactly those files. Compiled, every size and example count is the full one.

    from tests.support.nojit import NOJIT, examples, jit_only, size
    @settings(max_examples=examples(300))   # at most a few examples uncompiled
    n = size(2600, 260)                      # a smaller column uncompiled
    @jit_only                                # too slow uncompiled even when small
"""
from __future__ import annotations

import numba
import pytest

NOJIT: bool = bool(numba.config.DISABLE_JIT)
NOJIT_EXAMPLES = 6

jit_only = pytest.mark.skipif(NOJIT, reason="too slow uncompiled (NUMBA_DISABLE_JIT=1)")


def examples(n: int) -> int:
    """Hypothesis max_examples: ``n`` compiled, a handful uncompiled."""
    return min(n, NOJIT_EXAMPLES) if NOJIT else n


def size(n: int, uncompiled: int) -> int:
    """A problem size: ``n`` compiled, ``uncompiled`` when the kernels run as Python."""
    return uncompiled if NOJIT else n
