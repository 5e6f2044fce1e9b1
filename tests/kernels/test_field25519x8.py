"""Unit tests of kernels/field25519x8.py against Python ints.

For the value mod p in every lane AND the limb bounds of the module docstring:
  fe8_mul with both sides < 3 * 2^26 (sums of three tight elements, fe8_sum3) or f < 2^28
  with g < 2^27, fe8_sq with limbs < 2^27, fe8_sub with a subtrahend
  up to 4p's limbs, each returning tight limbs (< 2^26 even, < 2^25 + 2^17 odd);
  fe8_canonical / fe8_is_zero / fe8_eq / fe8_is_negative on values around 0, p and 2^255;
  fe8_invert, fe8_pow22523; fe8_from51 / fe8_to51 / fe8_from_words against the serial
  radix-2^51 layout (y >= p kept, as ZIP-215 wants).
Lane j of a test vector is an independent input, so one call checks eight cases.
"""

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit

from kernels.field25519x8 import (
    fe8_canonical, fe8_carry, fe8_eq, fe8_from51, fe8_from_words, fe8_invert, fe8_is_negative,
    fe8_is_zero, fe8_mul, fe8_pow22523, fe8_select, fe8_sq, fe8_sub, fe8_sum3, fe8_to51,
)
from kernels.lanes import LANES, lanes_from_array, lanes_to_array
from tests.support.nojit import examples

P = 2**255 - 19
WIDTHS = (26, 25) * 5
SHIFTS = [sum(WIDTHS[:i]) for i in range(10)]
TIGHT = [1 << 26 if i % 2 == 0 else (1 << 25) + (1 << 17) for i in range(10)]
FOUR_P = [4 * ((1 << w) - 1) - (4 * 18 if i == 0 else 0) for i, w in enumerate(WIDTHS)]
EDGE_VALUES = [0, 1, 2, 18, 19, 20, P - 2, P - 1, P, P + 1, P + 18, 2**255 - 20, 2**255 - 1,
               2**254, (P - 1) // 2, 2**26 - 1, 2**51, 2**204 + 5]
HSET = settings(max_examples=examples(60), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
MASK64 = (1 << 64) - 1


# ---- conversions (no reduction: limb patterns are fed exactly) ------------------------------


def limbs10(v):
    assert 0 <= v < 2**255
    return [(v >> s) & ((1 << w) - 1) for s, w in zip(SHIFTS, WIDTHS)]


def value10(limbs):
    return sum(int(x) << s for x, s in zip(limbs, SHIFTS))


def pack(rows):
    """Eight lanes of ten limbs (lists) -> uint64[80], limb-major (limb i at [8i, 8i + 8))."""
    assert len(rows) == LANES
    return np.array([[row[i] for row in rows] for i in range(10)], dtype=np.uint64).reshape(-1)


def unpack(flat):
    """uint64[80] -> eight lists of ten limbs."""
    a = flat.reshape(10, LANES)
    return [[int(a[i, j]) for i in range(10)] for j in range(LANES)]


def mask_lanes(flat8):
    assert set(int(x) for x in flat8) <= {0, MASK64}
    return [int(x) == MASK64 for x in flat8]


@njit(cache=True)
def _load(a):
    return (lanes_from_array(a, 0), lanes_from_array(a, 8), lanes_from_array(a, 16),
            lanes_from_array(a, 24), lanes_from_array(a, 32), lanes_from_array(a, 40),
            lanes_from_array(a, 48), lanes_from_array(a, 56), lanes_from_array(a, 64),
            lanes_from_array(a, 72))


@njit(cache=True)
def _store(f):
    out = np.empty(80, dtype=np.uint64)
    for i in range(10):
        lanes_to_array(f[i], out, 8 * i)
    return out


@njit(cache=True)
def _binop(op, a, b):
    f = _load(a)
    g = _load(b)
    if op == 0:
        return _store(fe8_mul(f, g))
    return _store(fe8_sub(f, g))


@njit(cache=True)
def _select(mask, a, b):
    return _store(fe8_select(lanes_from_array(mask, 0), _load(a), _load(b)))


@njit(cache=True)
def _unop(op, a):
    f = _load(a)
    if op == 0:
        return _store(fe8_sq(f))
    if op == 1:
        return _store(fe8_carry(f))
    if op == 2:
        return _store(fe8_canonical(f))
    if op == 3:
        return _store(fe8_invert(f))
    return _store(fe8_pow22523(f))


@njit(cache=True)
def _pred(op, a, b):
    out = np.empty(8, dtype=np.uint64)
    if op == 0:
        m = fe8_is_zero(_load(a))
    elif op == 1:
        m = fe8_eq(_load(a), _load(b))
    else:
        m = fe8_is_negative(_load(a))
    lanes_to_array(m, out, 0)
    return out


def _bounded(r, bounds):
    """Eight lane rows of limbs below per-limb bounds, biased to the top."""
    rows = []
    for _ in range(LANES):
        rows.append([b - 1 - r.randrange(4) if r.random() < 0.3 else r.randrange(b) for b in bounds])
    return rows


def _assert_tight(rows, what):
    for row in rows:
        for i, x in enumerate(row):
            assert x < TIGHT[i], (what, i, hex(x))


# ---- field ----------------------------------------------------------------------------------


@pytest.mark.parametrize("f_bits, g_bits", [((26, 25) * 5, (26, 25) * 5), ((28,) * 10, (27,) * 10),
                                            ((27, 26) * 5, (27, 26) * 5)])
def test_fe8_mul_values_and_bounds(f_bits, g_bits):
    r = random.Random(sum(f_bits) + sum(g_bits))
    for _ in range(examples(40)):
        f = _bounded(r, [1 << b for b in f_bits])
        g = _bounded(r, [1 << b for b in g_bits])
        got = unpack(_binop(0, pack(f), pack(g)))
        for j in range(LANES):
            assert value10(got[j]) % P == value10(f[j]) * value10(g[j]) % P, j
        _assert_tight(got, "fe8_mul")


@pytest.mark.parametrize("f_top, g_top", [((1 << 28) - 1, (1 << 27) - 1),
                                           (3 * (1 << 26) - 1, 3 * (1 << 26) - 1)])
def test_fe8_mul_at_the_documented_maxima(f_top, g_top):
    f = [[f_top] * 10] * LANES
    g = [[g_top] * 10] * LANES
    got = unpack(_binop(0, pack(f), pack(g)))
    assert value10(got[0]) % P == value10(f[0]) * value10(g[0]) % P
    _assert_tight(got, "fe8_mul max")


@njit(cache=True)
def _sum3_mul(a, b, c):
    s = fe8_sum3(_load(a), _load(b), _load(c))
    return _store(fe8_mul(s, s))


def test_fe8_sum3_feeds_a_multiplication():
    r = random.Random(17)
    for _ in range(examples(20)):
        a, b, c = (_bounded(r, TIGHT) for _ in range(3))
        got = unpack(_sum3_mul(pack(a), pack(b), pack(c)))
        for j in range(LANES):
            assert value10(got[j]) % P == (value10(a[j]) + value10(b[j]) + value10(c[j])) ** 2 % P
        _assert_tight(got, "fe8_sum3 then fe8_mul")


def test_fe8_sq_values_and_bounds():
    r = random.Random(11)
    for bits in ((26, 25) * 5, (27,) * 10):
        for _ in range(examples(30)):
            f = _bounded(r, [1 << b for b in bits])
            got = unpack(_unop(0, pack(f)))
            for j in range(LANES):
                assert value10(got[j]) % P == value10(f[j]) ** 2 % P
            _assert_tight(got, "fe8_sq")
    top = [[(1 << 27) - 1] * 10] * LANES
    got = unpack(_unop(0, pack(top)))
    assert value10(got[0]) % P == value10(top[0]) ** 2 % P


def test_fe8_sub_values_and_bounds():
    r = random.Random(12)
    for _ in range(examples(40)):
        f = _bounded(r, TIGHT)
        g = _bounded(r, [b + 1 for b in FOUR_P])  # up to 4p's own limbs
        got = unpack(_binop(1, pack(f), pack(g)))
        for j in range(LANES):
            assert value10(got[j]) % P == (value10(f[j]) - value10(g[j])) % P
        _assert_tight(got, "fe8_sub")


def test_fe8_carry_bounds():
    r = random.Random(13)
    for _ in range(examples(40)):
        f = _bounded(r, [1 << 63] * 10)
        got = unpack(_unop(1, pack(f)))
        for j in range(LANES):
            assert value10(got[j]) % P == value10(f[j]) % P
        _assert_tight(got, "fe8_carry")


def _edge_lanes(r):
    return [limbs10(r.choice(EDGE_VALUES)) if r.random() < 0.6 else limbs10(r.randrange(2**255))
            for _ in range(LANES)]


@given(st.randoms(use_true_random=False))
@HSET
def test_fe8_canonical_and_predicates(r):
    a = _edge_lanes(r)
    b = [row if r.random() < 0.5 else limbs10((value10(row) + P) % 2**255)
         if value10(row) + P < 2**255 else row for row in a]
    canon = unpack(_unop(2, pack(a)))
    zero = mask_lanes(_pred(0, pack(a), pack(a)))
    eq = mask_lanes(_pred(1, pack(a), pack(b)))
    neg = mask_lanes(_pred(2, pack(a), pack(a)))
    for j in range(LANES):
        v = value10(a[j]) % P
        assert value10(canon[j]) == v and canon[j] == limbs10(v)
        assert zero[j] == (v == 0)
        assert eq[j] == (v == value10(b[j]) % P)
        assert neg[j] == bool(v & 1)


def test_fe8_invert_and_pow22523():
    r = random.Random(14)
    a = _edge_lanes(r)
    a[0] = limbs10(0)
    a[1] = limbs10(P)  # 0 mod p, not canonical
    inv = unpack(_unop(3, pack(a)))
    pw = unpack(_unop(4, pack(a)))
    for j in range(LANES):
        v = value10(a[j]) % P
        assert value10(inv[j]) % P == pow(v, P - 2, P)
        assert value10(pw[j]) % P == pow(v, (P - 5) // 8, P)


def test_fe8_select_picks_lanes():
    r = random.Random(15)
    a, b = _edge_lanes(r), _edge_lanes(r)
    pick_a = [j % 3 == 0 for j in range(LANES)]
    mask = np.array([MASK64 if p else 0 for p in pick_a], dtype=np.uint64)
    got = unpack(_select(mask, pack(a), pack(b)))
    for j in range(LANES):
        assert got[j] == (a[j] if pick_a[j] else b[j]), j


@njit(cache=True)
def _convert(words51, words64):
    f = fe8_from51(lanes_from_array(words51, 0), lanes_from_array(words51, 8),
                   lanes_from_array(words51, 16), lanes_from_array(words51, 24),
                   lanes_from_array(words51, 32))
    back = fe8_to51(f)
    out51 = np.empty(40, dtype=np.uint64)
    for k in range(5):
        lanes_to_array(back[k], out51, 8 * k)
    g = fe8_from_words(lanes_from_array(words64, 0), lanes_from_array(words64, 8),
                       lanes_from_array(words64, 16), lanes_from_array(words64, 24))
    return _store(f), out51, _store(g)


def test_conversions_to_and_from_the_serial_layout():
    r = random.Random(16)
    values = [r.choice(EDGE_VALUES) if j % 2 else r.randrange(2**255) for j in range(LANES)]
    words51 = np.array([[(v >> (51 * k)) & ((1 << 51) - 1) for v in values] for k in range(5)],
                       dtype=np.uint64).reshape(-1)
    encodings = [(v | (1 << 255)) if j % 3 == 0 else v for j, v in enumerate(values)]  # sign bits
    words64 = np.array([[(e >> (64 * k)) & MASK64 for e in encodings] for k in range(4)],
                       dtype=np.uint64).reshape(-1)
    f, back, g = _convert(words51, words64)
    f, g = unpack(f), unpack(g)
    back = back.reshape(5, LANES)
    for j, v in enumerate(values):
        assert value10(f[j]) == v  # exact: a split, no reduction
        assert sum(int(back[k, j]) << (51 * k) for k in range(5)) % P == v % P
        assert all(int(back[k, j]) < (1 << 51) + (1 << 13) for k in range(5))
        assert value10(g[j]) == v  # y >= p kept, sign bit dropped
