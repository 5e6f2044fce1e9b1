"""kernels.fixed_base: comb digits, the base-point comb and per-key comb and odd-multiple tables against the reference."""
import random

import numpy as np
import pytest

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


@pytest.mark.parametrize("rows", [32, 8])
def test_comb_tables_of_arbitrary_points(rows):
    """The full comb (32 rows) and a key's comb (KEY_COMB_ROWS = 8 rows at 2^32 spacing)."""
    r = random.Random(21)
    pts = [ref.from_affine(*ref.to_affine(p)) for p in
           H.random_points(4, 22, torsion=True, scale=False)]
    pts += [ref.IDENTITY, ref.SMALL_ORDER_POINTS[1], ref.SMALL_ORDER_POINTS[4],
            ref.from_affine(*ref.to_affine(ref.point_add(ref.B, ref.SMALL_ORDER_POINTS[3])))]
    tables = np.zeros((len(pts), rows, 8, 3, 5), dtype=np.uint64)
    H.comb_build_rows(H.point_array(pts), tables)
    assert int(tables.max()) < H.REDUCED
    vals = [0, 1, ref.L - 1, 2**253 - 1] + [r.randrange(ref.L) for _ in range(6)]
    for i, pt in enumerate(pts):
        out = np.zeros((len(vals), 4, 5), dtype=np.uint64)
        H.comb_mul_rows(tables[i], H.scalar_array(vals), out)
        H.check_points(out, [ref.scalar_mult(v, pt) for v in vals], f"comb_mul(point {i})")


def test_base_byte_comb_holds_multiples_of_b():
    """BASE_BYTE_COMB[i][j] = (j+1) 2^(32 i) B in affine Niels form (the single checks' table
    for S in signed radix 256), every entry against the reference."""
    from kernels.fixed_base import BASE_BYTE_COMB, BYTE_COMB_COLS, BYTE_COMB_ROWS, KEY_COMB_ROWS

    assert BASE_BYTE_COMB.shape == (BYTE_COMB_ROWS, BYTE_COMB_COLS, 3, 5) == (KEY_COMB_ROWS, 128, 3, 5)
    assert int(BASE_BYTE_COMB.max()) < H.REDUCED
    for i in range(BYTE_COMB_ROWS):
        q = ref.scalar_mult(2 ** (32 * i), ref.B)
        pt = ref.IDENTITY
        for j in range(BYTE_COMB_COLS):
            pt = ref.point_add(pt, q)
            x, y = ref.to_affine(pt)
            want = ((y + x) % ref.P, (y - x) % ref.P, 2 * ref.D * x * y % ref.P)
            assert tuple(H.fe_value(BASE_BYTE_COMB[i, j, c]) % ref.P for c in range(3)) == want, (i, j)
