"""Precomputed tables for points used again and again: B and the cached validator keys.

Two tables per point. The comb serves single verification; the odd multiples (see
`odd_multiples_build`) serve batch verification.

Fixed-base scalar multiplication by a precomputed comb (ref10 `ge_scalarmult_base`):

A comb of R rows holds T[i][j] = (j+1) * 16^(G i) * P in affine Niels form, for i in
0..R-1, j in 0..7 and G = 64 / R (R * 8 points of 120 bytes). A scalar s < 2^255 is written
in signed radix 16, s = sum_{k=0}^{63} e_k 16^k with e_k in [-8, 8], so with k = G i + r
  s P = sum_{r} 16^r sum_{i} e_{G i + r} T[i]
and Horner over r from G-1 down to 0 evaluates it:
  h = 0; for r = G-1 .. 0: h = 16 h (4 doublings, not before the first r);
                           h += e_{G i + r} T[i] for every row i   (R table madds)
cost = 64 madds + 4 (G - 1) doublings, against ~253 doublings + ~50 adds for a sliding
window. B has the full comb (R = 32, G = 2: T[i] = 256^i multiples, 30 KiB, 64 madds + 4
doublings, ref10's `ge_scalarmult_base`); cached keys get R = 8 (G = 8, 7.5 KiB, 64 madds
+ 28 doublings), four times smaller for the price of 24 doublings per check, so a memory
budget holds four times as many keys. B's rows 0, 4, 8, ... are an R = 8 comb of B, so a
single check runs both combs on one Horner chain (kernels.verify_x8).

Building a table: 4 G doublings and 7 additions per row i, then one batch inversion
(Montgomery's trick, 3 multiplications per point plus one inversion) to make all points
affine.
"""
import numpy as np
from numba import njit

from kernels.edwards import (
    _D as _D_INT, _P, BASE_XY, ge_add_cached, ge_dbl, ge_dbl_n, ge_identity, ge_madd, ge_msub,
    ge_to_cached, niels_load, niels_rows_int,
)
from kernels.field25519 import (
    FE_D2, fe_add, fe_carry, fe_invert, fe_mul, fe_one, fe_sub,
)

__all__ = ["comb_table_build", "comb_mul", "comb_digits", "odd_multiples_build", "BASE_COMB",
           "BASE_BYTE_COMB", "ODD_MULTIPLES", "KEY_COMB_ROWS", "COMB_COLS"]

COMB_ROWS = 32
COMB_COLS = 8
# Rows of a cached key's comb (see the module docstring for the trade-off).
KEY_COMB_ROWS = 8
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
    """Fill table (R, 8, 3, 5) with (j+1) * 16^(G i) * P in affine Niels form, G = 64 / R."""
    rows = table.shape[0]
    n = rows * COMB_COLS
    xs = np.empty((n, 5), dtype=np.uint64)
    ys = np.empty((n, 5), dtype=np.uint64)
    zs = np.empty((n, 5), dtype=np.uint64)
    base = P
    for i in range(rows):
        step = ge_to_cached(base)
        acc = base
        for j in range(COMB_COLS):
            if j > 0:
                acc = ge_add_cached(acc, step)
            _store_xyz(xs, ys, zs, i * COMB_COLS + j, acc)
        if i + 1 < rows:
            base = ge_dbl_n(base, 256 // rows)
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
    """[s]P for the point P whose comb table (R rows) is given; e is int8 scratch of 64."""
    comb_digits(s, e)
    rows = table.shape[0]
    group = 64 // rows
    h = ge_identity()
    for r in range(group - 1, -1, -1):
        if r < group - 1:
            h = ge_dbl_n(h, 4)
        for i in range(rows):
            h = _add_digit(h, table, i, e[group * i + r])
    return h


def _to_affine_int(points):
    """Affine (x, y) of projective Python-int points (X, Y, Z), one inversion for all
    (Montgomery's trick)."""
    p = _P
    prefix, run = [], 1
    for _, _, z in points:
        prefix.append(run)
        run = run * z % p
    inv = pow(run, p - 2, p)
    out = [None] * len(points)
    for t in range(len(points) - 1, -1, -1):
        x, y, z = points[t]
        zinv = inv * prefix[t] % p
        inv = inv * z % p
        out[t] = (x * zinv % p, y * zinv % p)
    return out


def _add_int(P1, q):
    """Projective (X : Y : Z) + affine q with Python ints (a = -1 twisted Edwards)."""
    p = _P
    X, Y, Z = P1
    qx, qy = q
    A = Z * Z % p
    C = X * qx % p
    D = Y * qy % p
    E = _D_INT * C * D % p
    F, G = (A - E) % p, (A + E) % p
    return Z * F * ((X + Y) * (qx + qy) - C - D) % p, Z * G * (D + C) % p, F * G % p


def _dbl_int(P1):
    """2 (X : Y : Z) with Python ints (a = -1: the dbl-2008-bbjlp formulas)."""
    p = _P
    X, Y, Z = P1
    B = (X + Y) * (X + Y) % p
    C, D = X * X % p, Y * Y % p
    F = (D - C) % p
    J = (F - 2 * Z * Z) % p
    return (B - C - D) * J % p, F * (-C - D) % p, F * J % p


def _multiples_int(starts, count):
    """Affine j * Q for j = 1..count and each affine Q in starts (Python ints)."""
    rows = []
    for q in starts:
        P1 = (q[0], q[1], 1)
        for _ in range(count):
            rows.append(P1)
            P1 = _add_int(P1, q)
    return _to_affine_int(rows)


def _powers_of_two_int(shift, count):
    """Affine 2^(shift i) * B for i in 0..count-1 (Python ints)."""
    P1, points = (BASE_XY[0], BASE_XY[1], 1), []
    for _ in range(count):
        points.append(P1)
        for _ in range(shift):
            P1 = _dbl_int(P1)
    return _to_affine_int(points)


# Both tables are built once at import with plain Python ints (one inversion each), so
# importing kernels compiles nothing.

# (j+1) * 256^i * B: the base point's comb.
BASE_COMB = niels_rows_int(_multiples_int(_powers_of_two_int(8, COMB_ROWS), COMB_COLS)).reshape(
    COMB_ROWS, COMB_COLS, 3, 5)

# j * 2^(32 i) * B (i < 8, 1 <= j <= 128): B in signed radix 256 on the Horner chain of a
# key's 8-row comb (kernels.verify_x8), half the madds of radix 16. 120 KiB.
BYTE_COMB_ROWS = 8
BYTE_COMB_COLS = 128
BASE_BYTE_COMB = niels_rows_int(_multiples_int(_powers_of_two_int(32, BYTE_COMB_ROWS),
                                               BYTE_COMB_COLS)).reshape(
    BYTE_COMB_ROWS, BYTE_COMB_COLS, 3, 5)
