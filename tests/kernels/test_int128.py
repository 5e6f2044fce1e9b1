"""kernels.int128: the 64x64 -> 128-bit primitives against Python ints, at the edges and at random."""
import random

import numpy as np
from numba import njit

from kernels.int128 import dot128

from tests.support import kernel_harness as H
from tests.support import nojit  # noqa: F401  (this file runs uncompiled too: the kernel coverage gate)


def test_int128_primitives_edges_and_random():
    r = random.Random(128)
    edge = [0, 1, 2, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1]
    a_vals, b_vals, c_vals, n_vals = [], [], [], []
    for a in edge:
        for b in edge:
            a_vals.append(a)
            b_vals.append(b)
            c_vals.append(edge[(a + b) % len(edge)])
            n_vals.append(1 + (a ^ b) % 63)
    for _ in range(500):
        a_vals.append(r.getrandbits(64))
        b_vals.append(r.getrandbits(64))
        c_vals.append(r.getrandbits(64))
        n_vals.append(r.randrange(1, 64))
    a = np.array(a_vals, dtype=np.uint64)
    b = np.array(b_vals, dtype=np.uint64)
    c = np.array(c_vals, dtype=np.uint64)
    n = np.array(n_vals, dtype=np.int64)
    out = np.zeros((len(a_vals), 7), dtype=np.uint64)
    H.int128_rows(a, b, c, n, out)
    m64 = 2**64 - 1
    for i, (x, y, z, k) in enumerate(zip(a_vals, b_vals, c_vals, n_vals)):
        o = [int(v) for v in out[i]]
        assert o[0] | (o[1] << 64) == x * y, (x, y)
        assert o[2] | (o[3] << 64) == (z * (2**64 + 1) + x * y) % 2**128, (x, y, z)
        assert o[4] | (o[5] << 64) == ((x | (y << 64)) + z) % 2**128, (x, y, z)
        assert o[6] == ((x | (y << 64)) >> k) & m64, (x, y, k)




@njit(cache=True)
def _dot_rows(a, b, out):
    for i in range(a.shape[0]):
        lo, hi = dot128((a[i, 0], a[i, 1], a[i, 2], a[i, 3], a[i, 4]),
                        (b[i, 0], b[i, 1], b[i, 2], b[i, 3], b[i, 4]))
        out[i, 0] = lo
        out[i, 1] = hi
        lo, hi = dot128((a[i, 0], a[i, 1]), (b[i, 0], b[i, 1]))
        out[i, 2] = lo
        out[i, 3] = hi


def test_dot128_sums_products_exactly():
    """Sums of five and of two products, up to the largest whose sum stays below 2^128
    (five products of 2^61.6-bit operands, two of 2^63.5-bit ones), against Python ints."""
    r = random.Random(129)
    rows = []
    five_top, two_top = 3 * 2**61 - 1, 2**63 + 2**61  # 5 * five_top^2 < 2^128, 2 * two_top^2 < 2^128
    rows.append(([five_top] * 5, [five_top] * 5))
    rows.append(([two_top] * 2 + [0] * 3, [two_top] * 2 + [0] * 3))
    rows.append(([0] * 5, [2**64 - 1] * 5))
    for _ in range(300):
        rows.append(([r.randrange(five_top) for _ in range(5)], [r.randrange(five_top) for _ in range(5)]))
    a = np.array([x for x, _ in rows], dtype=np.uint64)
    b = np.array([y for _, y in rows], dtype=np.uint64)
    out = np.zeros((len(rows), 4), dtype=np.uint64)
    _dot_rows(a, b, out)
    for i, (x, y) in enumerate(rows):
        assert int(out[i, 0]) | (int(out[i, 1]) << 64) == sum(p * q for p, q in zip(x, y)) % 2**128, i
        assert int(out[i, 2]) | (int(out[i, 3]) << 64) == (x[0] * y[0] + x[1] * y[1]) % 2**128, i
    assert sum(p * q for p, q in zip(rows[0][0], rows[0][1])) < 2**128
    assert 2 * two_top**2 < 2**128
