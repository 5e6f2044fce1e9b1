"""Arithmetic in GF(p), p = 2^255 - 19, on eight elements at once (radix 2^25.5).

An x8 element is a 10-tuple of `kernels.lanes.U64x8`: limb i of lane j is the i-th limb of
the j-th element. Limbs alternate 26 and 25 bits (ref10's layout): limb 2m sits at bit 51m,
limb 2m+1 at bit 51m + 26. That is the 51-bit radix of kernels.field25519 with every limb
split in two, so stored points and tables (uint64[..., 5]) convert with one mask and one
shift per limb (`fe8_from51`, `fe8_to51`).

Why 2^25.5 here and 2^51 in the serial code: a vector multiply gives 32x32 -> 64-bit
products (`vpmuludq`, in every x86-64 vector instruction set), so the limbs must fit in 32
bits; 100 such products for eight elements cost about the 25 64x64 -> 128 products of one
serial element. Measured here: 7.9 ns per element against 27-33 ns serial.

Limb bounds. "Tight" means limbs < 2^26 (even) and < 2^25 + 2^17 (odd), which is what
`fe8_mul`, `fe8_sq`, `fe8_sub` and `fe8_carry` return.
- `fe8_mul(f, g)` takes limbs < 3 * 2^26 on both sides (a sum of three tight elements,
  `fe8_sum3`): 2f and 19g stay below 2^32 for the 32-bit multiplier, and each column is at
  most 10 terms of 38 * (3 * 2^26)^2 < 2^63.74. (Or f < 2^28 with g < 2^27.)
- `fe8_sq(f)` takes limbs < 2^27 (a sum of two tight elements).
- `fe8_add` and `fe8_sum3` do not carry: a sum of up to three tight elements is a valid
  multiplication input (kernels.field25519x8_ifma, whose multiplier reads 52 bits, carries
  instead; kernels.field8 picks one of the two and the point formulas hold for both).
- `fe8_sub(f, g)` adds 4p before subtracting, so g may have limbs up to 4p's (>= 2^27 - 4),
  and carries: the result is tight.
Values are canonical (< p) only after `fe8_canonical`.
"""
import numpy as np
from numba import njit

from kernels.lanes import LANES, lanes_eq, lanes_select, mul32, splat, zero8

__all__ = [
    "fe8_zero", "fe8_one", "fe8_const", "fe8_add", "fe8_sub", "fe8_neg", "fe8_carry",
    "fe8_mul", "fe8_sq", "fe8_sq_n", "fe8_canonical", "fe8_is_zero", "fe8_eq",
    "fe8_is_negative", "fe8_select", "fe8_invert", "fe8_pow22523", "fe8_from51", "fe8_to51",
    "fe8_from_words", "fe8_sum3", "int_to_limbs", "D_LIMBS", "D2_LIMBS", "SQRTM1_LIMBS", "LIMBS",
]

LIMBS = 10

_M26 = np.uint64((1 << 26) - 1)
_M25 = np.uint64((1 << 25) - 1)
_WIDTHS = (26, 25, 26, 25, 26, 25, 26, 25, 26, 25)
_P = 2**255 - 19


def int_to_limbs(v):
    """A Python int mod p as ten radix-2^25.5 limbs (constants and tests)."""
    v %= _P
    out, shift = [], 0
    for w in _WIDTHS:
        out.append((v >> shift) & ((1 << w) - 1))
        shift += w
    return tuple(out)


# The curve constants d, 2d and sqrt(-1) as limb tuples (for `fe8_const`).
_D_INT = (-121665 * pow(121666, _P - 2, _P)) % _P
D_LIMBS = int_to_limbs(_D_INT)
D2_LIMBS = int_to_limbs(2 * _D_INT)
SQRTM1_LIMBS = int_to_limbs(pow(2, (_P - 1) // 4, _P))

# 4p in radix 2^25.5: added before a subtraction so that no limb goes negative.
_4P = tuple(np.uint64(4 * (((1 << w) - 1) - (18 if i == 0 else 0))) for i, w in enumerate(_WIDTHS))


@njit(cache=True, nogil=True, inline="always")
def fe8_zero():
    z = zero8()
    return (z, z, z, z, z, z, z, z, z, z)


@njit(cache=True, nogil=True, inline="always")
def fe8_one():
    z = zero8()
    return (splat(1), z, z, z, z, z, z, z, z, z)


@njit(cache=True, nogil=True, inline="always")
def fe8_const(c):
    """A constant given as a 10-tuple of ints (`int_to_limbs`) in every lane."""
    return (splat(c[0]), splat(c[1]), splat(c[2]), splat(c[3]), splat(c[4]),
            splat(c[5]), splat(c[6]), splat(c[7]), splat(c[8]), splat(c[9]))


@njit(cache=True, nogil=True, inline="always")
def fe8_add(f, g):
    return (f[0] + g[0], f[1] + g[1], f[2] + g[2], f[3] + g[3], f[4] + g[4],
            f[5] + g[5], f[6] + g[6], f[7] + g[7], f[8] + g[8], f[9] + g[9])


@njit(cache=True, nogil=True, inline="always")
def fe8_sum3(f, g, h):
    """f + g + h without a carry: three tight elements make limbs < 3 * 2^26, which either
    side of `fe8_mul` takes."""
    return fe8_add(fe8_add(f, g), h)


@njit(cache=True, nogil=True)
def fe8_carry(h):
    """Carry limbs < 2^63 to tight form (ref10's interleaved carry order: two chains at
    once, so the dependency chain is half as long)."""
    h0, h1, h2, h3, h4, h5, h6, h7, h8, h9 = h
    m26 = splat(_M26)
    m25 = splat(_M25)
    c = h0 >> 26
    h1 = h1 + c
    h0 = h0 & m26
    c = h4 >> 26
    h5 = h5 + c
    h4 = h4 & m26
    c = h1 >> 25
    h2 = h2 + c
    h1 = h1 & m25
    c = h5 >> 25
    h6 = h6 + c
    h5 = h5 & m25
    c = h2 >> 26
    h3 = h3 + c
    h2 = h2 & m26
    c = h6 >> 26
    h7 = h7 + c
    h6 = h6 & m26
    c = h3 >> 25
    h4 = h4 + c
    h3 = h3 & m25
    c = h7 >> 25
    h8 = h8 + c
    h7 = h7 & m25
    c = h4 >> 26
    h5 = h5 + c
    h4 = h4 & m26
    c = h8 >> 26
    h9 = h9 + c
    h8 = h8 & m26
    c = h9 >> 25
    h0 = h0 + (c << 4) + (c << 1) + c  # 19c: c may exceed the 32-bit multiplier
    h9 = h9 & m25
    c = h0 >> 26
    h1 = h1 + c
    h0 = h0 & m26
    return (h0, h1, h2, h3, h4, h5, h6, h7, h8, h9)


@njit(cache=True, nogil=True, inline="always")
def fe8_sub(f, g):
    return fe8_carry((f[0] + splat(_4P[0]) - g[0], f[1] + splat(_4P[1]) - g[1],
                      f[2] + splat(_4P[2]) - g[2], f[3] + splat(_4P[3]) - g[3],
                      f[4] + splat(_4P[4]) - g[4], f[5] + splat(_4P[5]) - g[5],
                      f[6] + splat(_4P[6]) - g[6], f[7] + splat(_4P[7]) - g[7],
                      f[8] + splat(_4P[8]) - g[8], f[9] + splat(_4P[9]) - g[9]))


@njit(cache=True, nogil=True, inline="always")
def fe8_neg(f):
    return fe8_sub(fe8_zero(), f)


@njit(cache=True, nogil=True)
def fe8_mul(f, g):
    """f*g mod p, lane by lane (schoolbook; odd*odd limb products count twice because
    their positions sum to one more than the limb layout; the 2^255 wrap is *19)."""
    f0, f1, f2, f3, f4, f5, f6, f7, f8, f9 = f
    g0, g1, g2, g3, g4, g5, g6, g7, g8, g9 = g
    n19 = splat(19)
    g1_19 = mul32(g1, n19)
    g2_19 = mul32(g2, n19)
    g3_19 = mul32(g3, n19)
    g4_19 = mul32(g4, n19)
    g5_19 = mul32(g5, n19)
    g6_19 = mul32(g6, n19)
    g7_19 = mul32(g7, n19)
    g8_19 = mul32(g8, n19)
    g9_19 = mul32(g9, n19)
    f1_2 = f1 + f1
    f3_2 = f3 + f3
    f5_2 = f5 + f5
    f7_2 = f7 + f7
    f9_2 = f9 + f9
    h0 = (((mul32(f0, g0) + mul32(f1_2, g9_19)) + (mul32(f2, g8_19) + mul32(f3_2, g7_19)))
          + ((mul32(f4, g6_19) + mul32(f5_2, g5_19)) + (mul32(f6, g4_19) + mul32(f7_2, g3_19)))
          + (mul32(f8, g2_19) + mul32(f9_2, g1_19)))
    h1 = (((mul32(f0, g1) + mul32(f1, g0)) + (mul32(f2, g9_19) + mul32(f3, g8_19)))
          + ((mul32(f4, g7_19) + mul32(f5, g6_19)) + (mul32(f6, g5_19) + mul32(f7, g4_19)))
          + (mul32(f8, g3_19) + mul32(f9, g2_19)))
    h2 = (((mul32(f0, g2) + mul32(f1_2, g1)) + (mul32(f2, g0) + mul32(f3_2, g9_19)))
          + ((mul32(f4, g8_19) + mul32(f5_2, g7_19)) + (mul32(f6, g6_19) + mul32(f7_2, g5_19)))
          + (mul32(f8, g4_19) + mul32(f9_2, g3_19)))
    h3 = (((mul32(f0, g3) + mul32(f1, g2)) + (mul32(f2, g1) + mul32(f3, g0)))
          + ((mul32(f4, g9_19) + mul32(f5, g8_19)) + (mul32(f6, g7_19) + mul32(f7, g6_19)))
          + (mul32(f8, g5_19) + mul32(f9, g4_19)))
    h4 = (((mul32(f0, g4) + mul32(f1_2, g3)) + (mul32(f2, g2) + mul32(f3_2, g1)))
          + ((mul32(f4, g0) + mul32(f5_2, g9_19)) + (mul32(f6, g8_19) + mul32(f7_2, g7_19)))
          + (mul32(f8, g6_19) + mul32(f9_2, g5_19)))
    h5 = (((mul32(f0, g5) + mul32(f1, g4)) + (mul32(f2, g3) + mul32(f3, g2)))
          + ((mul32(f4, g1) + mul32(f5, g0)) + (mul32(f6, g9_19) + mul32(f7, g8_19)))
          + (mul32(f8, g7_19) + mul32(f9, g6_19)))
    h6 = (((mul32(f0, g6) + mul32(f1_2, g5)) + (mul32(f2, g4) + mul32(f3_2, g3)))
          + ((mul32(f4, g2) + mul32(f5_2, g1)) + (mul32(f6, g0) + mul32(f7_2, g9_19)))
          + (mul32(f8, g8_19) + mul32(f9_2, g7_19)))
    h7 = (((mul32(f0, g7) + mul32(f1, g6)) + (mul32(f2, g5) + mul32(f3, g4)))
          + ((mul32(f4, g3) + mul32(f5, g2)) + (mul32(f6, g1) + mul32(f7, g0)))
          + (mul32(f8, g9_19) + mul32(f9, g8_19)))
    h8 = (((mul32(f0, g8) + mul32(f1_2, g7)) + (mul32(f2, g6) + mul32(f3_2, g5)))
          + ((mul32(f4, g4) + mul32(f5_2, g3)) + (mul32(f6, g2) + mul32(f7_2, g1)))
          + (mul32(f8, g0) + mul32(f9_2, g9_19)))
    h9 = (((mul32(f0, g9) + mul32(f1, g8)) + (mul32(f2, g7) + mul32(f3, g6)))
          + ((mul32(f4, g5) + mul32(f5, g4)) + (mul32(f6, g3) + mul32(f7, g2)))
          + (mul32(f8, g1) + mul32(f9, g0)))
    return fe8_carry((h0, h1, h2, h3, h4, h5, h6, h7, h8, h9))


@njit(cache=True, nogil=True)
def fe8_sq(f):
    """f^2 mod p: 55 products instead of 100 (ref10's fe_sq, cross terms doubled). The
    factors 2, 4 stay on one side and 19 on the other, so limbs < 2^27 keep both sides of
    every product below 2^32 (ref10's 38f would not)."""
    f0, f1, f2, f3, f4, f5, f6, f7, f8, f9 = f
    n19 = splat(19)
    d0 = f0 + f0
    d1 = f1 + f1
    d2 = f2 + f2
    d3 = f3 + f3
    d4 = f4 + f4
    d5 = f5 + f5
    d6 = f6 + f6
    d7 = f7 + f7
    d8 = f8 + f8
    d9 = f9 + f9
    q1 = d1 + d1
    q3 = d3 + d3
    q5 = d5 + d5
    q7 = d7 + d7
    t5 = mul32(f5, n19)
    t6 = mul32(f6, n19)
    t7 = mul32(f7, n19)
    t8 = mul32(f8, n19)
    t9 = mul32(f9, n19)
    h0 = (mul32(f0, f0) + mul32(q1, t9) + mul32(d2, t8) + mul32(q3, t7) + mul32(d4, t6)
          + mul32(d5, t5))
    h1 = mul32(d0, f1) + mul32(d2, t9) + mul32(d3, t8) + mul32(d4, t7) + mul32(d5, t6)
    h2 = (mul32(d0, f2) + mul32(d1, f1) + mul32(q3, t9) + mul32(d4, t8) + mul32(q5, t7)
          + mul32(f6, t6))
    h3 = mul32(d0, f3) + mul32(d1, f2) + mul32(d4, t9) + mul32(d5, t8) + mul32(d6, t7)
    h4 = (mul32(d0, f4) + mul32(q1, f3) + mul32(f2, f2) + mul32(q5, t9) + mul32(d6, t8)
          + mul32(d7, t7))
    h5 = mul32(d0, f5) + mul32(d1, f4) + mul32(d2, f3) + mul32(d6, t9) + mul32(d7, t8)
    h6 = (mul32(d0, f6) + mul32(q1, f5) + mul32(d2, f4) + mul32(d3, f3) + mul32(q7, t9)
          + mul32(f8, t8))
    h7 = mul32(d0, f7) + mul32(d1, f6) + mul32(d2, f5) + mul32(d3, f4) + mul32(d8, t9)
    h8 = (mul32(d0, f8) + mul32(q1, f7) + mul32(d2, f6) + mul32(q3, f5) + mul32(f4, f4)
          + mul32(d9, t9))
    h9 = mul32(d0, f9) + mul32(d1, f8) + mul32(d2, f7) + mul32(d3, f6) + mul32(d4, f5)
    return fe8_carry((h0, h1, h2, h3, h4, h5, h6, h7, h8, h9))


@njit(cache=True, nogil=True)
def fe8_sq_n(f, n):
    for _ in range(n):
        f = fe8_sq(f)
    return f


@njit(cache=True, nogil=True)
def fe8_canonical(f):
    """The representative < p of each lane (limbs within their 26/25 bits)."""
    h = fe8_carry(fe8_carry(f))
    # h < 2^255 + small now; q = 1 exactly when h >= p (h + 19 reaches bit 255).
    q = (h[0] + splat(19)) >> 26
    q = (h[1] + q) >> 25
    q = (h[2] + q) >> 26
    q = (h[3] + q) >> 25
    q = (h[4] + q) >> 26
    q = (h[5] + q) >> 25
    q = (h[6] + q) >> 26
    q = (h[7] + q) >> 25
    q = (h[8] + q) >> 26
    q = (h[9] + q) >> 25
    m26 = splat(_M26)
    m25 = splat(_M25)
    h0 = h[0] + mul32(q, splat(19))
    h1 = h[1] + (h0 >> 26)
    h0 = h0 & m26
    h2 = h[2] + (h1 >> 25)
    h1 = h1 & m25
    h3 = h[3] + (h2 >> 26)
    h2 = h2 & m26
    h4 = h[4] + (h3 >> 25)
    h3 = h3 & m25
    h5 = h[5] + (h4 >> 26)
    h4 = h4 & m26
    h6 = h[6] + (h5 >> 25)
    h5 = h5 & m25
    h7 = h[7] + (h6 >> 26)
    h6 = h6 & m26
    h8 = h[8] + (h7 >> 25)
    h7 = h7 & m25
    h9 = h[9] + (h8 >> 26)
    h8 = h8 & m26
    h9 = h9 & m25
    return (h0, h1, h2, h3, h4, h5, h6, h7, h8, h9)


@njit(cache=True, nogil=True)
def fe8_is_zero(f):
    """All-ones lanes where f = 0 mod p."""
    h = fe8_canonical(f)
    acc = h[0] | h[1] | h[2] | h[3] | h[4] | h[5] | h[6] | h[7] | h[8] | h[9]
    return lanes_eq(acc, zero8())


@njit(cache=True, nogil=True, inline="always")
def fe8_eq(f, g):
    return fe8_is_zero(fe8_sub(f, g))


@njit(cache=True, nogil=True)
def fe8_is_negative(f):
    """All-ones lanes where the canonical value of f is odd (the encoding's sign)."""
    return lanes_eq(fe8_canonical(f)[0] & splat(1), splat(1))


@njit(cache=True, nogil=True, inline="always")
def fe8_select(mask, f, g):
    """f in the lanes where mask is all-ones, g elsewhere."""
    return (lanes_select(mask, f[0], g[0]), lanes_select(mask, f[1], g[1]),
            lanes_select(mask, f[2], g[2]), lanes_select(mask, f[3], g[3]),
            lanes_select(mask, f[4], g[4]), lanes_select(mask, f[5], g[5]),
            lanes_select(mask, f[6], g[6]), lanes_select(mask, f[7], g[7]),
            lanes_select(mask, f[8], g[8]), lanes_select(mask, f[9], g[9]))


@njit(cache=True, nogil=True)
def _pow_2_250_minus_1(z):
    """z^(2^250 - 1) and z^11 (the ref10 addition chain, as in kernels.field25519)."""
    z2 = fe8_sq(z)
    z9 = fe8_mul(fe8_sq_n(z2, 2), z)
    z11 = fe8_mul(z9, z2)
    z_5_0 = fe8_mul(fe8_sq(z11), z9)
    z_10_0 = fe8_mul(fe8_sq_n(z_5_0, 5), z_5_0)
    z_20_0 = fe8_mul(fe8_sq_n(z_10_0, 10), z_10_0)
    z_40_0 = fe8_mul(fe8_sq_n(z_20_0, 20), z_20_0)
    z_50_0 = fe8_mul(fe8_sq_n(z_40_0, 10), z_10_0)
    z_100_0 = fe8_mul(fe8_sq_n(z_50_0, 50), z_50_0)
    z_200_0 = fe8_mul(fe8_sq_n(z_100_0, 100), z_100_0)
    z_250_0 = fe8_mul(fe8_sq_n(z_200_0, 50), z_50_0)
    return z_250_0, z11


@njit(cache=True, nogil=True)
def fe8_invert(z):
    """z^(p-2) = 1/z lane by lane (0 maps to 0)."""
    z_250_0, z11 = _pow_2_250_minus_1(z)
    return fe8_mul(fe8_sq_n(z_250_0, 5), z11)


@njit(cache=True, nogil=True)
def fe8_pow22523(z):
    """z^((p-5)/8) lane by lane: the core of the square root in decompression."""
    z_250_0, _ = _pow_2_250_minus_1(z)
    return fe8_mul(fe8_sq_n(z_250_0, 2), z)


@njit(cache=True, nogil=True, inline="always")
def fe8_from51(a, b, c, d, e):
    """Lanes of a serial element (five 51-bit limbs, each < 2^52) in radix 2^25.5."""
    m26 = splat(_M26)
    return (a & m26, a >> 26, b & m26, b >> 26, c & m26, c >> 26, d & m26, d >> 26,
            e & m26, e >> 26)


@njit(cache=True, nogil=True)
def fe8_to51(f):
    """Five 51-bit limbs per lane (< 2^51 + 2^13, serial code's "reduced") of f."""
    h = fe8_carry(f)
    l0 = h[0] + (h[1] << 26)
    l1 = h[2] + (h[3] << 26)
    l2 = h[4] + (h[5] << 26)
    l3 = h[6] + (h[7] << 26)
    l4 = h[8] + (h[9] << 26)
    m51 = splat((1 << 51) - 1)
    l1 = l1 + (l0 >> 51)
    l0 = l0 & m51
    l2 = l2 + (l1 >> 51)
    l1 = l1 & m51
    l3 = l3 + (l2 >> 51)
    l2 = l2 & m51
    l4 = l4 + (l3 >> 51)
    l3 = l3 & m51
    l0 = l0 + mul32(l4 >> 51, splat(19))
    l4 = l4 & m51
    return l0, l1, l2, l3, l4


@njit(cache=True, nogil=True, inline="always")
def fe8_from_words(w0, w1, w2, w3):
    """The low 255 bits of 32-byte little-endian encodings given as four 64-bit words per
    lane (ZIP-215: a value >= p is kept as is, not rejected)."""
    m51 = splat((1 << 51) - 1)
    w3 = w3 & splat(0x7FFFFFFFFFFFFFFF)
    return fe8_from51(w0 & m51, ((w0 >> 51) | (w1 << 13)) & m51,
                      ((w1 >> 38) | (w2 << 26)) & m51, ((w2 >> 25) | (w3 << 39)) & m51,
                      w3 >> 12)


# Lanes per vector, for callers that size scratch by it.
assert LANES == 8  # nosec B101  # a constant checked at import, never input
