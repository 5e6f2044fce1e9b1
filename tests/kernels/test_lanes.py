"""Unit tests of kernels/lanes.py: every operation of the eight-lane type on random lanes (and
all-ones / zero edges) against NumPy's uint64 arithmetic, which wraps like the vector
instructions; and the NumPy twins used under NUMBA_DISABLE_JIT give the same answers."""

import numpy as np
from numba import njit

from kernels.lanes import (
    gather, lane, lanes_any, lanes_eq, lanes_from_array, lanes_select, lanes_to_array, mul32,
    splat, with_lane, zero8,
)

MASK64 = (1 << 64) - 1


# ---- lanes ----------------------------------------------------------------------------------


@njit(cache=True)
def _lane_ops(a, b, flat, idx, k):
    x = lanes_from_array(a, 0)
    y = lanes_from_array(b, 0)
    out = np.empty((12, 8), dtype=np.uint64)
    lanes_to_array(x + y, out[0], 0)
    lanes_to_array(x - y, out[1], 0)
    lanes_to_array(x & y, out[2], 0)
    lanes_to_array(x | y, out[3], 0)
    lanes_to_array(x ^ y, out[4], 0)
    lanes_to_array(x >> k, out[5], 0)
    lanes_to_array(x << k, out[6], 0)
    lanes_to_array(mul32(x, y), out[7], 0)
    lanes_to_array(lanes_eq(x, y), out[8], 0)
    lanes_to_array(lanes_select(lanes_eq(x, y), x, y + splat(1)), out[9], 0)
    lanes_to_array(gather(flat, lanes_from_array(idx, 0)), out[10], 0)
    v = with_lane(zero8(), 3, lane(x, 5))
    lanes_to_array(v, out[11], 0)
    return out, lanes_any(x ^ x), lanes_any(with_lane(zero8(), 7, np.uint64(1)))


def test_lane_operations_match_numpy():
    r = np.random.default_rng(7)
    for trial in range(20):
        a = r.integers(0, 2**64, 8, dtype=np.uint64)
        b = a.copy() if trial % 5 == 0 else r.integers(0, 2**64, 8, dtype=np.uint64)
        b[::3] = a[::3]  # some equal lanes
        if trial == 1:
            a[:] = np.uint64(MASK64)
        flat = r.integers(0, 2**64, 100, dtype=np.uint64)
        idx = r.integers(0, 100, 8).astype(np.uint64)
        k = int(r.integers(0, 64))
        out, any_zero, any_one = _lane_ops(a, b, flat, idx, k)
        with np.errstate(over="ignore"):
            m32 = np.uint64(0xFFFFFFFF)
            expected = [a + b, a - b, a & b, a | b, a ^ b, a >> np.uint64(k), a << np.uint64(k),
                        (a & m32) * (b & m32), np.where(a == b, np.uint64(MASK64), np.uint64(0)),
                        np.where(a == b, a, b + np.uint64(1)), flat[idx.astype(np.int64)],
                        np.array([0, 0, 0, a[5], 0, 0, 0, 0], dtype=np.uint64)]
        for row, want in zip(out, expected):
            assert row.tolist() == want.tolist(), trial
        assert not any_zero and any_one
