"""Unit tests of kernels/tables_x8.py: build_key_tables_x8 builds the same tables (values mod
p) as the serial builders of kernels.fixed_base, for random, torsion and small-order keys, and
a comb of KEY_COMB_ROWS rows multiplies like the reference."""

import random

import numpy as np
from numba import njit

from kernels.field25519 import fe_canonical
from kernels.fixed_base import KEY_COMB_ROWS, comb_mul, comb_table_build, odd_multiples_build
from kernels.tables_x8 import build_key_tables_x8
from tests.support import kernel_harness as H
from tests.support import ref_ed25519 as ref

P = ref.P


@njit(cache=True)
def _canonical(a):
    f = a.reshape(-1, 5)
    out = np.empty_like(f)
    for i in range(f.shape[0]):
        r = fe_canonical((f[i, 0], f[i, 1], f[i, 2], f[i, 3], f[i, 4]))
        for k in range(5):
            out[i, k] = r[k]
    return out


def test_key_tables_x8_match_the_serial_builders():
    r = random.Random(23)
    keys = [ref.scalar_mult(r.randrange(ref.L), ref.B) for _ in range(9)]
    keys += [ref.decompress_zip215(ref.encode_with_torsion(r.randrange(ref.L), t)) for t in range(1, 4)]
    keys += [ref.decompress_zip215(e) for e in ref.small_order_encodings()[:3]]
    points = H.point_array([(x, y, 1, x * y % P) for x, y in map(ref.to_affine, keys)])
    n = len(keys)
    combs = np.zeros((n, KEY_COMB_ROWS, 8, 3, 5), np.uint64)
    odds = np.zeros((n, 64, 3, 5), np.uint64)
    build_key_tables_x8(points, combs, odds)
    want_combs = np.zeros_like(combs)
    want_odds = np.zeros_like(odds)
    _serial_tables(points, want_combs, want_odds)
    assert (_canonical(combs) == _canonical(want_combs)).all()
    assert (_canonical(odds) == _canonical(want_odds)).all()
    # the comb multiplies: [s]P for an R-row comb
    scalars = [0, 1, ref.L - 1, r.randrange(ref.L), r.randrange(2**255)]
    for i in (0, n - 1):
        for s in scalars:
            got = _comb_mul(combs[i], H.scalar_array([s]))
            X, Y, Z, _ = (H.fe_value(got[0, c]) % P for c in range(4))
            want = ref.to_affine(ref.scalar_mult(s, keys[i]))
            zi = pow(Z, P - 2, P)
            assert (X * zi % P, Y * zi % P) == want


@njit(cache=True)
def _serial_tables(points, combs, odds):
    for i in range(points.shape[0]):
        P_ = ((points[i, 0, 0], points[i, 0, 1], points[i, 0, 2], points[i, 0, 3], points[i, 0, 4]),
              (points[i, 1, 0], points[i, 1, 1], points[i, 1, 2], points[i, 1, 3], points[i, 1, 4]),
              (points[i, 2, 0], points[i, 2, 1], points[i, 2, 2], points[i, 2, 3], points[i, 2, 4]),
              (points[i, 3, 0], points[i, 3, 1], points[i, 3, 2], points[i, 3, 3], points[i, 3, 4]))
        comb_table_build(P_, combs[i])
        odd_multiples_build(P_, odds[i])


@njit(cache=True)
def _comb_mul(table, s):
    e = np.empty(64, np.int8)
    Q = comb_mul(table, (s[0, 0], s[0, 1], s[0, 2], s[0, 3]), e)
    out = np.empty((1, 4, 5), np.uint64)
    for c in range(4):
        for k in range(5):
            out[0, c, k] = Q[c][k]
    return out
