"""Arithmetic in GF(p), p = 2^255 - 19, radix 2^51.

An element is a 5-tuple of uint64 limbs (f0 + f1*2^51 + ... + f4*2^204). Tuples, not
arrays: Numba keeps them in registers, so a point operation allocates nothing.
Arrays of elements are stored as uint64[..., 5].

Limb bounds (checked at the edges in tests/test_field25519.py). "Reduced" means limbs
< 2^51 + 2^13, which is what `fe_mul`, `fe_sq` and `fe_carry` return.
- `fe_mul`, `fe_sq` accept limbs < 2^54 (the 19*g products stay below 2^59, five 2^113
  products below 2^115, and column 4, which has no *19 terms, below 2^110.4, so the final
  carry times 19 still fits in 64 bits).
- `fe_add` of two reduced elements gives < 2^52.01: a valid input of anything.
- `fe_sub` adds 8p before subtracting, so it accepts a subtrahend with limbs < 2^54 - 152,
  and carries: the result is reduced.
- `fe_sub_loose` adds 4p and does not carry: the subtrahend must have limbs < 2^53 - 76
  (e.g. reduced, or a sum of two reduced), and the result is < minuend + 2^53, so a
  reduced or summed minuend gives a valid multiplication input. Point formulas use it to
  skip carries whose result only feeds a multiplication.
Values are only canonical (< p) after `fe_canonical` / `fe_tobytes`.

The 64x64 -> 128 products go through `kernels.int128.mul64` only.
"""
import numpy as np
from numba import njit

from kernels.int128 import dot128, mul64

__all__ = [
    "fe_zero", "fe_one", "fe_add", "fe_sub", "fe_sub_loose", "fe_neg", "fe_carry", "fe_mul", "fe_sq",
    "fe_sq_n", "fe_mul_small", "fe_canonical", "fe_tobytes", "fe_frombytes_zip215",
    "fe_is_zero", "fe_is_negative", "fe_eq", "fe_invert", "fe_pow22523",
    "fe_from_int_limbs", "FE_D", "FE_D2", "FE_SQRTM1",
]

_U = np.uint64
MASK51 = np.uint64((1 << 51) - 1)
S51 = np.uint64(51)
S13 = np.uint64(13)
N19 = np.uint64(19)
ZERO = np.uint64(0)
ONE = np.uint64(1)

# 4p and 8p in radix 2^51: added before a subtraction so limbs never go negative.
P4_0 = np.uint64(4 * ((1 << 51) - 19))
P4_i = np.uint64(4 * ((1 << 51) - 1))
P8_0 = np.uint64(8 * ((1 << 51) - 19))
P8_i = np.uint64(8 * ((1 << 51) - 1))


def _limbs(v):
    return tuple(np.uint64((v >> (51 * i)) & ((1 << 51) - 1)) for i in range(5))


_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
FE_D = _limbs(_D)
FE_D2 = _limbs(2 * _D % _P)
FE_SQRTM1 = _limbs(pow(2, (_P - 1) // 4, _P))


def fe_from_int_limbs(v):
    """Python int -> limb tuple (for constants and tests; not for hot paths)."""
    return _limbs(v % _P)


@njit(cache=True, nogil=True)
def fe_zero():
    return (ZERO, ZERO, ZERO, ZERO, ZERO)


@njit(cache=True, nogil=True)
def fe_one():
    return (ONE, ZERO, ZERO, ZERO, ZERO)


@njit(cache=True, nogil=True)
def fe_carry(f):
    """Carry a loosely reduced element (limbs < 2^63) to limbs < 2^52."""
    f0, f1, f2, f3, f4 = f
    f1 += f0 >> S51
    f0 &= MASK51
    f2 += f1 >> S51
    f1 &= MASK51
    f3 += f2 >> S51
    f2 &= MASK51
    f4 += f3 >> S51
    f3 &= MASK51
    f0 += (f4 >> S51) * N19
    f4 &= MASK51
    f1 += f0 >> S51
    f0 &= MASK51
    return (f0, f1, f2, f3, f4)


@njit(cache=True, nogil=True)
def fe_add(f, g):
    return (f[0] + g[0], f[1] + g[1], f[2] + g[2], f[3] + g[3], f[4] + g[4])


@njit(cache=True, nogil=True)
def fe_sub(f, g):
    return fe_carry((f[0] + P8_0 - g[0], f[1] + P8_i - g[1], f[2] + P8_i - g[2],
                     f[3] + P8_i - g[3], f[4] + P8_i - g[4]))


@njit(cache=True, nogil=True)
def fe_sub_loose(f, g):
    """f - g without the carry (see the bounds in the module docstring)."""
    return (f[0] + P4_0 - g[0], f[1] + P4_i - g[1], f[2] + P4_i - g[2],
            f[3] + P4_i - g[3], f[4] + P4_i - g[4])


@njit(cache=True, nogil=True)
def fe_neg(f):
    return fe_sub(fe_zero(), f)


@njit(cache=True, nogil=True)
def _reduce_wide(r0, r1, r2, r3, r4):
    """Five 128-bit column sums -> an element with limbs < 2^52."""
    c = (r0[0] >> S51) | (r0[1] << S13)
    h0 = r0[0] & MASK51
    lo = r1[0] + c
    r1 = (lo, r1[1] + (ONE if lo < c else ZERO))
    c = (r1[0] >> S51) | (r1[1] << S13)
    h1 = r1[0] & MASK51
    lo = r2[0] + c
    r2 = (lo, r2[1] + (ONE if lo < c else ZERO))
    c = (r2[0] >> S51) | (r2[1] << S13)
    h2 = r2[0] & MASK51
    lo = r3[0] + c
    r3 = (lo, r3[1] + (ONE if lo < c else ZERO))
    c = (r3[0] >> S51) | (r3[1] << S13)
    h3 = r3[0] & MASK51
    lo = r4[0] + c
    r4 = (lo, r4[1] + (ONE if lo < c else ZERO))
    c = (r4[0] >> S51) | (r4[1] << S13)
    h4 = r4[0] & MASK51
    # Column 4 has no *19 terms: r4 < 5 * 2^108 for limbs < 2^54, so c < 2^59.4 and
    # c*19 fits in 64 bits.
    h0 += c * N19
    h1 += h0 >> S51
    h0 &= MASK51
    return (h0, h1, h2, h3, h4)


@njit(cache=True, nogil=True)
def fe_mul(f, g):
    """f*g mod p (schoolbook, the 2^255 wrap folded in as *19; each column one dot128)."""
    f0, f1, f2, f3, f4 = f
    g0, g1, g2, g3, g4 = g
    g1_19 = g1 * N19
    g2_19 = g2 * N19
    g3_19 = g3 * N19
    g4_19 = g4 * N19
    return _reduce_wide(dot128(f, (g0, g4_19, g3_19, g2_19, g1_19)),
                        dot128(f, (g1, g0, g4_19, g3_19, g2_19)),
                        dot128(f, (g2, g1, g0, g4_19, g3_19)),
                        dot128(f, (g3, g2, g1, g0, g4_19)),
                        dot128(f, (g4, g3, g2, g1, g0)))


@njit(cache=True, nogil=True)
def fe_sq(f):
    """f^2 mod p: 15 products instead of 25 (cross terms doubled)."""
    f0, f1, f2, f3, f4 = f
    f0_2 = f0 + f0
    f1_2 = f1 + f1
    f1_38 = f1 * np.uint64(38)
    f2_38 = f2 * np.uint64(38)
    f3_38 = f3 * np.uint64(38)
    f3_19 = f3 * N19
    f4_19 = f4 * N19
    return _reduce_wide(dot128((f0, f1_38, f2_38), (f0, f4, f3)),
                        dot128((f0_2, f2_38, f3_19), (f1, f4, f3)),
                        dot128((f0_2, f1, f3_38), (f2, f1, f4)),
                        dot128((f0_2, f1_2, f4_19), (f3, f2, f4)),
                        dot128((f0_2, f1_2, f2), (f4, f3, f2)))


@njit(cache=True, nogil=True)
def fe_sq_n(f, n):
    for _ in range(n):
        f = fe_sq(f)
    return f


@njit(cache=True, nogil=True)
def fe_mul_small(f, k):
    """f*k for a small constant k < 2^13."""
    r0 = mul64(f[0], k)
    r1 = mul64(f[1], k)
    r2 = mul64(f[2], k)
    r3 = mul64(f[3], k)
    r4 = mul64(f[4], k)
    return _reduce_wide(r0, r1, r2, r3, r4)


@njit(cache=True, nogil=True)
def fe_canonical(f):
    """The unique representative < p (limbs < 2^51)."""
    h = fe_carry(fe_carry(f))
    # h < 2^255 + small; add 19 and look at bit 255 to learn whether h >= p.
    q = (h[0] + N19) >> S51
    q = (h[1] + q) >> S51
    q = (h[2] + q) >> S51
    q = (h[3] + q) >> S51
    q = (h[4] + q) >> S51
    h0 = h[0] + N19 * q
    h1 = h[1] + (h0 >> S51)
    h0 &= MASK51
    h2 = h[2] + (h1 >> S51)
    h1 &= MASK51
    h3 = h[3] + (h2 >> S51)
    h2 &= MASK51
    h4 = h[4] + (h3 >> S51)
    h3 &= MASK51
    h4 &= MASK51
    return (h0, h1, h2, h3, h4)


@njit(cache=True, nogil=True)
def fe_tobytes(f, out):
    """Canonical 32-byte little-endian encoding of f into out[0:32]."""
    h = fe_canonical(f)
    w0 = h[0] | (h[1] << S51)
    w1 = (h[1] >> np.uint64(13)) | (h[2] << np.uint64(38))
    w2 = (h[2] >> np.uint64(26)) | (h[3] << np.uint64(25))
    w3 = (h[3] >> np.uint64(39)) | (h[4] << np.uint64(12))
    for i in range(8):
        sh = np.uint64(8 * i)
        out[i] = np.uint8((w0 >> sh) & np.uint64(0xFF))
        out[8 + i] = np.uint8((w1 >> sh) & np.uint64(0xFF))
        out[16 + i] = np.uint8((w2 >> sh) & np.uint64(0xFF))
        out[24 + i] = np.uint8((w3 >> sh) & np.uint64(0xFF))


@njit(cache=True, nogil=True)
def _load64(b, off):
    w = np.uint64(0)
    for i in range(8):
        w |= np.uint64(b[off + i]) << np.uint64(8 * i)
    return w


@njit(cache=True, nogil=True)
def fe_frombytes_zip215(b):
    """Low 255 bits of b[0:32] as an element; y >= p is accepted (ZIP-215), not reduced."""
    w0 = _load64(b, 0)
    w1 = _load64(b, 8)
    w2 = _load64(b, 16)
    w3 = _load64(b, 24) & np.uint64(0x7FFFFFFFFFFFFFFF)
    return (w0 & MASK51,
            ((w0 >> S51) | (w1 << S13)) & MASK51,
            ((w1 >> np.uint64(38)) | (w2 << np.uint64(26))) & MASK51,
            ((w2 >> np.uint64(25)) | (w3 << np.uint64(39))) & MASK51,
            w3 >> np.uint64(12))


@njit(cache=True, nogil=True)
def fe_is_zero(f):
    h = fe_canonical(f)
    return (h[0] | h[1] | h[2] | h[3] | h[4]) == ZERO


@njit(cache=True, nogil=True)
def fe_eq(f, g):
    return fe_is_zero(fe_sub(f, g))


@njit(cache=True, nogil=True)
def fe_is_negative(f):
    """The sign of f: the low bit of its canonical encoding."""
    return (fe_canonical(f)[0] & ONE) == ONE


@njit(cache=True, nogil=True)
def _pow_2_250_minus_1(z):
    """z^(2^250 - 1) and z^11 (the shared prefix of the ref10 addition chains)."""
    z2 = fe_sq(z)
    z9 = fe_mul(fe_sq_n(z2, 2), z)
    z11 = fe_mul(z9, z2)
    z_5_0 = fe_mul(fe_sq(z11), z9)
    z_10_0 = fe_mul(fe_sq_n(z_5_0, 5), z_5_0)
    z_20_0 = fe_mul(fe_sq_n(z_10_0, 10), z_10_0)
    z_40_0 = fe_mul(fe_sq_n(z_20_0, 20), z_20_0)
    z_50_0 = fe_mul(fe_sq_n(z_40_0, 10), z_10_0)
    z_100_0 = fe_mul(fe_sq_n(z_50_0, 50), z_50_0)
    z_200_0 = fe_mul(fe_sq_n(z_100_0, 100), z_100_0)
    z_250_0 = fe_mul(fe_sq_n(z_200_0, 50), z_50_0)
    return z_250_0, z11


@njit(cache=True, nogil=True)
def fe_invert(z):
    """z^(p-2) = 1/z (0 maps to 0)."""
    z_250_0, z11 = _pow_2_250_minus_1(z)
    return fe_mul(fe_sq_n(z_250_0, 5), z11)


@njit(cache=True, nogil=True)
def fe_pow22523(z):
    """z^((p-5)/8) = z^(2^252 - 3), the core of the square root in decompression."""
    z_250_0, _ = _pow_2_250_minus_1(z)
    return fe_mul(fe_sq_n(z_250_0, 2), z)
