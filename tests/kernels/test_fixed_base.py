"""kernels.fixed_base: comb digits, the base-point comb and per-key comb and odd-multiple tables against the reference."""
import random

import numpy as np

from tests.support import kernel_harness as H
from tests.support import ref_ed25519 as ref
from tests.support import nojit  # noqa: F401  (this file runs uncompiled too: the kernel coverage gate)


def _comb_scalars(seed):
    r = random.Random(seed)
    L = ref.L
    return [0, 1, 2, 7, 8, 15, 16, L - 1, L - 2, 2**252, 2**252 - 1, 2**253 - 1, 2**255 - 1,
            int("8" * 63, 16), int("7" * 63, 16), 2**128 - 1] + \
        [r.randrange(L) for _ in range(40)] + [r.getrandbits(255) for _ in range(10)]


def test_comb_digits_reconstruct():
    vals = _comb_scalars(19)
    out = np.zeros((len(vals), 64), dtype=np.int8)
    H.comb_digits_rows(H.scalar_array(vals), out)
    for v, row in zip(vals, out):
        digits = [int(d) for d in row]
        assert all(-8 <= d <= 8 for d in digits), (hex(v), digits)
        assert sum(d << (4 * k) for k, d in enumerate(digits)) == v, hex(v)


def test_base_comb_and_comb_mul():
    from kernels.fixed_base import BASE_COMB

    vals = _comb_scalars(20)
    out = np.zeros((len(vals), 4, 5), dtype=np.uint64)
    H.comb_mul_rows(BASE_COMB, H.scalar_array(vals), out)
    H.check_points(out, [ref.scalar_mult(v, ref.B) for v in vals], "comb_mul(BASE_COMB)")
    # the kernel's own table builder reproduces the constant table (mod p)
    tables = np.zeros((1, 32, 8, 3, 5), dtype=np.uint64)
    H.comb_build_rows(H.point_array([ref.B]), tables)
    for idx in np.ndindex(32, 8, 3):
        assert H.fe_value(tables[(0,) + idx]) % ref.P == H.fe_value(BASE_COMB[idx]) % ref.P, idx


def test_comb_tables_of_arbitrary_points():
    r = random.Random(21)
    pts = [ref.from_affine(*ref.to_affine(p)) for p in
           H.random_points(4, 22, torsion=True, scale=False)]
    pts += [ref.IDENTITY, ref.SMALL_ORDER_POINTS[1], ref.SMALL_ORDER_POINTS[4],
            ref.from_affine(*ref.to_affine(ref.point_add(ref.B, ref.SMALL_ORDER_POINTS[3])))]
    tables = np.zeros((len(pts), 32, 8, 3, 5), dtype=np.uint64)
    H.comb_build_rows(H.point_array(pts), tables)
    assert int(tables.max()) < H.REDUCED
    vals = [0, 1, ref.L - 1, 2**253 - 1] + [r.randrange(ref.L) for _ in range(6)]
    for i, pt in enumerate(pts):
        out = np.zeros((len(vals), 4, 5), dtype=np.uint64)
        H.comb_mul_rows(tables[i], H.scalar_array(vals), out)
        H.check_points(out, [ref.scalar_mult(v, pt) for v in vals], f"comb_mul(point {i})")


