"""Unit tests of kernels/field25519.py (and kernels/int128.py) against Python ints.

Every kernel is checked on edge values (0, 1, 2, 18, 19, p-1, p, p+1, 2^255-20, 2^255-1, ...)
and on random inputs, for the value mod p AND for the limb bounds of the module docstring:
  - fe_mul / fe_sq accept limbs < 2^54 and return "reduced" limbs (< 2^51 + 2^13, < 2^52);
  - fe_sub accepts a subtrahend with limbs < 2^54 - 152 and returns reduced limbs;
  - fe_sub_loose accepts a subtrahend with limbs < 2^53 - 76, result < minuend + 2^53;
  - fe_carry accepts limbs < 2^63 and returns limbs < 2^52;
  - fe_canonical / fe_tobytes give the unique representative < p.
"""

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import kernel_harness as H
from tests.support.nojit import examples

P = 2**255 - 19
M51 = (1 << 51) - 1
REDUCED = (1 << 51) + (1 << 13)  # "reduced" limbs per the module docstring (and < 2^52)
MUL_IN = 1 << 54  # fe_mul / fe_sq input limbs must be < 2^54
SUB_IN = (1 << 54) - 152  # fe_sub subtrahend limbs must be < 2^54 - 152
LOOSE_IN = (1 << 53) - 76  # fe_sub_loose subtrahend limbs must be < 2^53 - 76

EDGE_VALUES = [0, 1, 2, 3, 18, 19, 20, 38, 121665, 121666, (P - 1) // 2, (P + 1) // 2,
               P - 2, P - 1, P, P + 1, P + 18, 2**255 - 20, 2**255 - 1, 2**254, 2**254 - 1,
               2**51 - 1, 2**51, 2**102 - 1, 2**204, 2**255 - 2**204]

HSET = settings(max_examples=examples(150), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

values255 = st.one_of(st.sampled_from(EDGE_VALUES), st.integers(0, 2**255 - 1))


def limbs_below(bound):
    """5 limbs each in [0, bound), biased towards the top."""
    limb = st.one_of(st.integers(0, bound - 1), st.just(bound - 1),
                     st.integers(max(0, bound - 2**20), bound - 1), st.just(0))
    return st.lists(limb, min_size=5, max_size=5)


def _rand_values(n, seed):
    r = random.Random(seed)
    return [r.getrandbits(255) for _ in range(n)]


def _rand_limbs(n, bound, seed):
    r = random.Random(seed)
    return [[r.randrange(bound) for _ in range(5)] for _ in range(n)]


def _binop(op, xs, ys):
    a, b = H.fe_array(xs), H.fe_array(ys)
    out = np.zeros_like(a)
    H.fe_binop_rows(op, a, b, out)
    return out


def _unop(op, xs):
    a = H.fe_array(xs)
    out = np.zeros_like(a)
    H.fe_unop_rows(op, a, out)
    return out


def _assert_limbs_below(out, bound, what):
    big = int(out.max()) if out.size else 0
    assert big < bound, f"{what}: limb {big:#x} >= bound {bound:#x}"


def _check_mod_p(out, expected, what, inputs=None):
    got = H.fe_values(out)
    for i, (g, e) in enumerate(zip(got, expected)):
        if (g - e) % P:
            ctx = f" inputs={inputs[i]!r}" if inputs is not None else ""
            pytest.fail(f"{what} row {i}: got {g % P:#x}, want {e % P:#x}{ctx}")


# ---- int128 ---------------------------------------------------------------------------------




# ---- mul / sq / sq_n ------------------------------------------------------------------------


def test_fe_mul_sq_edge_values():
    xs, ys = H.all_pairs(EDGE_VALUES)
    out = _binop(H.FE_MUL, xs, ys)
    _check_mod_p(out, [x * y for x, y in zip(xs, ys)], "fe_mul", list(zip(xs, ys)))
    _assert_limbs_below(out, REDUCED, "fe_mul")
    out = _unop(H.FE_SQ, EDGE_VALUES)
    _check_mod_p(out, [x * x for x in EDGE_VALUES], "fe_sq", EDGE_VALUES)
    _assert_limbs_below(out, REDUCED, "fe_sq")


def test_fe_mul_sq_limbs_at_documented_maxima():
    top = MUL_IN - 1
    patterns = [
        [top] * 5,
        [top, 0, 0, 0, 0], [0, 0, 0, 0, top], [0, top, 0, top, 0], [top, top, top, top, 0],
        [0, top, top, top, top], [top, 0, top, 0, top],
        [M51] * 5, [2**52 - 1] * 5, [2**53 - 1] * 5, [top, 1, top, 1, top],
        H.limbs_of(P), H.limbs_of(2**255 - 1), [0] * 5, [1, 0, 0, 0, 0],
    ]
    xs, ys = H.all_pairs(patterns)
    out = _binop(H.FE_MUL, xs, ys)
    want = [H.fe_value(x) * H.fe_value(y) for x, y in zip(xs, ys)]
    _check_mod_p(out, want, "fe_mul at limb maxima", list(zip(xs, ys)))
    _assert_limbs_below(out, REDUCED, "fe_mul at limb maxima")
    out = _unop(H.FE_SQ, patterns)
    _check_mod_p(out, [H.fe_value(x) ** 2 for x in patterns], "fe_sq at limb maxima", patterns)
    _assert_limbs_below(out, REDUCED, "fe_sq at limb maxima")


def test_fe_mul_sq_random_loose_limbs():
    xs = _rand_limbs(2000, MUL_IN, 1)
    ys = _rand_limbs(2000, MUL_IN, 2)
    out = _binop(H.FE_MUL, xs, ys)
    _check_mod_p(out, [H.fe_value(x) * H.fe_value(y) for x, y in zip(xs, ys)], "fe_mul",
                 list(zip(xs, ys)))
    _assert_limbs_below(out, REDUCED, "fe_mul")
    out = _unop(H.FE_SQ, xs)
    _check_mod_p(out, [H.fe_value(x) ** 2 for x in xs], "fe_sq", xs)
    _assert_limbs_below(out, REDUCED, "fe_sq")


@HSET
@given(limbs_below(MUL_IN), limbs_below(MUL_IN))
def test_fe_mul_sq_hypothesis(x, y):
    out = _binop(H.FE_MUL, [x], [y])
    _check_mod_p(out, [H.fe_value(x) * H.fe_value(y)], "fe_mul", [(x, y)])
    _assert_limbs_below(out, REDUCED, "fe_mul")
    out = _unop(H.FE_SQ, [x])
    _check_mod_p(out, [H.fe_value(x) ** 2], "fe_sq", [x])
    _assert_limbs_below(out, REDUCED, "fe_sq")


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 10, 50, 100])
def test_fe_sq_n(n):
    xs = EDGE_VALUES + _rand_values(20, 100 + n) + [[MUL_IN - 1] * 5]
    a = H.fe_array(xs)
    out = np.zeros_like(a)
    H.fe_sq_n_rows(a, n, out)
    _check_mod_p(out, [pow(H.fe_value(H.fe_array([x])[0]), 2**n, P) for x in xs],
                 f"fe_sq_n({n})", xs)
    if n:
        _assert_limbs_below(out, REDUCED, "fe_sq_n")


# ---- add / sub / sub_loose / neg ------------------------------------------------------------


def test_fe_add_reduced_inputs():
    top = REDUCED - 1
    patterns = [[top] * 5, [M51] * 5, [0] * 5, H.limbs_of(P - 1), H.limbs_of(2**255 - 1)]
    xs = EDGE_VALUES + _rand_values(500, 3) + patterns
    ys = list(reversed(xs))
    out = _binop(H.FE_ADD, xs, ys)
    _check_mod_p(out, [H.fe_value(H.fe_array([x])[0]) + H.fe_value(H.fe_array([y])[0])
                       for x, y in zip(xs, ys)], "fe_add")
    # two reduced elements sum to < 2^52.01: a valid input of every kernel (< 2^54)
    _assert_limbs_below(out, 2 * REDUCED - 1, "fe_add")


def test_fe_sub_edges_and_documented_subtrahend_bound():
    top = SUB_IN - 1
    minuends = EDGE_VALUES + [[REDUCED - 1] * 5, [0] * 5, [MUL_IN - 1] * 5]
    subtrahends = EDGE_VALUES + [[top] * 5, [top, 0, 0, 0, 0], [0, 0, 0, 0, top],
                                 [top, top, top, top, 0], [0] * 5, [REDUCED - 1] * 5,
                                 [MUL_IN - 153] * 5]
    xs, ys = [], []
    for x in minuends:
        for y in subtrahends:
            xs.append(x)
            ys.append(y)
    out = _binop(H.FE_SUB, xs, ys)
    vx = H.fe_values(H.fe_array(xs))
    vy = H.fe_values(H.fe_array(ys))
    _check_mod_p(out, [a - b for a, b in zip(vx, vy)], "fe_sub", list(zip(xs, ys)))
    _assert_limbs_below(out, REDUCED, "fe_sub")


def test_fe_sub_random():
    xs = _rand_limbs(1000, REDUCED, 4) + _rand_values(500, 5)
    ys = _rand_limbs(1000, SUB_IN, 6) + _rand_values(500, 7)
    out = _binop(H.FE_SUB, xs, ys)
    vx = H.fe_values(H.fe_array(xs))
    vy = H.fe_values(H.fe_array(ys))
    _check_mod_p(out, [a - b for a, b in zip(vx, vy)], "fe_sub", list(zip(xs, ys)))
    _assert_limbs_below(out, REDUCED, "fe_sub")


@HSET
@given(limbs_below(2 * REDUCED), limbs_below(SUB_IN))
def test_fe_sub_hypothesis(x, y):
    out = _binop(H.FE_SUB, [x], [y])
    _check_mod_p(out, [H.fe_value(x) - H.fe_value(y)], "fe_sub", [(x, y)])
    _assert_limbs_below(out, REDUCED, "fe_sub")


def test_fe_sub_loose_bounds():
    top = LOOSE_IN - 1
    sums = 2 * REDUCED - 1  # a sum of two reduced elements
    minuends = [[0] * 5, [REDUCED - 1] * 5, [sums] * 5, [sums, 0, sums, 0, sums]] + \
        _rand_limbs(200, REDUCED, 8) + _rand_limbs(200, 2 * REDUCED, 9) + EDGE_VALUES
    subtrahends = [[top] * 5, [0] * 5, [REDUCED - 1] * 5, [sums] * 5, [top, 0, 0, 0, top]] + \
        _rand_limbs(200, LOOSE_IN, 10) + _rand_limbs(200, 2 * REDUCED, 11) + EDGE_VALUES
    xs, ys = [], []
    r = random.Random(12)
    for x in minuends:
        for y in r.sample(subtrahends, 25) + subtrahends[:5]:
            xs.append(x)
            ys.append(y)
    a, b = H.fe_array(xs), H.fe_array(ys)
    out = _binop(H.FE_SUB_LOOSE, xs, ys)
    vx, vy = H.fe_values(a), H.fe_values(b)
    _check_mod_p(out, [p - q for p, q in zip(vx, vy)], "fe_sub_loose", list(zip(xs, ys)))
    # result < minuend + 2^53 limb-wise, hence a valid fe_mul input (< 2^54)
    assert np.all(out.astype(object) < a.astype(object) + (1 << 53))
    _assert_limbs_below(out, MUL_IN, "fe_sub_loose")
    # ... and multiplying it gives the right product
    prod = np.zeros_like(out)
    H.fe_binop_rows(H.FE_MUL, out, out, prod)
    _check_mod_p(prod, [(p - q) ** 2 for p, q in zip(vx, vy)], "fe_mul(fe_sub_loose)")


def test_fe_neg():
    xs = EDGE_VALUES + _rand_values(300, 13) + [[SUB_IN - 1] * 5, [REDUCED - 1] * 5]
    out = _unop(H.FE_NEG, xs)
    _check_mod_p(out, [-v for v in H.fe_values(H.fe_array(xs))], "fe_neg", xs)
    _assert_limbs_below(out, REDUCED, "fe_neg")


# ---- carry / canonical / bytes --------------------------------------------------------------


def test_fe_carry_up_to_2_63():
    top = 2**63 - 1
    xs = [[top] * 5, [top, 0, 0, 0, 0], [0, 0, 0, 0, top], [0] * 5, [M51] * 5,
          [M51 + 1] * 5, H.limbs_of(P), H.limbs_of(2**255 - 1)] + \
        _rand_limbs(500, 2**63, 14) + _rand_limbs(500, MUL_IN, 15) + EDGE_VALUES
    out = _unop(H.FE_CARRY, xs)
    _check_mod_p(out, H.fe_values(H.fe_array(xs)), "fe_carry", xs)
    _assert_limbs_below(out, 1 << 52, "fe_carry")
    _assert_limbs_below(out, REDUCED, "fe_carry")


def _loose_forms(v):
    """v (possibly >= 2^255) as radix-2^51 limbs, plus variants borrowing 2^51 from a limb."""
    base = H.limbs_of(v % 2**255)
    base[4] += (v >> 255) << 51
    forms = [base]
    for k in range(4):
        if base[k + 1]:
            f = list(base)
            f[k + 1] -= 1
            f[k] += 1 << 51
            forms.append(f)
    return forms


def _canonical_inputs():
    """Values at and around 0, p and 2p in canonical and loose limb patterns."""
    out = list(EDGE_VALUES)
    for v in (0, 1, 18, 19, 20, P - 2, P - 1, P, P + 1, P + 18, P + 19, 2**255 - 1, 2**255,
              2 * P - 1, 2 * P, 2 * P + 1, 2 * P + 18, 3 * P, 2**256 - 1):
        out += _loose_forms(v)
    return out + [[2**63 - 1] * 5, [MUL_IN - 1] * 5, [M51 + 1] * 5]


def test_fe_canonical_and_tobytes():
    xs = _canonical_inputs() + _rand_limbs(500, 2**63, 16) + _rand_limbs(300, 2**52, 17) + \
        _rand_values(300, 18)
    a = H.fe_array(xs)
    want = [v % P for v in H.fe_values(a)]
    out = np.zeros_like(a)
    H.fe_unop_rows(H.FE_CANONICAL, a, out)
    got = H.fe_values(out)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"fe_canonical({xs[i]!r}) = {g:#x}, want {w:#x}"
    _assert_limbs_below(out, 1 << 51, "fe_canonical")
    enc = np.zeros((len(xs), 32), dtype=np.uint8)
    H.fe_tobytes_rows(a, enc)
    for i, w in enumerate(want):
        assert enc[i].tobytes() == w.to_bytes(32, "little"), f"fe_tobytes({xs[i]!r})"


def _frombytes(blobs):
    b = H.bytes_array(blobs, 32)
    out = np.zeros((len(blobs), 5), dtype=np.uint64)
    H.fe_frombytes_rows(b, out)
    return out


def test_fe_frombytes_zip215_edges():
    vals = [0, 1, 19, P - 1, P, P + 1, P + 18, 2**255 - 1, 2**255 - 20, 2**254]
    blobs = []
    for v in vals:
        blobs.append(v.to_bytes(32, "little"))
        blobs.append((v | (1 << 255)).to_bytes(32, "little"))  # the sign bit is ignored
    blobs += [b"\xff" * 32, b"\x00" * 31 + b"\x80", b"\xff" * 31 + b"\x7f",
              bytes(range(32)), bytes(range(224, 256))]
    out = _frombytes(blobs)
    for i, blob in enumerate(blobs):
        want = int.from_bytes(blob, "little") & (2**255 - 1)  # y >= p kept, not reduced
        assert H.fe_value(out[i]) == want, blob.hex()
    _assert_limbs_below(out, 1 << 51, "fe_frombytes_zip215")


@HSET
@given(st.binary(min_size=32, max_size=32))
def test_fe_frombytes_zip215_hypothesis(blob):
    out = _frombytes([blob])
    assert H.fe_value(out[0]) == int.from_bytes(blob, "little") & (2**255 - 1)
    _assert_limbs_below(out, 1 << 51, "fe_frombytes_zip215")
    # round trip through fe_tobytes gives the canonical encoding of the value mod p
    enc = np.zeros((1, 32), dtype=np.uint8)
    H.fe_tobytes_rows(out, enc)
    want = (int.from_bytes(blob, "little") & (2**255 - 1)) % P
    assert enc[0].tobytes() == want.to_bytes(32, "little")


# ---- predicates -----------------------------------------------------------------------------


def _pred(op, xs, ys=None):
    a = H.fe_array(xs)
    b = H.fe_array(ys if ys is not None else xs)
    out = np.zeros(len(xs), dtype=np.bool_)
    H.fe_pred_rows(op, a, b, out)
    return out


def test_fe_is_zero_and_is_negative():
    xs = _canonical_inputs() + _rand_limbs(300, 2**63, 19) + _rand_values(300, 20)
    vals = [v % P for v in H.fe_values(H.fe_array(xs))]
    assert _pred(H.FE_IS_ZERO, xs).tolist() == [v == 0 for v in vals]
    assert _pred(H.FE_IS_NEGATIVE, xs).tolist() == [v & 1 == 1 for v in vals]
    # the sign is that of the canonical value: p + 1 is "negative" (1), p - 1 is not
    assert _pred(H.FE_IS_NEGATIVE, [P + 1, P - 1, P, 1, 0]).tolist() == \
        [True, False, False, True, False]
    assert _pred(H.FE_IS_ZERO, [0, P, [2 * (2**51 - 19)] + [2 * M51] * 4, 1, P + 1,
                                2**255 - 1]).tolist() == [True, True, True, False, False, False]


def test_fe_eq():
    r = random.Random(21)
    xs, ys, want = [], [], []
    for v in EDGE_VALUES + _rand_values(200, 22):
        w = v % P
        xs.append(w)
        ys.append(w + P if w + P < 2**255 else w)  # non-canonical twin where it exists
        want.append(True)
        for loose in _loose_forms(w)[1:2]:  # the same value with its first loose limb pattern
            xs.append(w)
            ys.append(loose)
            want.append(True)
        other = (w + r.randrange(1, P)) % P
        xs.append(w)
        ys.append(other)
        want.append(False)
    assert _pred(H.FE_EQ, xs, ys).tolist() == want


# ---- fe_mul_small, invert, pow22523 ---------------------------------------------------------


@pytest.mark.parametrize("k", [0, 1, 2, 3, 19, 38, 121, 2**12, 2**13 - 1])
def test_fe_mul_small(k):
    xs = EDGE_VALUES + _rand_values(200, 23) + [[MUL_IN - 1] * 5] + _rand_limbs(200, MUL_IN, 24)
    a = H.fe_array(xs)
    out = np.zeros_like(a)
    H.fe_mul_small_rows(a, np.uint64(k), out)
    _check_mod_p(out, [v * k for v in H.fe_values(a)], f"fe_mul_small(k={k})", xs)
    _assert_limbs_below(out, REDUCED, "fe_mul_small")


def test_fe_invert_and_pow22523():
    xs = EDGE_VALUES + _rand_values(100, 25) + [[MUL_IN - 1] * 5] + _rand_limbs(50, MUL_IN, 26)
    a = H.fe_array(xs)
    vals = [v % P for v in H.fe_values(a)]
    out = np.zeros_like(a)
    H.fe_unop_rows(H.FE_INVERT, a, out)
    _check_mod_p(out, [pow(v, P - 2, P) for v in vals], "fe_invert", xs)
    _assert_limbs_below(out, REDUCED, "fe_invert")
    for g, v in zip(H.fe_values(out), vals):
        assert (g * v) % P == (1 if v else 0)
    H.fe_unop_rows(H.FE_POW22523, a, out)
    _check_mod_p(out, [pow(v, (P - 5) // 8, P) for v in vals], "fe_pow22523", xs)
    _assert_limbs_below(out, REDUCED, "fe_pow22523")


def test_constants():
    import kernels.field25519 as F

    d = (-121665 * pow(121666, P - 2, P)) % P
    assert H.fe_value(F.FE_D) == d
    assert H.fe_value(F.FE_D2) == 2 * d % P
    sqrtm1 = H.fe_value(F.FE_SQRTM1)
    assert sqrtm1 * sqrtm1 % P == P - 1
    assert H.fe_value(F.fe_from_int_limbs(P + 5)) == 5
