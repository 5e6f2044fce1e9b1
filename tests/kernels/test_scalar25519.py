"""Unit tests of kernels/scalar25519.py (scalars mod L) against Python ints.

sc_reduce_wide / sc_reduce_bytes64 vs `% L` (edges around multiples of L and powers of two,
random 512-bit values), sc_load, sc_is_canonical, sc_acc_mul (many products summed in 512
bits), sc_neg, and the recodings sc_signed_digits (every window c in 4..16) and sc_wnaf
(max_digit 15 and 127): each must reconstruct the scalar with digits in range.
"""

import hashlib
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import kernel_harness as H
from kernels.scalar25519 import L_INT, L_LIMBS, sc_from_int, sc_to_int
from tests.support.nojit import examples

L = 2**252 + 27742317777372353535851937790883648493
HSET = settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
KMAX = (2**512 - 1) // L


def _wide_edges():
    vals = [0, 1, 2, L - 1, L, L + 1, 2 * L - 1, 2 * L, 2 * L + 1, 3 * L - 1, 3 * L, 3 * L + 1,
            2**252 - 1, 2**252, 2**252 + 1, 2**253 - 1, 2**253, 2**255 - 1, 2**256 - 1, 2**256,
            2**320 - 1, 2**384 - 1, 2**448 - 1, 2**511, 2**512 - 1, 2**512 - 2,
            L * L, (L - 1) * (L - 1), (2**128 - 1) * (2**256 - 1)]
    for k in (4, 5, 7, 8, 15, 16, 255, 256, 2**64 - 1, 2**64, 2**128, 2**192 - 1, 2**192,
              2**256 - 1, 2**258, KMAX - 1, KMAX):
        for delta in (-1, 0, 1, L - 1):
            v = k * L + delta
            if 0 <= v < 2**512:
                vals.append(v)
    # every limb pattern of all-ones / zero limbs
    for mask in range(256):
        vals.append(sum((2**64 - 1) << (64 * j) for j in range(8) if mask >> j & 1))
    return vals


def _reduce_wide(vals):
    x = H.wide_array(vals)
    out = np.zeros((len(vals), 4), dtype=np.uint64)
    H.sc_reduce_wide_rows(x, out)
    return [H.scalar_value(r) for r in out]


def _check_reduce(vals):
    got = _reduce_wide(vals)
    for v, g in zip(vals, got):
        assert g == v % L, f"sc_reduce_wide({v:#x}) = {g:#x}, want {v % L:#x}"
    blobs = [v.to_bytes(64, "little") for v in vals]
    h = H.bytes_array(blobs, 64)
    out = np.zeros((len(vals), 4), dtype=np.uint64)
    H.sc_reduce_bytes64_rows(h, out)
    for v, r in zip(vals, out):
        assert H.scalar_value(r) == v % L, f"sc_reduce_bytes64({v:#x})"


def test_constants():
    assert L_INT == L
    assert sc_to_int(L_LIMBS) == L
    assert sc_to_int(sc_from_int(L - 1)) == L - 1


def test_sc_reduce_wide_edges():
    _check_reduce(_wide_edges())


def test_sc_reduce_wide_random_all_sizes():
    r = random.Random(1)
    vals = [r.getrandbits(512) for _ in range(2000)]
    vals += [r.getrandbits(r.randrange(1, 513)) for _ in range(2000)]
    # near multiples of L: q*L + small, q*L - small (Barrett's quotient estimate is off by <= 2)
    for _ in range(1000):
        q = r.getrandbits(r.randrange(1, 260)) % (KMAX + 1)
        v = q * L + r.randrange(-3, 4)
        if 0 <= v < 2**512:
            vals.append(v)
    _check_reduce(vals)


def test_sc_reduce_bytes64_of_sha512_digests():
    digests = [hashlib.sha512(i.to_bytes(4, "little")).digest() for i in range(500)]
    h = H.bytes_array(digests, 64)
    out = np.zeros((len(digests), 4), dtype=np.uint64)
    H.sc_reduce_bytes64_rows(h, out)
    for d, row in zip(digests, out):
        assert H.scalar_value(row) == int.from_bytes(d, "little") % L


@HSET
@given(st.one_of(st.integers(0, 2**512 - 1), st.sampled_from(_wide_edges()),
                 st.integers(0, KMAX).map(lambda k: k * L),
                 st.integers(1, KMAX).map(lambda k: k * L - 1)))
def test_sc_reduce_wide_hypothesis(v):
    _check_reduce([v])


def test_sc_load():
    r = random.Random(2)
    blobs = [r.randbytes(64) for _ in range(50)] + [b"\xff" * 64, bytes(64)]
    b = H.bytes_array(blobs, 64)
    for off in (0, 32):
        out = np.zeros((len(blobs), 4), dtype=np.uint64)
        H.sc_load_rows(b, off, out)
        for blob, row in zip(blobs, out):
            assert H.scalar_value(row) == int.from_bytes(blob[off:off + 32], "little")


def test_sc_is_canonical():
    cases = {0: True, 1: True, L - 1: True, L: False, L + 1: False, 2 * L: False,
             2**252: True, 2**253 - 1: False, 2**256 - 1: False, 2**255: False}
    # a limb-by-limb neighbourhood of L: equal top limbs, lower limb one above / below
    for j in range(4):
        cases[L - (1 << (64 * j))] = True
        cases[L + (1 << (64 * j))] = False
    r = random.Random(3)
    for _ in range(300):
        v = r.getrandbits(256)
        cases[v] = v < L
        w = r.randrange(L)
        cases[w] = True
    vals = list(cases)
    out = np.zeros(len(vals), dtype=np.bool_)
    H.sc_is_canonical_rows(H.scalar_array(vals), out)
    for v, g in zip(vals, out):
        assert bool(g) == cases[v], f"sc_is_canonical({v:#x})"


def test_sc_neg():
    r = random.Random(4)
    vals = [0, 1, 2, L - 1, L - 2, 2**252, 2**252 - 1, (L - 1) // 2, (L + 1) // 2, 2**64,
            2**128 - 1] + [r.randrange(L) for _ in range(500)]
    out = np.zeros((len(vals), 4), dtype=np.uint64)
    H.sc_neg_rows(H.scalar_array(vals), out)
    for v, row in zip(vals, out):
        g = H.scalar_value(row)
        assert g == (L - v) % L, f"sc_neg({v:#x}) = {g:#x}"
        assert g < L


def _acc(a_vals, b_vals, start=0):
    acc = np.array([(start >> (64 * j)) & (2**64 - 1) for j in range(8)], dtype=np.uint64)
    b = np.array([[v & (2**64 - 1), v >> 64] for v in b_vals], dtype=np.uint64).reshape(-1, 2)
    H.sc_acc_mul_rows(H.scalar_array(a_vals), b, acc)
    return H.scalar_value(acc)


def test_sc_acc_mul_many_products():
    r = random.Random(5)
    a_vals = [r.randrange(L) for _ in range(3000)] + [2**256 - 1] * 200 + [L - 1] * 50 + [0, 1]
    b_vals = [r.getrandbits(128) for _ in range(3000)] + [2**128 - 1] * 200 + \
        [r.getrandbits(128) for _ in range(50)] + [2**128 - 1, 0]
    total = sum(a * b for a, b in zip(a_vals, b_vals))
    assert total < 2**512
    assert _acc(a_vals, b_vals) == total
    # the reduced accumulator is what the batch equation uses
    assert _reduce_wide([total])[0] == total % L


def test_sc_acc_mul_carry_chains():
    # carries that ripple through every limb up to the top one
    assert _acc([1], [1], start=2**448 - 1) == 2**448
    assert _acc([1], [1], start=2**512 - 2) == 2**512 - 1
    a, b = 2**256 - 1, 2**128 - 1
    assert _acc([a], [b], start=2**512 - 1 - a * b) == 2**512 - 1
    assert _acc([a], [b], start=(2**512 - 1) - a * b - 12345) == 2**512 - 1 - 12345
    r = random.Random(6)
    for _ in range(200):
        a, b = r.getrandbits(256), r.getrandbits(128)
        start = r.randrange(2**512 - a * b)
        assert _acc([a], [b], start) == start + a * b


@HSET
@given(st.lists(st.tuples(st.integers(0, 2**256 - 1), st.integers(0, 2**128 - 1)),
                min_size=0, max_size=40))
def test_sc_acc_mul_hypothesis(pairs):
    a_vals = [a for a, _ in pairs]
    b_vals = [b for _, b in pairs]
    assert _acc(a_vals, b_vals) == sum(a * b for a, b in pairs)


# ---- recodings ------------------------------------------------------------------------------


def _digit_scalars(seed):
    r = random.Random(seed)
    vals = [0, 1, 2, L - 1, L - 2, 2**252, 2**252 - 1, 2**253 - 1, 2**128 - 1, 2**127,
            2**64 - 1, int("10" * 126, 2), int("01" * 126, 2)]
    vals += [r.randrange(L) for _ in range(150)] + [r.getrandbits(128) for _ in range(100)]
    return vals


@pytest.mark.parametrize("c", range(4, 17))
def test_sc_signed_digits_reconstruct(c):
    half = 1 << (c - 1)
    vals = _digit_scalars(c)
    # digits exactly at +-half in every window, and all-ones windows (maximal carries)
    for j in range((253 + c - 1) // c):
        for v in (half << (c * j), (half - 1) << (c * j), ((1 << c) - 1) << (c * j)):
            if v < 2**253:
                vals.append(v)
    n_min = -(-254 // c)
    for n_windows in (n_min, n_min + 1):
        out = np.zeros((len(vals), n_windows), dtype=np.int32)
        H.sc_signed_digits_rows(H.scalar_array(vals), c, n_windows, out)
        for v, row in zip(vals, out):
            digits = [int(d) for d in row]
            assert all(-half <= d < half for d in digits), (c, hex(v), digits)
            assert sum(d << (c * j) for j, d in enumerate(digits)) == v, (c, hex(v), digits)
    # short (128-bit) scalars with the msm's short window count ceil(129 / c)
    short = [v for v in vals if v < 2**128]
    n_short = -(-129 // c)
    out = np.zeros((len(short), n_short), dtype=np.int32)
    H.sc_signed_digits_rows(H.scalar_array(short), c, n_short, out)
    for v, row in zip(short, out):
        digits = [int(d) for d in row]
        assert all(-half <= d < half for d in digits)
        assert sum(d << (c * j) for j, d in enumerate(digits)) == v, (c, hex(v), digits)


@HSET
@given(st.integers(4, 16), st.integers(0, 2**253 - 1))
def test_sc_signed_digits_hypothesis(c, v):
    n = -(-254 // c)
    out = np.zeros((1, n), dtype=np.int32)
    H.sc_signed_digits_rows(H.scalar_array([v]), c, n, out)
    digits = [int(d) for d in out[0]]
    assert all(-(1 << (c - 1)) <= d < (1 << (c - 1)) for d in digits)
    assert sum(d << (c * j) for j, d in enumerate(digits)) == v


def _check_wnaf(vals, max_digit):
    out = np.zeros((len(vals), 256), dtype=np.int8)
    H.sc_wnaf_rows(H.scalar_array(vals), max_digit, out)
    for v, row in zip(vals, out):
        digits = [int(d) for d in row]
        for d in digits:
            assert d == 0 or (d & 1 and -max_digit <= d <= max_digit), (max_digit, hex(v), d)
        assert sum(d << i for i, d in enumerate(digits)) == v, (max_digit, hex(v))


@pytest.mark.parametrize("max_digit", [7, 15, 63, 127])
def test_sc_wnaf_reconstruct(max_digit):
    vals = _digit_scalars(max_digit) + [2**255 - 1, 2**254, 2**255 - 2, 2**256 // 3 >> 1,
                                        (2**255 - 1) ^ (2**200), 2**253 + 2**252 - 1]
    vals += [(1 << 250) - 1 - (1 << i) for i in range(0, 250, 7)]
    _check_wnaf(vals, max_digit)


@HSET
@given(st.sampled_from([15, 127]), st.integers(0, 2**255 - 1))
def test_sc_wnaf_hypothesis(max_digit, v):
    _check_wnaf([v], max_digit)
