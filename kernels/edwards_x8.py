"""Points of edwards25519 eight at a time: the formulas of kernels.edwards on x8 elements.

Same models and formulas as the serial module (extended, completed, cached, affine Niels;
dalek/ref10), with every field element an x8 element (kernels.field8: radix 2^51 with AVX-512
IFMA, else radix 2^25.5), so lane j of every coordinate belongs to point j. Branches become
lane masks: `ge8_select`, and the conditional negations used for signed digits.

Limb bounds: every coordinate a function returns is a field8 result, and the formulas feed a
multiplication only results, sums of two (`fe8_add`) or of three (`fe8_sum3`), which both
field8 implementations accept (each carries where its multiplier needs it).

Storage: points and tables stay in the serial layouts (extended uint64[n, 4, 5], affine
Niels uint64[n, 3, 5], Z = 1 for stored extended points) and are gathered lane by lane
(`ge8_gather_niels`, `ge8_gather_extended`) or written back (`ge8_scatter`).
"""
from numba import njit

from kernels.field8 import (
    D2_LIMBS, D_LIMBS, SQRTM1_LIMBS, fe8_add, fe8_carry, fe8_const, fe8_eq, fe8_from51,
    fe8_from_words, fe8_is_negative, fe8_is_zero, fe8_mul, fe8_neg, fe8_one, fe8_pow22523,
    fe8_select, fe8_sq, fe8_sub, fe8_sum3, fe8_to51, fe8_zero,
)
from kernels.lanes import gather, lane, splat

__all__ = [
    "ge8_identity", "ge8_dbl", "ge8_dbl_n", "ge8_madd", "ge8_add_cached", "ge8_to_cached",
    "ge8_cached_identity", "ge8_niels_identity", "ge8_niels_cneg", "ge8_cached_cneg",
    "ge8_select", "ge8_is_identity", "ge8_mul_by_cofactor", "ge8_sub", "ge8_decompress_zip215",
    "ge8_gather_niels", "ge8_gather_extended", "ge8_scatter",
]

@njit(cache=True, nogil=True, inline="always")
def ge8_identity():
    return (fe8_zero(), fe8_one(), fe8_one(), fe8_zero())


@njit(cache=True, nogil=True, inline="always")
def ge8_cached_identity():
    return (fe8_one(), fe8_one(), fe8_one(), fe8_zero())


@njit(cache=True, nogil=True, inline="always")
def ge8_niels_identity():
    return (fe8_one(), fe8_one(), fe8_zero())


@njit(cache=True, nogil=True)
def _completed_to_extended(cX, cY, cZ, cT):
    """(cX : cZ) x (cY : cT) -> extended (any input may be a sum of up to three elements)."""
    return (fe8_mul(cX, cT), fe8_mul(cY, cZ), fe8_mul(cZ, cT), fe8_mul(cY, cX))


@njit(cache=True, nogil=True)
def _dbl_completed(X, Y, Z):
    XX = fe8_sq(X)
    YY = fe8_sq(Y)
    ZZ = fe8_sq(Z)
    S = fe8_sq(fe8_add(X, Y))
    cY = fe8_add(YY, XX)
    cZ = fe8_sub(YY, XX)
    cX = fe8_sub(S, cY)
    cT = fe8_sub(fe8_add(ZZ, ZZ), cZ)
    return cX, cY, cZ, cT


@njit(cache=True, nogil=True)
def ge8_dbl(P):
    cX, cY, cZ, cT = _dbl_completed(P[0], P[1], P[2])
    return _completed_to_extended(cX, cY, cZ, cT)


@njit(cache=True, nogil=True)
def ge8_dbl_n(P, n):
    """[2^n]P for n >= 1; the intermediate doublings skip T (3 multiplications, not 4)."""
    X, Y, Z = P[0], P[1], P[2]
    for _ in range(n - 1):
        cX, cY, cZ, cT = _dbl_completed(X, Y, Z)
        X, Y, Z = fe8_mul(cX, cT), fe8_mul(cY, cZ), fe8_mul(cZ, cT)
    cX, cY, cZ, cT = _dbl_completed(X, Y, Z)
    return _completed_to_extended(cX, cY, cZ, cT)


@njit(cache=True, nogil=True)
def ge8_madd(P, N):
    """P + N for N = (y+x, y-x, 2dxy) in affine Niels form (7 multiplications)."""
    X, Y, Z, T = P
    A = fe8_mul(fe8_add(Y, X), N[0])
    B = fe8_mul(fe8_sub(Y, X), N[1])
    C = fe8_mul(T, N[2])
    return _completed_to_extended(fe8_sub(A, B), fe8_add(A, B), fe8_sum3(Z, Z, C),
                                  fe8_sub(fe8_add(Z, Z), C))


@njit(cache=True, nogil=True)
def ge8_add_cached(P, Q):
    """P + Q for Q = (Y+X, Y-X, Z, 2dT) in cached form (8 multiplications)."""
    X, Y, Z, T = P
    A = fe8_mul(fe8_add(Y, X), Q[0])
    B = fe8_mul(fe8_sub(Y, X), Q[1])
    C = fe8_mul(T, Q[3])
    D = fe8_mul(Z, Q[2])
    return _completed_to_extended(fe8_sub(A, B), fe8_add(A, B), fe8_sum3(D, D, C),
                                  fe8_sub(fe8_add(D, D), C))


@njit(cache=True, nogil=True)
def ge8_to_cached(P):
    X, Y, Z, T = P
    return (fe8_carry(fe8_add(Y, X)), fe8_sub(Y, X), Z, fe8_mul(T, fe8_const(D2_LIMBS)))


@njit(cache=True, nogil=True)
def ge8_sub(P, Q):
    """P - Q for two extended points."""
    Yp, Ym, Z, T2d = ge8_to_cached(Q)
    return ge8_add_cached(P, (Ym, Yp, Z, fe8_neg(T2d)))


@njit(cache=True, nogil=True)
def ge8_niels_cneg(mask, N):
    """-N in the lanes where mask is all-ones (swap y+x and y-x, negate 2dxy)."""
    return (fe8_select(mask, N[1], N[0]), fe8_select(mask, N[0], N[1]),
            fe8_select(mask, fe8_neg(N[2]), N[2]))


@njit(cache=True, nogil=True)
def ge8_cached_cneg(mask, Q):
    """-Q in the lanes where mask is all-ones."""
    return (fe8_select(mask, Q[1], Q[0]), fe8_select(mask, Q[0], Q[1]), Q[2],
            fe8_select(mask, fe8_neg(Q[3]), Q[3]))


@njit(cache=True, nogil=True, inline="always")
def ge8_select(mask, P, Q):
    return (fe8_select(mask, P[0], Q[0]), fe8_select(mask, P[1], Q[1]),
            fe8_select(mask, P[2], Q[2]), fe8_select(mask, P[3], Q[3]))


@njit(cache=True, nogil=True)
def ge8_is_identity(P):
    """All-ones lanes where P is the neutral element (X = 0 and Y = Z)."""
    return fe8_is_zero(P[0]) & fe8_eq(P[1], P[2])


@njit(cache=True, nogil=True)
def ge8_mul_by_cofactor(P):
    return ge8_dbl_n(P, 3)


@njit(cache=True, nogil=True)
def ge8_decompress_zip215(w0, w1, w2, w3):
    """(ok mask, P) for 32-byte encodings given as four little-endian 64-bit words per lane,
    by ZIP-215's rule (the serial `ge_decompress_zip215`, lane by lane): y may be
    non-canonical, x = 0 with the sign bit set decodes to x = 0. Lanes that do not decode
    hold the identity."""
    y = fe8_from_words(w0, w1, w2, w3)
    sign = w3 >> 63
    yy = fe8_sq(y)
    u = fe8_sub(yy, fe8_one())
    v = fe8_carry(fe8_add(fe8_mul(yy, fe8_const(D_LIMBS)), fe8_one()))
    v3 = fe8_mul(fe8_sq(v), v)
    uv7 = fe8_mul(fe8_mul(fe8_sq(v3), v), u)
    x = fe8_mul(fe8_mul(u, v3), fe8_pow22523(uv7))
    vxx = fe8_mul(v, fe8_sq(x))
    root = fe8_eq(vxx, u)
    flipped = fe8_eq(vxx, fe8_neg(u))
    x = fe8_select(root, x, fe8_mul(x, fe8_const(SQRTM1_LIMBS)))
    wrong_sign = fe8_is_negative(x) ^ (splat(0) - sign)
    x = fe8_select(wrong_sign, fe8_neg(x), x)
    ok = root | flipped
    y = fe8_carry(y)
    return ok, ge8_select(ok, (x, y, fe8_one(), fe8_mul(x, y)), ge8_identity())


@njit(cache=True, nogil=True, inline="always")
def _gather_fe(flat, base):
    """The 5-limb element at flat[base + 0..4] of each lane, in radix 2^25.5."""
    return fe8_from51(gather(flat, base), gather(flat, base + splat(1)),
                      gather(flat, base + splat(2)), gather(flat, base + splat(3)),
                      gather(flat, base + splat(4)))


@njit(cache=True, nogil=True)
def ge8_gather_niels(flat, entry):
    """Affine Niels entry `entry[j]` of a flattened uint64[..., 3, 5] table, lane by lane."""
    base = (entry << 4) - entry  # 15 words per entry
    return (_gather_fe(flat, base), _gather_fe(flat, base + splat(5)),
            _gather_fe(flat, base + splat(10)))


@njit(cache=True, nogil=True)
def ge8_gather_extended(flat, row):
    """Extended point `row[j]` of a flattened uint64[n, 4, 5] array, lane by lane."""
    base = (row << 4) + (row << 2)  # 20 words per point
    return (_gather_fe(flat, base), _gather_fe(flat, base + splat(5)),
            _gather_fe(flat, base + splat(10)), _gather_fe(flat, base + splat(15)))


@njit(cache=True, nogil=True)
def ge8_scatter(P, out, rows, n_lanes):
    """out[rows[j]] = lane j of P (extended, serial layout) for j < n_lanes."""
    for c in range(4):
        limbs = fe8_to51(P[c])
        for j in range(n_lanes):
            i = rows[j]
            for k in range(5):
                out[i, c, k] = lane(limbs[k], j)

