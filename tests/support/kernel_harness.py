"""Small @njit wrappers that let the unit tests call the Ed25519 kernels from Python.

The kernels take and return tuples (a field element is a 5-tuple of uint64 limbs, a point a
4-tuple of elements, a scalar a 4-tuple of uint64 limbs), and a Python int passed into an
njit function types as int64. The wrappers below take uint64 arrays instead, one row per
input (elements (n, 5), points (n, 4, 5), affine Niels (n, 3, 5), scalars (n, 4)), loop over
the rows inside Numba and write the results into output arrays. `op` codes select the
kernel so that one compiled wrapper serves a family of operations.

Python-side helpers convert between ints and limb arrays *without* reducing, so tests can
feed exact limb patterns (e.g. every limb at its documented maximum).
"""

from __future__ import annotations

import random

import numpy as np
from numba import njit

from tests.support import ref_ed25519 as ref
from kernels.edwards import (
    ge_add, ge_add_cached, ge_dbl, ge_dbl_n, ge_decompress_zip215, ge_is_identity, ge_madd,
    ge_msub, ge_mul_by_cofactor, ge_neg, ge_sub, ge_sub_cached, ge_to_affine_niels,
    ge_to_cached, ge_tobytes, niels_neg,
)
from kernels.field25519 import (
    fe_add, fe_canonical, fe_carry, fe_eq, fe_frombytes_zip215, fe_invert, fe_is_negative,
    fe_is_zero, fe_mul, fe_mul_small, fe_neg, fe_pow22523, fe_sq, fe_sq_n, fe_sub, fe_sub_loose, fe_tobytes,
)
from kernels.fixed_base import comb_digits, comb_mul, comb_table_build, odd_multiples_build
from kernels.msm import msm_pippenger, msm_straus
from kernels.scalar25519 import (
    sc_acc_mul, sc_is_canonical, sc_load, sc_neg, sc_reduce_bytes64, sc_reduce_wide,
    sc_signed_digits, sc_wnaf,
)

P = 2**255 - 19
MASK51 = (1 << 51) - 1
MASK64 = (1 << 64) - 1

# ---- Python-side conversions -----------------------------------------------------------------


def limbs_of(v: int) -> list[int]:
    """Radix-2^51 limbs of 0 <= v < 2^255 (no reduction mod p)."""
    assert 0 <= v < 2**255
    return [(v >> (51 * i)) & MASK51 for i in range(5)]


def all_pairs(values) -> tuple[list, list]:
    """Two aligned lists covering every ordered pair (x, y) of ``values``."""
    return [x for x in values for _ in values], [y for _ in values for y in values]


def fe_array(values) -> np.ndarray:
    """(n, 5) uint64 limbs of ints in [0, 2^255), or of explicit 5-limb lists."""
    rows = [v if isinstance(v, (list, tuple)) else limbs_of(v) for v in values]
    return np.array(rows, dtype=np.uint64).reshape(-1, 5)


def fe_value(limbs) -> int:
    """The integer sum limbs[i] * 2^(51 i) (not reduced)."""
    return sum(int(x) << (51 * i) for i, x in enumerate(limbs))


def fe_values(arr: np.ndarray) -> list[int]:
    return [fe_value(row) for row in arr]


def point_array(points) -> np.ndarray:
    """(n, 4, 5) uint64 from reference points (X, Y, Z, T) given as ints mod p."""
    out = np.zeros((len(points), 4, 5), dtype=np.uint64)
    for i, pt in enumerate(points):
        for j in range(4):
            out[i, j] = limbs_of(pt[j] % P)
    return out


def point_ints(arr_row) -> tuple[int, int, int, int]:
    return tuple(fe_value(arr_row[j]) % P for j in range(4))


def niels_array(affine_points) -> np.ndarray:
    """(n, 3, 5) affine Niels (y+x, y-x, 2dxy) of reference points."""
    from tests.support import ref_ed25519 as ref

    out = np.zeros((len(affine_points), 3, 5), dtype=np.uint64)
    for i, pt in enumerate(affine_points):
        x, y = ref.to_affine(pt)
        for j, v in enumerate(((y + x) % P, (y - x) % P, ref.D2 * x * y % P)):
            out[i, j] = limbs_of(v)
    return out


def scalar_array(values) -> np.ndarray:
    """(n, 4) uint64 limbs of ints in [0, 2^256)."""
    return np.array([[(v >> (64 * i)) & MASK64 for i in range(4)] for v in values],
                    dtype=np.uint64).reshape(-1, 4)


def wide_array(values) -> np.ndarray:
    """(n, 8) uint64 limbs of ints in [0, 2^512)."""
    return np.array([[(v >> (64 * i)) & MASK64 for i in range(8)] for v in values],
                    dtype=np.uint64).reshape(-1, 8)


def scalar_value(limbs) -> int:
    return sum(int(x) << (64 * i) for i, x in enumerate(limbs))


def bytes_array(blobs, width: int) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(-1, width).copy()


# ---- njit plumbing ------------------------------------------------------------------------------


@njit(cache=True)
def _fe(a, i):
    return (a[i, 0], a[i, 1], a[i, 2], a[i, 3], a[i, 4])


@njit(cache=True)
def _fe_put(out, i, f):
    for k in range(5):
        out[i, k] = f[k]


@njit(cache=True)
def _pt(a, i):
    return ((a[i, 0, 0], a[i, 0, 1], a[i, 0, 2], a[i, 0, 3], a[i, 0, 4]),
            (a[i, 1, 0], a[i, 1, 1], a[i, 1, 2], a[i, 1, 3], a[i, 1, 4]),
            (a[i, 2, 0], a[i, 2, 1], a[i, 2, 2], a[i, 2, 3], a[i, 2, 4]),
            (a[i, 3, 0], a[i, 3, 1], a[i, 3, 2], a[i, 3, 3], a[i, 3, 4]))


@njit(cache=True)
def _niels(a, i):
    return ((a[i, 0, 0], a[i, 0, 1], a[i, 0, 2], a[i, 0, 3], a[i, 0, 4]),
            (a[i, 1, 0], a[i, 1, 1], a[i, 1, 2], a[i, 1, 3], a[i, 1, 4]),
            (a[i, 2, 0], a[i, 2, 1], a[i, 2, 2], a[i, 2, 3], a[i, 2, 4]))


@njit(cache=True)
def _pt_put(out, i, P_):
    for j in range(4):
        for k in range(5):
            out[i, j, k] = P_[j][k]


@njit(cache=True)
def _niels_put(out, i, N):
    for j in range(3):
        for k in range(5):
            out[i, j, k] = N[j][k]


@njit(cache=True)
def _sc(a, i):
    return (a[i, 0], a[i, 1], a[i, 2], a[i, 3])


# ---- field -----------------------------------------------------------------------------------

FE_MUL, FE_ADD, FE_SUB, FE_SUB_LOOSE = 0, 1, 2, 3


@njit(cache=True)
def fe_binop_rows(op, a, b, out):
    for i in range(a.shape[0]):
        f = _fe(a, i)
        g = _fe(b, i)
        if op == 0:
            h = fe_mul(f, g)
        elif op == 1:
            h = fe_add(f, g)
        elif op == 2:
            h = fe_sub(f, g)
        else:
            h = fe_sub_loose(f, g)
        _fe_put(out, i, h)


FE_SQ, FE_NEG, FE_CARRY, FE_CANONICAL, FE_INVERT, FE_POW22523 = range(6)


@njit(cache=True)
def fe_unop_rows(op, a, out):
    for i in range(a.shape[0]):
        f = _fe(a, i)
        if op == 0:
            h = fe_sq(f)
        elif op == 1:
            h = fe_neg(f)
        elif op == 2:
            h = fe_carry(f)
        elif op == 3:
            h = fe_canonical(f)
        elif op == 4:
            h = fe_invert(f)
        else:
            h = fe_pow22523(f)
        _fe_put(out, i, h)


@njit(cache=True)
def fe_sq_n_rows(a, n, out):
    for i in range(a.shape[0]):
        _fe_put(out, i, fe_sq_n(_fe(a, i), n))


@njit(cache=True)
def fe_mul_small_rows(a, k, out):
    for i in range(a.shape[0]):
        _fe_put(out, i, fe_mul_small(_fe(a, i), k))


@njit(cache=True)
def fe_tobytes_rows(a, out):
    for i in range(a.shape[0]):
        fe_tobytes(_fe(a, i), out[i])


@njit(cache=True)
def fe_frombytes_rows(b, out):
    for i in range(b.shape[0]):
        _fe_put(out, i, fe_frombytes_zip215(b[i]))


FE_IS_ZERO, FE_IS_NEGATIVE, FE_EQ = 0, 1, 2


@njit(cache=True)
def fe_pred_rows(op, a, b, out):
    for i in range(a.shape[0]):
        f = _fe(a, i)
        if op == 0:
            out[i] = fe_is_zero(f)
        elif op == 1:
            out[i] = fe_is_negative(f)
        else:
            out[i] = fe_eq(f, _fe(b, i))


# ---- scalars ---------------------------------------------------------------------------------


@njit(cache=True)
def sc_reduce_wide_rows(x, out):
    for i in range(x.shape[0]):
        s = sc_reduce_wide(x[i])
        for j in range(4):
            out[i, j] = s[j]


@njit(cache=True)
def sc_reduce_bytes64_rows(h, out):
    for i in range(h.shape[0]):
        s = sc_reduce_bytes64(h[i])
        for j in range(4):
            out[i, j] = s[j]


@njit(cache=True)
def sc_load_rows(b, off, out):
    for i in range(b.shape[0]):
        s = sc_load(b[i], off)
        for j in range(4):
            out[i, j] = s[j]


@njit(cache=True)
def sc_is_canonical_rows(s, out):
    for i in range(s.shape[0]):
        out[i] = sc_is_canonical(_sc(s, i))


@njit(cache=True)
def sc_neg_rows(s, out):
    for i in range(s.shape[0]):
        r = sc_neg(_sc(s, i))
        for j in range(4):
            out[i, j] = r[j]


@njit(cache=True)
def sc_acc_mul_rows(a, b, acc):
    """acc[0:8] += sum_i a[i] * b[i] (a: (n, 4) scalars, b: (n, 2) 128-bit values)."""
    for i in range(a.shape[0]):
        sc_acc_mul(acc, _sc(a, i), (b[i, 0], b[i, 1]))


@njit(cache=True)
def sc_signed_digits_rows(s, c, n_windows, out):
    for i in range(s.shape[0]):
        sc_signed_digits(_sc(s, i), c, n_windows, out, i)


@njit(cache=True)
def sc_wnaf_rows(s, max_digit, out):
    for i in range(s.shape[0]):
        sc_wnaf(_sc(s, i), max_digit, out[i])


# ---- points ----------------------------------------------------------------------------------


@njit(cache=True)
def ge_decompress_rows(b, ok, out):
    for i in range(b.shape[0]):
        good, P_ = ge_decompress_zip215(b[i])
        ok[i] = good
        _pt_put(out, i, P_)


GE_ADD, GE_SUB, GE_ADD_CACHED, GE_SUB_CACHED = range(4)


@njit(cache=True)
def ge_binop_rows(op, a, b, out):
    for i in range(a.shape[0]):
        p = _pt(a, i)
        q = _pt(b, i)
        if op == 0:
            r = ge_add(p, q)
        elif op == 1:
            r = ge_sub(p, q)
        elif op == 2:
            r = ge_add_cached(p, ge_to_cached(q))
        else:
            r = ge_sub_cached(p, ge_to_cached(q))
        _pt_put(out, i, r)


GE_MADD, GE_MSUB, GE_MADD_NEG = range(3)


@njit(cache=True)
def ge_madd_rows(op, a, n, out):
    for i in range(a.shape[0]):
        p = _pt(a, i)
        q = _niels(n, i)
        if op == 0:
            r = ge_madd(p, q)
        elif op == 1:
            r = ge_msub(p, q)
        else:
            r = ge_madd(p, niels_neg(q))
        _pt_put(out, i, r)


GE_DBL, GE_COFACTOR, GE_NEG = range(3)


@njit(cache=True)
def ge_unop_rows(op, a, out):
    for i in range(a.shape[0]):
        p = _pt(a, i)
        if op == 0:
            r = ge_dbl(p)
        elif op == 1:
            r = ge_mul_by_cofactor(p)
        else:
            r = ge_neg(p)
        _pt_put(out, i, r)


@njit(cache=True)
def ge_dbl_n_rows(a, n, out):
    for i in range(a.shape[0]):
        _pt_put(out, i, ge_dbl_n(_pt(a, i), n))


@njit(cache=True)
def ge_to_affine_niels_rows(a, out):
    for i in range(a.shape[0]):
        _niels_put(out, i, ge_to_affine_niels(_pt(a, i)))


@njit(cache=True)
def ge_is_identity_rows(a, out):
    for i in range(a.shape[0]):
        out[i] = ge_is_identity(_pt(a, i))


@njit(cache=True)
def ge_tobytes_rows(a, out):
    for i in range(a.shape[0]):
        ge_tobytes(_pt(a, i), out[i])


# ---- MSM -------------------------------------------------------------------------------------


@njit(cache=True)
def msm_straus_arr(sp, ss, lp, ls, base, tables, tab_ids, tab_sc, out):
    _pt_put(out, 0, msm_straus(sp, ss, lp, ls, base, tables, tab_ids, tab_sc))


@njit(cache=True)
def msm_pippenger_arr(sp, ss, lp, ls, base, tables, tab_ids, tab_sc, c, out):
    _pt_put(out, 0, msm_pippenger(sp, ss, lp, ls, base, tables, tab_ids, tab_sc, c))


@njit(cache=True)
def odd_multiples_rows(points, out):
    """out[i] = odd multiples 1..127 of points[i] (affine Niels), kernels.fixed_base."""
    for i in range(points.shape[0]):
        odd_multiples_build(_pt(points, i), out[i])


# ---- int128 ----------------------------------------------------------------------------------

from kernels.int128 import add128, mac, mul64, shr128  # noqa: E402


@njit(cache=True)
def int128_rows(a, b, c, n, out):
    """out[i] = (mul64(a,b), mac((c,c), a, b), add128((a,b), c), shr128((a,b), n[i])) flattened."""
    for i in range(a.shape[0]):
        lo, hi = mul64(a[i], b[i])
        out[i, 0] = lo
        out[i, 1] = hi
        m = mac((c[i], c[i]), a[i], b[i])
        out[i, 2] = m[0]
        out[i, 3] = m[1]
        s = add128((a[i], b[i]), c[i])
        out[i, 4] = s[0]
        out[i, 5] = s[1]
        out[i, 6] = shr128((a[i], b[i]), n[i])


# ---- fixed-base comb (kernels/fixed_base.py, when present) -----------------------------------

@njit(cache=True)
def comb_digits_rows(s, out):
    for i in range(s.shape[0]):
        comb_digits(_sc(s, i), out[i])


@njit(cache=True)
def comb_mul_rows(table, s, out):
    """out[i] = [s[i]]P for the point P of the comb table."""
    e = np.empty(64, dtype=np.int8)
    for i in range(s.shape[0]):
        _pt_put(out, i, comb_mul(table, _sc(s, i), e))


@njit(cache=True)
def comb_build_rows(points, tables):
    for i in range(points.shape[0]):
        comb_table_build(_pt(points, i), tables[i])


# ---- reference points and checking kernel outputs against them (edwards, fixed_base) ----------

REDUCED = (1 << 51) + (1 << 13)  # a limb at or above this is not a reduced output


def scaled_point(pt, lam):
    """The same point with Z multiplied by lam (a general projective representative)."""
    return tuple(c * lam % ref.P for c in pt)


def random_points(n, seed, torsion=True, scale=True):
    r = random.Random(seed)
    pts = []
    for i in range(n):
        pt = ref.base_mult(r.randrange(1, ref.L))
        if torsion and i % 3 == 1:
            pt = ref.point_add(pt, ref.SMALL_ORDER_POINTS[r.randrange(8)])
        if scale:
            pt = scaled_point(pt, r.randrange(1, ref.P))
        pts.append(pt)
    return pts


def compressed_rows(arr):
    enc = np.zeros((arr.shape[0], 32), dtype=np.uint8)
    ge_tobytes_rows(arr, enc)
    return [e.tobytes() for e in enc]


def check_points(out, want, what, inputs=None):
    """Kernel output rows == reference points: encodings, projective equality, invariants."""
    got_bytes = compressed_rows(out)
    for i, w in enumerate(want):
        ctx = f" inputs={inputs[i]!r}" if inputs is not None else ""
        assert got_bytes[i] == ref.compress(w), f"{what} row {i}: encoding differs{ctx}"
        X, Y, Z, T = point_ints(out[i])
        assert Z % ref.P != 0, f"{what} row {i}: Z = 0{ctx}"
        assert ref.point_eq((X, Y, Z, T), w), f"{what} row {i}: point differs{ctx}"
        assert (X * Y - Z * T) % ref.P == 0, f"{what} row {i}: XY != ZT{ctx}"
        # on the curve: -X^2 + Y^2 = Z^2 + d T^2 (projective, with T = XY/Z)
        assert (-X * X + Y * Y - Z * Z - ref.D * T * T) % ref.P == 0, f"{what} row {i}: off curve"
    big = int(out.max())
    assert big < REDUCED, f"{what}: output limb {big:#x} not reduced"
