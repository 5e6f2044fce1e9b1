"""kernels.int128: the 64x64 -> 128-bit primitives against Python ints, at the edges and at random."""
import random

import numpy as np

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


