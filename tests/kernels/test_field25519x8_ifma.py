"""Unit tests of kernels/field25519x8_ifma.py against Python ints.

For the value mod p in every lane AND the limb bounds of the module docstring: every function
returns tight limbs (< 2^51 + 2), fe8_mul / fe8_sq take limbs up to IFMA's 2^52 - 1, fe8_sub a
subtrahend up to 4p's limbs, fe8_carry limbs up to 2^63; predicates and fe8_canonical on values
around 0, p and 2^255; the conversions are the serial radix-2^51 layout itself.

Compiled, these need a CPU with AVX-512 IFMA (kernels.lanes.HAS_IFMA); without it they run on
the NumPy twins of madd52lo/hi under NUMBA_DISABLE_JIT=1 (tests/kernels/test_field8.py starts
that run on every machine).
"""

import os
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit

from kernels.lanes import HAS_IFMA, LANES, lanes_from_array, lanes_to_array
from tests.support.nojit import examples

if not HAS_IFMA and os.environ.get("NUMBA_DISABLE_JIT") != "1":
    pytest.skip("compiled IFMA kernels need AVX-512 IFMA; test_field8 runs these uncompiled",
                allow_module_level=True)

from kernels.field25519x8_ifma import (  # noqa: E402
    fe8_add, fe8_canonical, fe8_carry, fe8_eq, fe8_from51, fe8_from_words, fe8_invert,
    fe8_is_negative, fe8_is_zero, fe8_mul, fe8_neg, fe8_pow22523, fe8_sq, fe8_sub, fe8_sum3,
    fe8_to51,
)

P = 2**255 - 19
TIGHT = (1 << 51) + 2
IFMA_MAX = (1 << 52) - 1
FOUR_P = [4 * ((1 << 51) - 19)] + [4 * ((1 << 51) - 1)] * 4
EDGE_VALUES = [0, 1, 2, 18, 19, 20, P - 2, P - 1, P, P + 1, P + 18, 2**255 - 20, 2**255 - 1,
               2**254, (P - 1) // 2, 2**51 - 1, 2**51, 2**204 + 5]
HSET = settings(max_examples=examples(60), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
MASK64 = (1 << 64) - 1


def limbs5(v):
    assert 0 <= v < 2**255
    return [(v >> (51 * i)) & ((1 << 51) - 1) for i in range(5)]


def value5(limbs):
    return sum(int(x) << (51 * i) for i, x in enumerate(limbs))


def pack(rows):
    """Eight lanes of five limbs -> uint64[40], limb-major (limb i at [8i, 8i + 8))."""
    assert len(rows) == LANES
    return np.array([[row[i] for row in rows] for i in range(5)], dtype=np.uint64).reshape(-1)


def unpack(flat):
    a = flat.reshape(5, LANES)
    return [[int(a[i, j]) for i in range(5)] for j in range(LANES)]


def _bounded(r, top):
    """Eight lanes of five limbs <= top, a third of them at or next to the top."""
    return [[top - r.randrange(3) if r.random() < 0.3 else r.randrange(top + 1) for _ in range(5)]
            for _ in range(LANES)]


def _assert_tight(rows, what):
    assert all(x < TIGHT for row in rows for x in row), what


@njit(cache=True)
def _load(a):
    return (lanes_from_array(a, 0), lanes_from_array(a, 8), lanes_from_array(a, 16),
            lanes_from_array(a, 24), lanes_from_array(a, 32))


@njit(cache=True)
def _store(f):
    out = np.empty(40, dtype=np.uint64)
    for i in range(5):
        lanes_to_array(f[i], out, 8 * i)
    return out


@njit(cache=True)
def _binop(op, a, b):
    f = _load(a)
    g = _load(b)
    if op == 0:
        return _store(fe8_mul(f, g))
    if op == 1:
        return _store(fe8_sub(f, g))
    if op == 2:
        return _store(fe8_add(f, g))
    return _store(fe8_sum3(f, g, g))


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
    if op == 4:
        return _store(fe8_pow22523(f))
    return _store(fe8_neg(f))


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


def _mask_lanes(flat8):
    assert set(int(x) for x in flat8) <= {0, MASK64}
    return [int(x) == MASK64 for x in flat8]


@pytest.mark.parametrize("top", [TIGHT - 1, IFMA_MAX])
def test_fe8_mul_and_sq_values_and_bounds(top):
    r = random.Random(top)
    for _ in range(examples(40)):
        f, g = _bounded(r, top), _bounded(r, top)
        prod = unpack(_binop(0, pack(f), pack(g)))
        sq = unpack(_unop(0, pack(f)))
        for j in range(LANES):
            assert value5(prod[j]) % P == value5(f[j]) * value5(g[j]) % P, j
            assert value5(sq[j]) % P == value5(f[j]) ** 2 % P, j
        _assert_tight(prod, "fe8_mul")
        _assert_tight(sq, "fe8_sq")


def test_fe8_mul_at_ifmas_maximum():
    top = [[IFMA_MAX] * 5] * LANES
    prod = unpack(_binop(0, pack(top), pack(top)))
    sq = unpack(_unop(0, pack(top)))
    assert value5(prod[0]) % P == value5(top[0]) ** 2 % P == value5(sq[0]) % P
    _assert_tight(prod + sq, "at 2^52 - 1")


def test_additions_carry_to_tight_limbs():
    r = random.Random(21)
    for _ in range(examples(40)):
        f, g = _bounded(r, TIGHT - 1), _bounded(r, TIGHT - 1)
        add = unpack(_binop(2, pack(f), pack(g)))
        sum3 = unpack(_binop(3, pack(f), pack(g)))
        neg = unpack(_unop(5, pack(f)))
        for j in range(LANES):
            assert value5(add[j]) % P == (value5(f[j]) + value5(g[j])) % P
            assert value5(sum3[j]) % P == (value5(f[j]) + 2 * value5(g[j])) % P
            assert value5(neg[j]) % P == -value5(f[j]) % P
        _assert_tight(add + sum3 + neg, "fe8_add / fe8_sum3 / fe8_neg")


def test_fe8_sub_values_and_bounds():
    r = random.Random(22)
    for _ in range(examples(40)):
        f = _bounded(r, TIGHT - 1)
        g = [[r.randrange(b + 1) if r.random() < 0.7 else b for b in FOUR_P] for _ in range(LANES)]
        got = unpack(_binop(1, pack(f), pack(g)))
        for j in range(LANES):
            assert value5(got[j]) % P == (value5(f[j]) - value5(g[j])) % P
        _assert_tight(got, "fe8_sub")


def test_fe8_carry_bounds():
    r = random.Random(23)
    for _ in range(examples(40)):
        f = _bounded(r, (1 << 63) - 1)
        got = unpack(_unop(1, pack(f)))
        for j in range(LANES):
            assert value5(got[j]) % P == value5(f[j]) % P
        _assert_tight(got, "fe8_carry")


def _edge_lanes(r):
    return [limbs5(r.choice(EDGE_VALUES)) if r.random() < 0.6 else limbs5(r.randrange(2**255))
            for _ in range(LANES)]


@given(st.randoms(use_true_random=False))
@HSET
def test_fe8_canonical_and_predicates(r):
    a = _edge_lanes(r)
    b = [limbs5(value5(row) + P) if value5(row) + P < 2**255 and r.random() < 0.5 else row
         for row in a]
    canon = unpack(_unop(2, pack(a)))
    zero = _mask_lanes(_pred(0, pack(a), pack(a)))
    eq = _mask_lanes(_pred(1, pack(a), pack(b)))
    neg = _mask_lanes(_pred(2, pack(a), pack(a)))
    for j in range(LANES):
        v = value5(a[j]) % P
        assert canon[j] == limbs5(v)
        assert zero[j] == (v == 0)
        assert eq[j] == (v == value5(b[j]) % P)
        assert neg[j] == bool(v & 1)


def test_fe8_invert_and_pow22523():
    r = random.Random(24)
    a = _edge_lanes(r)
    a[0] = limbs5(0)
    a[1] = limbs5(P)  # 0 mod p, not canonical
    inv = unpack(_unop(3, pack(a)))
    pw = unpack(_unop(4, pack(a)))
    for j in range(LANES):
        v = value5(a[j]) % P
        assert value5(inv[j]) % P == pow(v, P - 2, P)
        assert value5(pw[j]) % P == pow(v, (P - 5) // 8, P)


@njit(cache=True)
def _convert(words51, words64):
    f = fe8_from51(lanes_from_array(words51, 0), lanes_from_array(words51, 8),
                   lanes_from_array(words51, 16), lanes_from_array(words51, 24),
                   lanes_from_array(words51, 32))
    g = fe8_from_words(lanes_from_array(words64, 0), lanes_from_array(words64, 8),
                       lanes_from_array(words64, 16), lanes_from_array(words64, 24))
    return _store(fe8_to51(f)), _store(g)


def test_conversions_are_the_serial_layout():
    r = random.Random(25)
    values = [r.choice(EDGE_VALUES) if j % 2 else r.randrange(2**255) for j in range(LANES)]
    loose = [[x + (1 << 51) * (k % 2 and j % 3 == 0) for k, x in enumerate(limbs5(v))]
             for j, v in enumerate(values)]  # serial limbs may exceed 2^51 (< 2^52)
    encodings = [(v | (1 << 255)) if j % 3 == 0 else v for j, v in enumerate(values)]
    words64 = np.array([[(e >> (64 * k)) & MASK64 for e in encodings] for k in range(4)],
                       dtype=np.uint64).reshape(-1)
    back, g = _convert(pack(loose), words64)
    back, g = unpack(back), unpack(g)
    for j, v in enumerate(values):
        assert value5(back[j]) % P == value5(loose[j]) % P
        _assert_tight([back[j]], "fe8_to51")
        assert g[j] == limbs5(v)  # exact split of the low 255 bits: y >= p kept, sign dropped
