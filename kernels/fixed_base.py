"""Precomputed tables for points used again and again: B and the cached validator keys.

Two tables per point. The comb serves single verification; the odd multiples (see
`odd_multiples_build`) serve batch verification.

Fixed-base scalar multiplication by a precomputed comb (ref10 `ge_scalarmult_base`):

For a point P the table holds T[i][j] = (j+1) * 256^i * P in affine Niels form, for
i in 0..31 and j in 0..7 (256 points, 30 KiB). A scalar s < 2^255 is written in signed
radix 16, s = sum_{k=0}^{63} e_k 16^k with e_k in [-8, 8), and
  1. h = sum over odd k of e_k * 16^(k-1) * P    (32 table madds: 16^(k-1) = 256^((k-1)/2))
  2. h = 16 * h                                   (4 doublings)
  3. h += sum over even k of e_k * 16^k * P       (32 table madds)
cost = 64 madds + 4 doublings, against ~253 doublings + ~50 adds for a sliding window:
about 3x cheaper, which is why the key cache keeps one table per frequently seen key, and
the base point B has a constant one.

Building a table: 8 doublings and 7 additions per row i, then one batch inversion
(Montgomery's trick, 3 multiplications per point plus one inversion) to make all 256
points affine.
"""
import numpy as np
from numba import njit

from kernels.edwards import (
    BASE_XY, affine_add_int, ge_add_cached, ge_dbl, ge_dbl_n, ge_identity, ge_madd, ge_msub,
    ge_to_cached, niels_load, niels_rows_int,
)
from kernels.field25519 import (
    FE_D2, fe_add, fe_carry, fe_invert, fe_mul, fe_one, fe_sub,
)

__all__ = ["comb_table_build", "comb_mul", "comb_digits", "odd_multiples_build", "BASE_COMB",
           "ODD_MULTIPLES"]

COMB_ROWS = 32
COMB_COLS = 8
# Width-8 sliding-window tables: P, 3P, ..., 127P.
ODD_MULTIPLES = 64


@njit(cache=True, nogil=True)
def _store_xyz(xs, ys, zs, t, P):
    for k in range(5):
        xs[t, k] = P[0][k]
        ys[t, k] = P[1][k]
        zs[t, k] = P[2][k]


@njit(cache=True, nogil=True)
def _to_affine_niels(xs, ys, zs, out):
    """out[t] = affine Niels form of (xs[t] : ys[t] : zs[t]), with one field inversion.

    Montgomery's trick: prefix products of the Z's, one inversion, then walk back.
    """
    n = xs.shape[0]
    prefix = np.empty((n, 5), dtype=np.uint64)
    run = fe_one()
    for t in range(n):
        for k in range(5):
            prefix[t, k] = run[k]
        run = fe_mul(run, (zs[t, 0], zs[t, 1], zs[t, 2], zs[t, 3], zs[t, 4]))
    inv = fe_invert(run)
    for t in range(n - 1, -1, -1):
        z = (zs[t, 0], zs[t, 1], zs[t, 2], zs[t, 3], zs[t, 4])
        pre = (prefix[t, 0], prefix[t, 1], prefix[t, 2], prefix[t, 3], prefix[t, 4])
        zinv = fe_mul(inv, pre)
        inv = fe_mul(inv, z)
        x = fe_mul((xs[t, 0], xs[t, 1], xs[t, 2], xs[t, 3], xs[t, 4]), zinv)
        y = fe_mul((ys[t, 0], ys[t, 1], ys[t, 2], ys[t, 3], ys[t, 4]), zinv)
        ypx = fe_carry(fe_add(y, x))
        ymx = fe_sub(y, x)
        t2d = fe_mul(fe_mul(x, y), FE_D2)
        for k in range(5):
            out[t, 0, k] = ypx[k]
            out[t, 1, k] = ymx[k]
            out[t, 2, k] = t2d[k]


@njit(cache=True, nogil=True)
def comb_table_build(P, table):
    """Fill table (32, 8, 3, 5) with (j+1) * 256^i * P in affine Niels form."""
    n = COMB_ROWS * COMB_COLS
    xs = np.empty((n, 5), dtype=np.uint64)
    ys = np.empty((n, 5), dtype=np.uint64)
    zs = np.empty((n, 5), dtype=np.uint64)
    base = P
    for i in range(COMB_ROWS):
        step = ge_to_cached(base)
        acc = base
        for j in range(COMB_COLS):
            if j > 0:
                acc = ge_add_cached(acc, step)
            _store_xyz(xs, ys, zs, i * COMB_COLS + j, acc)
        if i + 1 < COMB_ROWS:
            base = ge_dbl_n(base, 8)
    _to_affine_niels(xs, ys, zs, table.reshape((n, 3, 5)))


@njit(cache=True, nogil=True)
def odd_multiples_build(P, table):
    """Fill table (ODD_MULTIPLES, 3, 5) with P, 3P, 5P, ..., 127P in affine Niels form:
    the width-8 sliding-window table a cached key brings to a batch's multi-scalar
    multiplication (digits |d| <= 127, one nonzero in ~9 bits, madds, no table to build)."""
    n = table.shape[0]
    xs = np.empty((n, 5), dtype=np.uint64)
    ys = np.empty((n, 5), dtype=np.uint64)
    zs = np.empty((n, 5), dtype=np.uint64)
    step = ge_to_cached(ge_dbl(P))
    acc = P
    for t in range(n):
        if t > 0:
            acc = ge_add_cached(acc, step)
        _store_xyz(xs, ys, zs, t, acc)
    _to_affine_niels(xs, ys, zs, table)


@njit(cache=True, nogil=True)
def comb_digits(s, e):
    """Signed radix-16 digits of the 4-limb scalar s (< 2^255) into e[0:64], in [-8, 8]."""
    for k in range(64):
        e[k] = np.int8((s[k >> 4] >> np.uint64(4 * (k & 15))) & np.uint64(15))
    carry = 0
    for k in range(63):
        v = e[k] + carry
        carry = (v + 8) >> 4
        e[k] = np.int8(v - (carry << 4))
    e[63] = np.int8(e[63] + carry)


@njit(cache=True, nogil=True)
def _add_digit(h, table, i, d):
    if d > 0:
        return ge_madd(h, niels_load(table[i], d - 1))
    if d < 0:
        return ge_msub(h, niels_load(table[i], -d - 1))
    return h


@njit(cache=True, nogil=True)
def comb_mul(table, s, e):
    """[s]P for the point P whose comb table is given; e is int8 scratch of length 64."""
    comb_digits(s, e)
    h = ge_identity()
    for k in range(1, 64, 2):
        h = _add_digit(h, table, k >> 1, e[k])
    h = ge_dbl_n(h, 4)
    for k in range(0, 64, 2):
        h = _add_digit(h, table, k >> 1, e[k])
    return h


def _base_comb():
    # Built once at import with plain Python ints, so importing kernels compiles nothing.
    table = np.zeros((COMB_ROWS, COMB_COLS, 3, 5), dtype=np.uint64)
    base = BASE_XY
    for i in range(COMB_ROWS):
        row = [base]
        for _ in range(COMB_COLS - 1):
            row.append(affine_add_int(row[-1], base))
        table[i] = niels_rows_int(row)
        for _ in range(8):
            base = affine_add_int(base, base)
    return table


# (j+1) * 256^i * B: the base point's comb.
BASE_COMB = _base_comb()
