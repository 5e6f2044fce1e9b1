"""Unit tests of kernels/edwards_x8.py against the slow reference (tests/ref_ed25519.py).

Each lane of an x8 point is an independent input, so every call checks eight cases:
- ge8_dbl, ge8_dbl_n, ge8_madd (with and without the lane-masked negation), ge8_add_cached
  (likewise), ge8_sub, ge8_to_cached and ge8_mul_by_cofactor give the reference point (as
  affine coordinates) for random points, small-order points and the identity;
- ge8_is_identity is exactly the reference's test, on projective representatives (Z != 1);
- ge8_decompress_zip215 decodes what the reference decodes (non-canonical y, negative zero,
  small order, undecodable encodings) into the same point;
- ge8_gather_niels / ge8_gather_extended read lane j's entry of a serial-layout table, and
  ge8_scatter writes lane j back to row rows[j].
"""

import random

import numpy as np
from numba import njit

from tests.support import ref_ed25519 as ref
from kernels.edwards import BASE_NIELS_ODD
from kernels.edwards_x8 import (
    ge8_add_cached, ge8_cached_cneg, ge8_dbl, ge8_dbl_n, ge8_decompress_zip215,
    ge8_gather_extended, ge8_gather_niels, ge8_is_identity, ge8_madd, ge8_mul_by_cofactor,
    ge8_niels_cneg, ge8_scatter, ge8_sub, ge8_to_cached,
)
from kernels.field8 import fe8_from51, fe8_to51
from kernels.lanes import LANES, lanes_from_array, lanes_to_array
from tests.support import kernel_harness as H

P = ref.P
MASK64 = (1 << 64) - 1
M51 = (1 << 51) - 1
W = 5 * LANES  # words of one coordinate of eight points: five 51-bit limbs per lane


def pack_points(points, coords=4):
    """Eight points (tuples of `coords` ints) -> uint64[coords * 40] in the serial radix-2^51
    layout: coordinate c, limb i, lane j at [c*40 + 8i + j] (read through fe8_from51, so the
    test holds for either kernels.field8 implementation)."""
    out = np.zeros(coords * W, dtype=np.uint64)
    for j, pt in enumerate(points):
        for c in range(coords):
            v = pt[c] % P
            for i in range(5):
                out[c * W + 8 * i + j] = (v >> (51 * i)) & M51
    return out


def unpack_points(flat, coords=4):
    return [tuple(sum(int(flat[c * W + 8 * i + j]) << (51 * i) for i in range(5)) % P
                  for c in range(coords)) for j in range(LANES)]


@njit(cache=True)
def _fe(a, c):
    b = W * c
    return fe8_from51(lanes_from_array(a, b), lanes_from_array(a, b + 8), lanes_from_array(a, b + 16),
                      lanes_from_array(a, b + 24), lanes_from_array(a, b + 32))


@njit(cache=True)
def _pt(a):
    return (_fe(a, 0), _fe(a, 1), _fe(a, 2), _fe(a, 3))


@njit(cache=True)
def _put(P, ncoords):
    out = np.empty(W * ncoords, dtype=np.uint64)
    for c in range(ncoords):
        limbs = fe8_to51(P[c])
        for i in range(5):
            lanes_to_array(limbs[i], out, W * c + 8 * i)
    return out


@njit(cache=True)
def _op(op, a, b, mask):
    Pa = _pt(a)
    m = lanes_from_array(mask, 0)
    if op == 0:
        return _put(ge8_dbl(Pa), 4)
    if op == 1:
        return _put(ge8_dbl_n(Pa, 4), 4)
    if op == 2:
        return _put(ge8_madd(Pa, ge8_niels_cneg(m, (_fe(b, 0), _fe(b, 1), _fe(b, 2)))), 4)
    if op == 3:
        return _put(ge8_add_cached(Pa, ge8_cached_cneg(m, ge8_to_cached(_pt(b)))), 4)
    if op == 4:
        return _put(ge8_sub(Pa, _pt(b)), 4)
    if op == 5:
        return _put(ge8_mul_by_cofactor(Pa), 4)
    out = np.empty(8, dtype=np.uint64)
    lanes_to_array(ge8_is_identity(Pa), out, 0)
    return out


def ext(pt, r):
    """A projective representative of the reference point with a random Z."""
    x, y = ref.to_affine(pt)
    z = r.randrange(1, P)
    return (x * z % P, y * z % P, z, x * y * z % P)


def affine(pt):
    X, Y, Z, _ = pt
    zi = pow(Z, P - 2, P)
    return X * zi % P, Y * zi % P


def niels(pt):
    x, y = ref.to_affine(pt)
    return ((y + x) % P, (y - x) % P, 2 * ref.D * x * y % P)


def _points(r):
    small = [ref.decompress_zip215(e) for e in ref.small_order_encodings()]
    out = []
    for j in range(LANES):
        kind = j % 4
        if kind == 0:
            out.append(ref.scalar_mult(r.randrange(ref.L), ref.B))
        elif kind == 1:
            out.append(ref.point_add(ref.scalar_mult(r.randrange(ref.L), ref.B), r.choice(small)))
        elif kind == 2:
            out.append(r.choice(small))
        else:
            out.append(ref.from_affine(0, 1) if j == 3 else ref.scalar_mult(r.randrange(1, 9), ref.B))
    return out


def _same(got, want, what):
    for j, (g, w) in enumerate(zip(got, want)):
        assert affine(g) == ref.to_affine(w), (what, j)


def test_point_operations_match_the_reference():
    r = random.Random(3)
    for _ in range(3):
        A, B = _points(r), _points(r)
        mask_bits = [r.random() < 0.5 for _ in range(LANES)]
        mask = np.array([MASK64 if b else 0 for b in mask_bits], dtype=np.uint64)
        a = pack_points([ext(p, r) for p in A])
        b = pack_points([ext(p, r) for p in B])
        bn = pack_points([niels(p) for p in B], coords=3)
        _same(unpack_points(_op(0, a, b, mask)), [ref.point_double(p) for p in A], "dbl")
        _same(unpack_points(_op(1, a, b, mask)), [ref.scalar_mult(16, p) for p in A], "dbl_n")
        signed = [ref.point_neg(q) if m else q for q, m in zip(B, mask_bits)]
        _same(unpack_points(_op(2, a, bn, mask)), [ref.point_add(p, q) for p, q in zip(A, signed)],
              "madd")
        _same(unpack_points(_op(3, a, b, mask)), [ref.point_add(p, q) for p, q in zip(A, signed)],
              "add_cached")
        _same(unpack_points(_op(4, a, b, mask)), [ref.point_sub(p, q) for p, q in zip(A, B)], "sub")
        _same(unpack_points(_op(5, a, b, mask)), [ref.mul_by_cofactor(p) for p in A], "cofactor")
        ident = _op(6, a, b, mask)
        assert [int(x) == MASK64 for x in ident] == [ref.is_identity(p) for p in A]
        assert set(int(x) for x in ident) <= {0, MASK64}


@njit(cache=True)
def _decompress(words):
    ok, P = ge8_decompress_zip215(lanes_from_array(words, 0), lanes_from_array(words, 8),
                                  lanes_from_array(words, 16), lanes_from_array(words, 24))
    out = np.empty(8, dtype=np.uint64)
    lanes_to_array(ok, out, 0)
    return out, _put(P, 4)


def test_decompression_matches_the_reference_zip215():
    r = random.Random(4)
    encodings = (ref.small_order_encodings() + ref.noncanonical_encodings()
                 + ref.negative_zero_encodings() + ref.identity_encodings())
    encodings += [ref.compress(ref.scalar_mult(r.randrange(ref.L), ref.B)) for _ in range(12)]
    encodings += [r.randbytes(32) for _ in range(20)]  # about half do not decode
    encodings += [bytes([0xFF] * 31 + [0x7F]), bytes([0xFF] * 32), bytes(32)]
    while len(encodings) % LANES:
        encodings.append(r.randbytes(32))
    for start in range(0, len(encodings), LANES):
        group = encodings[start:start + LANES]
        words = np.array([[int.from_bytes(e[8 * k:8 * k + 8], "little") for e in group]
                          for k in range(4)], dtype=np.uint64).reshape(-1)
        ok, pts = _decompress(words)
        for j, e in enumerate(group):
            want = ref.decompress_zip215(e)
            assert (int(ok[j]) == MASK64) == (want is not None), e.hex()
            got = unpack_points(pts)[j]
            if want is None:
                assert affine(got) == (0, 1)  # undecodable lanes hold the identity
            else:
                assert affine(got) == ref.to_affine(want), e.hex()
                assert got[3] == got[0] * got[1] % P  # T = XY with Z = 1


@njit(cache=True)
def _gathers(niels_flat, niels_idx, points, idx, rows):
    N = ge8_gather_niels(niels_flat, lanes_from_array(niels_idx, 0))
    E = ge8_gather_extended(points.reshape(-1), lanes_from_array(idx, 0))
    out = np.zeros_like(points)
    ge8_scatter(E, out, rows, 5)
    return _put(N, 3), out


def test_gathers_and_scatter_use_the_serial_layouts():
    r = random.Random(5)
    pts = [ref.scalar_mult(r.randrange(ref.L), ref.B) for _ in range(12)]
    points = H.point_array([(x, y, 1, x * y % P) for x, y in map(ref.to_affine, pts)])
    idx = np.array([r.randrange(12) for _ in range(LANES)], dtype=np.uint64)
    idx_niels = np.array([r.randrange(64) for _ in range(LANES)], dtype=np.uint64)
    rows = np.array([11, 0, 5, 7, 2, 9, 3, 4], dtype=np.int64)
    niels_got, out = _gathers(BASE_NIELS_ODD.reshape(-1), idx_niels, points, idx, rows)
    niels_got = [tuple(v) for v in unpack_points(niels_got, coords=3)]
    for j in range(LANES):
        want = tuple(H.fe_value(BASE_NIELS_ODD[int(idx_niels[j]), c]) % P for c in range(3))
        assert niels_got[j] == want
    for j in range(5):
        for c in range(4):
            assert H.fe_value(out[rows[j], c]) % P == H.fe_value(points[int(idx[j]), c]) % P
            assert all(int(x) < (1 << 51) + (1 << 13) for x in out[rows[j], c])
    untouched = [i for i in range(12) if i not in rows[:5]]
    assert not out[untouched].any()
