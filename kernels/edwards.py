"""Points of edwards25519 (-x^2 + y^2 = 1 + d x^2 y^2) as tuples of field elements.

Models (the curve25519-dalek / ref10 set):
- extended   (X, Y, Z, T):      x = X/Z, y = Y/Z, x*y = T/Z   -- the working form
- completed  (X, Y, Z, T):      x = X/Z, y = Y/T              -- an addition's raw result
- cached     (Y+X, Y-X, Z, 2dT)                              -- an addend, 8M per add
- affine Niels (y+x, y-x, 2dxy)                               -- an addend with Z = 1, 7M

Stored arrays: extended points as uint64[n, 4, 5], affine Niels as uint64[n, 3, 5].

Decompression follows ZIP-215: the y encoding may be non-canonical (y >= p is used as is,
i.e. reduced mod p), and x = 0 with the sign bit set decodes to x = 0.
"""
import numpy as np
from numba import njit

from kernels.field25519 import (
    FE_D, FE_D2, FE_SQRTM1, fe_add, fe_carry, fe_eq, fe_frombytes_zip215, fe_invert,
    fe_is_negative, fe_is_zero, fe_mul, fe_neg, fe_one, fe_pow22523, fe_sq, fe_sub,
    fe_sub_loose,
    fe_tobytes, fe_zero,
)

__all__ = [
    "ge_identity", "ge_decompress_zip215", "ge_add", "ge_sub", "ge_add_cached",
    "ge_sub_cached", "ge_madd", "ge_msub", "ge_dbl", "ge_dbl_n", "ge_neg", "ge_to_cached",
    "ge_to_affine_niels", "ge_mul_by_cofactor", "ge_is_identity", "ge_tobytes",
    "ge_store", "ge_load", "niels_load", "niels_neg", "niels_rows_int",
    "affine_add_int", "BASE_XY", "BASE_NIELS_ODD",
]


@njit(cache=True, nogil=True)
def ge_identity():
    return (fe_zero(), fe_one(), fe_one(), fe_zero())


@njit(cache=True, nogil=True)
def _completed_to_extended(c):
    X, Y, Z, T = c
    return (fe_mul(X, T), fe_mul(Y, Z), fe_mul(Z, T), fe_mul(X, Y))


@njit(cache=True, nogil=True)
def _completed_to_projective(c):
    """Drop T: a doubling that feeds another doubling needs only (X, Y, Z) -- 3M not 4M."""
    X, Y, Z, T = c
    return (fe_mul(X, T), fe_mul(Y, Z), fe_mul(Z, T))


@njit(cache=True, nogil=True)
def _dbl_completed(X, Y, Z):
    """2P from projective (X, Y, Z): 4S, into completed form (limbs < 2^54)."""
    XX = fe_sq(X)
    YY = fe_sq(Y)
    ZZ = fe_sq(Z)
    ZZ2 = fe_add(ZZ, ZZ)
    XpY2 = fe_sq(fe_add(X, Y))
    cY = fe_add(YY, XX)
    cZ = fe_sub(YY, XX)
    cX = fe_sub_loose(XpY2, cY)
    cT = fe_sub_loose(ZZ2, cZ)
    return (cX, cY, cZ, cT)


@njit(cache=True, nogil=True)
def ge_dbl(P):
    return _completed_to_extended(_dbl_completed(P[0], P[1], P[2]))


@njit(cache=True, nogil=True)
def ge_dbl_n(P, n):
    """[2^n]P for n >= 1, with the intermediate doublings in projective form."""
    X, Y, Z = P[0], P[1], P[2]
    for _ in range(n - 1):
        X, Y, Z = _completed_to_projective(_dbl_completed(X, Y, Z))
    return _completed_to_extended(_dbl_completed(X, Y, Z))


@njit(cache=True, nogil=True)
def ge_to_cached(P):
    X, Y, Z, T = P
    return (fe_add(Y, X), fe_sub_loose(Y, X), Z, fe_mul(T, FE_D2))


@njit(cache=True, nogil=True)
def ge_add_cached(P, Q):
    X, Y, Z, T = P
    A = fe_mul(fe_add(Y, X), Q[0])
    B = fe_mul(fe_sub_loose(Y, X), Q[1])
    C = fe_mul(T, Q[3])
    D = fe_mul(Z, Q[2])
    D2 = fe_add(D, D)
    return _completed_to_extended((fe_sub_loose(A, B), fe_add(A, B), fe_add(D2, C), fe_sub_loose(D2, C)))


@njit(cache=True, nogil=True)
def ge_sub_cached(P, Q):
    X, Y, Z, T = P
    A = fe_mul(fe_add(Y, X), Q[1])
    B = fe_mul(fe_sub_loose(Y, X), Q[0])
    C = fe_mul(T, Q[3])
    D = fe_mul(Z, Q[2])
    D2 = fe_add(D, D)
    return _completed_to_extended((fe_sub_loose(A, B), fe_add(A, B), fe_sub_loose(D2, C), fe_add(D2, C)))


@njit(cache=True, nogil=True)
def ge_madd(P, N):
    """P + N for N in affine Niels form (7M)."""
    X, Y, Z, T = P
    A = fe_mul(fe_add(Y, X), N[0])
    B = fe_mul(fe_sub_loose(Y, X), N[1])
    C = fe_mul(T, N[2])
    Z2 = fe_add(Z, Z)
    return _completed_to_extended((fe_sub_loose(A, B), fe_add(A, B), fe_add(Z2, C), fe_sub_loose(Z2, C)))


@njit(cache=True, nogil=True)
def ge_msub(P, N):
    X, Y, Z, T = P
    A = fe_mul(fe_add(Y, X), N[1])
    B = fe_mul(fe_sub_loose(Y, X), N[0])
    C = fe_mul(T, N[2])
    Z2 = fe_add(Z, Z)
    return _completed_to_extended((fe_sub_loose(A, B), fe_add(A, B), fe_sub_loose(Z2, C), fe_add(Z2, C)))


@njit(cache=True, nogil=True)
def ge_add(P, Q):
    return ge_add_cached(P, ge_to_cached(Q))


@njit(cache=True, nogil=True)
def ge_sub(P, Q):
    return ge_sub_cached(P, ge_to_cached(Q))


@njit(cache=True, nogil=True)
def ge_neg(P):
    return (fe_neg(P[0]), P[1], P[2], fe_neg(P[3]))


@njit(cache=True, nogil=True)
def niels_neg(N):
    """-(x, y) in affine Niels form: swap y+x / y-x and negate 2dxy."""
    return (N[1], N[0], fe_neg(N[2]))


@njit(cache=True, nogil=True)
def ge_mul_by_cofactor(P):
    return ge_dbl_n(P, 3)


@njit(cache=True, nogil=True)
def ge_is_identity(P):
    return fe_is_zero(P[0]) and fe_eq(P[1], P[2])


@njit(cache=True, nogil=True)
def ge_decompress_zip215(b):
    """(ok, P) for the 32-byte encoding b under ZIP-215 rules.

    x = u v^3 (u v^7)^((p-5)/8) with u = y^2 - 1, v = d y^2 + 1; x is fixed up by sqrt(-1)
    when v x^2 = -u, and the encoding is undecodable when v x^2 is neither u nor -u.
    Negating x = 0 leaves 0, so a set sign bit with x = 0 needs no special case.
    """
    y = fe_frombytes_zip215(b)
    sign = (b[31] >> np.uint8(7)) == np.uint8(1)
    yy = fe_sq(y)
    u = fe_sub(yy, fe_one())
    v = fe_carry(fe_add(fe_mul(yy, FE_D), fe_one()))
    v3 = fe_mul(fe_sq(v), v)
    uv7 = fe_mul(fe_mul(fe_sq(v3), v), u)
    x = fe_mul(fe_mul(u, v3), fe_pow22523(uv7))
    vxx = fe_mul(v, fe_sq(x))
    if not fe_eq(vxx, u):
        if fe_eq(vxx, fe_neg(u)):
            x = fe_mul(x, FE_SQRTM1)
        else:
            return False, ge_identity()
    if fe_is_negative(x) != sign:
        x = fe_neg(x)
    y = fe_carry(y)
    return True, (x, y, fe_one(), fe_mul(x, y))


@njit(cache=True, nogil=True)
def ge_to_affine_niels(P):
    """Affine Niels form of P (one inversion unless Z is already 1)."""
    zinv = fe_invert(P[2])
    x = fe_mul(P[0], zinv)
    y = fe_mul(P[1], zinv)
    return (fe_carry(fe_add(y, x)), fe_sub(y, x), fe_mul(fe_mul(x, y), FE_D2))


@njit(cache=True, nogil=True)
def ge_tobytes(P, out):
    zinv = fe_invert(P[2])
    x = fe_mul(P[0], zinv)
    y = fe_mul(P[1], zinv)
    fe_tobytes(y, out)
    if fe_is_negative(x):
        out[31] |= np.uint8(0x80)


@njit(cache=True, nogil=True)
def _fe_at(arr, i, j):
    return (arr[i, j, 0], arr[i, j, 1], arr[i, j, 2], arr[i, j, 3], arr[i, j, 4])


@njit(cache=True, nogil=True)
def _fe_put(arr, i, j, f):
    for k in range(5):
        arr[i, j, k] = f[k]


@njit(cache=True, nogil=True)
def ge_load(arr, i):
    return (_fe_at(arr, i, 0), _fe_at(arr, i, 1), _fe_at(arr, i, 2), _fe_at(arr, i, 3))


@njit(cache=True, nogil=True)
def ge_store(arr, i, P):
    for j in range(4):
        _fe_put(arr, i, j, P[j])


@njit(cache=True, nogil=True)
def niels_load(arr, i):
    return (_fe_at(arr, i, 0), _fe_at(arr, i, 1), _fe_at(arr, i, 2))


# --- constants built once at import with plain Python ints -----------------------------

_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_BY = 4 * pow(5, _P - 2, _P) % _P


def affine_add_int(p1, p2):
    """(x, y) + (x, y) with Python ints: for building constant tables at import only."""
    (x1, y1), (x2, y2) = p1, p2
    t = _D * x1 * x2 * y1 * y2 % _P
    return ((x1 * y2 + x2 * y1) * pow(1 + t, _P - 2, _P) % _P,
            (y1 * y2 + x1 * x2) * pow(1 - t, _P - 2, _P) % _P)


def _recover_x(y):
    xx = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(xx, (_P + 3) // 8, _P)
    if (x * x - xx) % _P:
        x = x * pow(2, (_P - 1) // 4, _P) % _P
    return _P - x if x & 1 else x


def niels_rows_int(points):
    """Affine Niels rows (n, 3, 5) of Python-int points (x, y): constant tables only."""
    mask = (1 << 51) - 1
    limbs = [(v >> (51 * k)) & mask
             for x, y in points
             for v in ((y + x) % _P, (y - x) % _P, 2 * _D * x * y % _P)
             for k in range(5)]
    return np.array(limbs, dtype=np.uint64).reshape(len(points), 3, 5)


# The base point B as Python ints (x, y).
BASE_XY = (_recover_x(_BY), _BY)


def _base_odd_multiples(count):
    twice = affine_add_int(BASE_XY, BASE_XY)
    points = [BASE_XY]
    for _ in range(count - 1):
        points.append(affine_add_int(points[-1], twice))
    return points


# B, 3B, 5B, ..., 127B: the table of the width-8 wNAF of the base-point scalar.
BASE_NIELS_ODD = niels_rows_int(_base_odd_multiples(64))
