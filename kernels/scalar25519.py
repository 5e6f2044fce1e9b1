"""Scalars modulo L = 2^252 + 27742317777372353535851937790883648493.

A scalar is a 4-tuple of uint64 limbs, little-endian; column storage is uint64[n, 4].
Wide values (products and sums of products before reduction) live in uint64 arrays of
8 limbs. Reduction is Barrett's (HAC 14.42) with base b = 2^64, k = 4:

  1. q1 = floor(x / b^3)                 (5 limbs)
  2. q3 = floor(q1 * mu / b^5)           with mu = floor(b^8 / L) (5 limbs)
  3. r  = (x mod b^5) - (q3 * L mod b^5)  mod b^5
  4. while r >= L: r -= L                 (at most twice)

valid for any x < b^8 = 2^512, so one routine reduces SHA-512 outputs (k), wide sums of
z_i*S_i and per-key sums of z_i*k_i alike.

Recodings for scalar multiplication: `sc_signed_digits` (radix 2^c, digits in
[-2^(c-1), 2^(c-1)], Pippenger) and `sc_wnaf` (width-w NAF with odd digits, Straus and
single verification).
"""
import numpy as np
from numba import njit

from kernels.int128 import mul64

__all__ = [
    "L_INT", "L_LIMBS", "sc_load", "sc_at", "sc_store", "sc_is_canonical", "sc_reduce_wide",
    "sc_reduce_bytes64", "sc_acc_mul", "sc_neg", "sc_signed_digits", "sc_signed_bytes", "sc_wnaf",
    "sc_from_int", "sc_to_int",
]

L_INT = 2**252 + 27742317777372353535851937790883648493
_MU_INT = 2**512 // L_INT
L_LIMBS = np.array([(L_INT >> (64 * i)) & (2**64 - 1) for i in range(4)], dtype=np.uint64)
_L_TUPLE = tuple(np.uint64((L_INT >> (64 * i)) & (2**64 - 1)) for i in range(4))
_MU = np.array([(_MU_INT >> (64 * i)) & (2**64 - 1) for i in range(5)], dtype=np.uint64)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)


def sc_from_int(v):
    """Python int -> limb tuple (tests and constants)."""
    return tuple(np.uint64((v >> (64 * i)) & (2**64 - 1)) for i in range(4))


def sc_to_int(limbs):
    return sum(int(limbs[i]) << (64 * i) for i in range(len(limbs)))


@njit(cache=True, nogil=True)
def _load64(b, off):
    v = np.uint64(0)
    for i in range(8):
        v |= np.uint64(b[off + i]) << np.uint64(8 * i)
    return v


@njit(cache=True, nogil=True)
def sc_load(b, off):
    """32 little-endian bytes b[off:off+32] -> 4 limbs."""
    return (_load64(b, off), _load64(b, off + 8), _load64(b, off + 16), _load64(b, off + 24))


@njit(cache=True, nogil=True)
def sc_at(arr, i):
    """The scalar stored in row i of a uint64[n, 4] column (the inverse of sc_store)."""
    return (arr[i, 0], arr[i, 1], arr[i, 2], arr[i, 3])


@njit(cache=True, nogil=True)
def sc_store(arr, i, s):
    for j in range(4):
        arr[i, j] = s[j]


@njit(cache=True, nogil=True)
def sc_is_canonical(s):
    """s < L, comparing limbs from the top."""
    for j in range(3, -1, -1):
        if s[j] < _L_TUPLE[j]:
            return True
        if s[j] > _L_TUPLE[j]:
            return False
    return False


@njit(cache=True, nogil=True)
def _mul_into(a, na, b, nb, out):
    """out[0:na+nb] = a[0:na] * b[0:nb] (schoolbook; out must start zeroed)."""
    for i in range(na):
        carry = _ZERO
        for j in range(nb):
            lo, hi = mul64(a[i], b[j])
            t = out[i + j] + lo
            c1 = _ONE if t < lo else _ZERO
            t2 = t + carry
            c2 = _ONE if t2 < carry else _ZERO
            out[i + j] = t2
            carry = hi + c1 + c2
        out[i + nb] = carry


@njit(cache=True, nogil=True)
def sc_reduce_wide(x):
    """x mod L for x given as 8 uint64 limbs (any value < 2^512)."""
    q1 = x[3:8]
    q2 = np.zeros(10, dtype=np.uint64)
    _mul_into(q1, 5, _MU, 5, q2)
    q3 = q2[5:10]
    r2 = np.zeros(9, dtype=np.uint64)
    _mul_into(q3, 5, L_LIMBS, 4, r2)
    r = np.zeros(5, dtype=np.uint64)
    borrow = _ZERO
    for j in range(5):
        r[j], borrow = _sub_borrow(x[j], r2[j], borrow)
    # r < 3L now; subtract L while r >= L.
    for _ in range(3):
        ge = r[4] != _ZERO
        if not ge:
            ge = True
            for j in range(3, -1, -1):
                if r[j] != L_LIMBS[j]:
                    ge = r[j] > L_LIMBS[j]
                    break
        if not ge:
            break
        borrow = _ZERO
        for j in range(5):
            r[j], borrow = _sub_borrow(r[j], L_LIMBS[j] if j < 4 else _ZERO, borrow)
    return (r[0], r[1], r[2], r[3])


@njit(cache=True, nogil=True)
def sc_reduce_bytes64(h):
    """A 64-byte little-endian value (a SHA-512 digest) mod L."""
    x = np.empty(8, dtype=np.uint64)
    for j in range(8):
        x[j] = _load64(h, 8 * j)
    return sc_reduce_wide(x)


@njit(cache=True, nogil=True)
def sc_acc_mul(acc, a, b):
    """acc[0:8] += a * b for a 4-limb scalar a and a 2-limb (128-bit) b.

    Sums of up to 2^64 such products stay below 2^512, so a per-key or per-batch
    accumulator is reduced once, at the end.
    """
    for i in range(2):
        carry = _ZERO
        for j in range(4):
            lo, hi = mul64(b[i], a[j])
            t = acc[i + j] + lo
            c1 = _ONE if t < lo else _ZERO
            t2 = t + carry
            c2 = _ONE if t2 < carry else _ZERO
            acc[i + j] = t2
            carry = hi + c1 + c2
        k = i + 4
        while carry != _ZERO and k < 8:
            t = acc[k] + carry
            carry = _ONE if t < carry else _ZERO
            acc[k] = t
            k += 1


@njit(cache=True, nogil=True)
def sc_neg(s):
    """(L - s) mod L for a canonical s."""
    if (s[0] | s[1] | s[2] | s[3]) == _ZERO:
        return s
    d0, b0 = _sub_borrow(_L_TUPLE[0], s[0], _ZERO)
    d1, b1 = _sub_borrow(_L_TUPLE[1], s[1], b0)
    d2, b2 = _sub_borrow(_L_TUPLE[2], s[2], b1)
    d3, _ = _sub_borrow(_L_TUPLE[3], s[3], b2)
    return (d0, d1, d2, d3)


@njit(cache=True, nogil=True)
def _sub_borrow(a, b, borrow):
    """(a - b - borrow mod 2^64, borrow out)."""
    return a - b - borrow, (_ONE if (a < b) or (a - b < borrow) else _ZERO)


@njit(cache=True, nogil=True)
def _window(s, pos, c):
    """Bits [pos, pos + c) of the 256-bit scalar s (c <= 32)."""
    limb = pos >> 6
    shift = pos & 63
    v = s[limb] >> np.uint64(shift)
    if shift + c > 64 and limb < 3:
        v |= s[limb + 1] << np.uint64(64 - shift)
    return np.int64(v & np.uint64((1 << c) - 1))


@njit(cache=True, nogil=True)
def sc_signed_digits(s, c, n_windows, out, row):
    """Radix-2^c signed digits of s (< 2^253) into out[row, 0:n_windows].

    digit_j in [-2^(c-1), 2^(c-1)); s = sum digit_j * 2^(c*j). n_windows must be at least
    ceil(254 / c) so the final carry has a window to land in.
    """
    half = 1 << (c - 1)
    full = 1 << c
    carry = 0
    for j in range(n_windows):
        pos = j * c
        v = carry + (_window(s, pos, c) if pos < 256 else 0)
        if v >= half:
            out[row, j] = v - full
            carry = 1
        else:
            out[row, j] = v
            carry = 0


@njit(cache=True, nogil=True)
def sc_signed_bytes(s, out):
    """Signed radix-256 digits of s (< 2^254, e.g. any scalar < L) into out[0:32] (int8):
    s = sum d_w 256^w with d_w in [-128, 128)."""
    carry = 0
    for w in range(32):
        v = np.int64((s[w >> 3] >> np.uint64(8 * (w & 7))) & np.uint64(255)) + carry
        if v >= 128:
            out[w] = np.int8(v - 256)
            carry = 1
        else:
            out[w] = np.int8(v)
            carry = 0


@njit(cache=True, nogil=True)
def sc_wnaf(s, max_digit, out):
    """Sliding-window NAF of s into out[0:256] (ref10's `slide`, generalized).

    Every nonzero digit is odd with |digit| <= max_digit (= 2^(w-1) - 1 for width w),
    and s = sum out[i] * 2^i. Requires s < 2^255 so carries stay inside 256 digits.
    """
    for i in range(256):
        out[i] = np.int8((s[i >> 6] >> np.uint64(i & 63)) & _ONE)
    span = 1
    while (1 << span) <= max_digit:
        span += 1
    for i in range(256):
        if out[i] == 0:
            continue
        for b in range(1, span + 1):
            if i + b >= 256:
                break
            if out[i + b] == 0:
                continue
            up = np.int32(out[i + b]) << b
            if out[i] + up <= max_digit:
                out[i] = np.int8(out[i] + up)
                out[i + b] = 0
            elif out[i] - up >= -max_digit:
                out[i] = np.int8(out[i] - up)
                for k in range(i + b, 256):
                    if out[k] == 0:
                        out[k] = 1
                        break
                    out[k] = 0
            else:
                break
