"""kernels.blockgraph_finality: the exact quorum threshold and the total-weight check against Python ints, at
the edges and at random."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from kernels.blockgraph_finality import quorum_threshold, weights_total_fits
from tests.support.nojit import examples


def test_threshold_edges():
    for bps in (5001, 6666, 6667, 6668, 8000, 9999, 10000):
        got = _thresholds(np.array(EDGE_TOTALS, np.uint64), bps)
        for t, g in zip(EDGE_TOTALS, got):
            want = _python_threshold(t, bps)
            assert int(g) == want, (t, bps)
            # the defining property at the boundary
            assert want * 10000 >= t * bps and (want == 0 or (want - 1) * 10000 < t * bps)


U64_MAX = 2**64 - 1


@njit(cache=True)
def _thresholds(totals, bps):
    out = np.empty(totals.shape[0], np.uint64)
    for i in range(totals.shape[0]):
        out[i] = quorum_threshold(totals[i], bps)
    return out


def _python_threshold(total, bps):
    """Smallest w with w * 10000 >= total * bps, on Python ints."""
    return -((-total * bps) // 10000)


EDGE_TOTALS = [0, 1, 2, 9999, 10000, 10001, 2**40, 10**7 * 2**40, 2**63 - 1, 2**63, 2**64 - 2,
               U64_MAX, U64_MAX - 9999, 3 * ((U64_MAX) // 3)]


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.integers(0, U64_MAX), min_size=1, max_size=50), st.integers(5001, 10000))
def test_threshold_random(totals, bps):
    got = _thresholds(np.array(totals, np.uint64), bps)
    assert [int(x) for x in got] == [_python_threshold(t, bps) for t in totals]




@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.integers(0, U64_MAX) | st.sampled_from([0, 1, 2**32 - 1, 2**32, 2**63, U64_MAX]), max_size=40))
def test_weights_total_fits_matches_python_ints(weights):
    assert weights_total_fits(np.array(weights, np.uint64)) == (sum(weights) < 2**64)
