"""Unit tests of kernels/msm.py: msm_straus and msm_pippenger (every window c in 4..16 on
one case, several c on the rest) against sum s_i P_i computed by tests/support/ref_ed25519.py.

Cases: random short (128-bit) and long (< L, and the documented limit 2^253 - 1) scalars;
zero scalars; empty short / long / both groups; a single point; repeated points (P, P, -P);
points with torsion components and pure small-order points. Input points are extended with
Z = 1, as the module docstring requires.
"""

import random

import numpy as np
import pytest

from tests.support import kernel_harness as H
from tests.support import ref_ed25519 as ref
from kernels.msm import pippenger_window
from tests.support.nojit import size

P = ref.P
L = ref.L
PIPPENGER_CS = tuple(c for c in (4, 5, 7, 8, 11, 13) if c <= size(16, 8))  # 2^c buckets: small uncompiled


def _affine(pt):
    x, y = ref.to_affine(pt)
    return ref.from_affine(x, y)


def _points(n, r, torsion_every=3):
    out = []
    for i in range(n):
        pt = ref.base_mult(r.randrange(1, L))
        if torsion_every and i % torsion_every == 1:
            pt = ref.point_add(pt, ref.SMALL_ORDER_POINTS[r.randrange(1, 8)])
        out.append(_affine(pt))
    return out


def _expected(short_pts, short_sc, long_pts, long_sc, base_sc=0, tab_pts=(), tab_sc=()):
    acc = ref.IDENTITY
    terms = list(zip(short_pts, short_sc)) + list(zip(long_pts, long_sc)) + list(zip(tab_pts, tab_sc))
    terms.append((ref.B, base_sc))
    for pt, s in terms:
        acc = ref.point_add(acc, ref.scalar_mult(s, pt))
    return acc


def _arrays(short_pts, short_sc, long_pts, long_sc):
    sp = H.point_array(short_pts) if short_pts else np.zeros((0, 4, 5), dtype=np.uint64)
    lp = H.point_array(long_pts) if long_pts else np.zeros((0, 4, 5), dtype=np.uint64)
    ss = H.scalar_array(short_sc) if short_sc else np.zeros((0, 4), dtype=np.uint64)
    ls = H.scalar_array(long_sc) if long_sc else np.zeros((0, 4), dtype=np.uint64)
    return sp, ss, lp, ls


def _tabled(base_sc, tab_pts, tab_sc):
    """(base scalar, tables, ids, scalars): tables in shuffled slots, as the key cache has them."""
    base = H.scalar_array([base_sc])[0]
    n = len(tab_pts)
    tables = np.zeros((n + 2, 64, 3, 5), dtype=np.uint64)
    ids = np.arange(n, dtype=np.int64)[::-1] + 1
    if n:
        built = np.zeros((n, 64, 3, 5), dtype=np.uint64)
        H.odd_multiples_rows(H.point_array(list(tab_pts)), built)
        tables[ids] = built
    sc = H.scalar_array(list(tab_sc)) if n else np.zeros((0, 4), dtype=np.uint64)
    return base, tables, np.ascontiguousarray(ids), sc


def _check(out, want, what):
    enc = np.zeros((1, 32), dtype=np.uint8)
    H.ge_tobytes_rows(out, enc)
    assert enc[0].tobytes() == ref.compress(want), f"{what}: encoding differs"
    X, Y, Z, T = H.point_ints(out[0])
    assert ref.point_eq((X, Y, Z, T), want), what
    assert (X * Y - Z * T) % P == 0, f"{what}: XY != ZT"


def _run_all(short_pts, short_sc, long_pts, long_sc, cs=PIPPENGER_CS, what="", base_sc=0,
             tab_pts=(), tab_sc=()):
    want = _expected(short_pts, short_sc, long_pts, long_sc, base_sc, tab_pts, tab_sc)
    sp, ss, lp, ls = _arrays(short_pts, short_sc, long_pts, long_sc)
    tabled = _tabled(base_sc, tab_pts, tab_sc)
    out = np.zeros((1, 4, 5), dtype=np.uint64)
    H.msm_straus_arr(sp, ss, lp, ls, *tabled, out)
    _check(out, want, f"msm_straus {what}")
    for c in cs:
        out = np.zeros((1, 4, 5), dtype=np.uint64)
        H.msm_pippenger_arr(sp, ss, lp, ls, *tabled, c, out)
        _check(out, want, f"msm_pippenger(c={c}) {what}")
    return want


def test_base_and_tabled_points():
    """B's scalar and precomputed-table points join the same doubling chain as the rest."""
    r = random.Random(21)
    sp, lp, tp = _points(5, r), _points(4, r), _points(6, r)
    tp[0] = ref.point_add(tp[0], ref.SMALL_ORDER_POINTS[3])  # a torsion component
    _run_all(sp, [r.getrandbits(128) for _ in sp], lp, [r.randrange(L) for _ in lp],
             what="with B and tabled", base_sc=r.randrange(L), tab_pts=tp,
             tab_sc=[r.randrange(L) for _ in tp])
    # only B and tabled points; edge scalars (0, 1, L-1, 2^253-1)
    _run_all([], [], [], [], what="tabled only", base_sc=L - 1, tab_pts=tp[:4],
             tab_sc=[0, 1, L - 1, 2**253 - 1])


def test_random_short_and_long_scalars():
    r = random.Random(1)
    sp, lp = _points(12, r), _points(9, r)
    ss = [r.getrandbits(128) for _ in sp]
    ls = [r.randrange(L) for _ in lp]
    _run_all(sp, ss, lp, ls, what="random")


def test_every_window_width():
    r = random.Random(2)
    sp, lp = _points(5, r), _points(4, r)
    ss = [r.getrandbits(128) for _ in sp[:-1]] + [2**128 - 1]
    ls = [r.randrange(L) for _ in lp[:-2]] + [L - 1, 2**253 - 1]
    _run_all(sp, ss, lp, ls, cs=range(4, size(17, 9)), what="c in 4..16")


def test_edge_scalars():
    r = random.Random(3)
    sp, lp = _points(8, r), _points(8, r)
    ss = [0, 1, 2, 2**128 - 1, 2**127, 2**64 - 1, 2**64, 3]
    ls = [0, 1, L - 1, 2**252, 2**253 - 1, (L - 1) // 2, 2**128, 2**252 - 1]
    _run_all(sp, ss, lp, ls, what="edge scalars")


def test_all_zero_scalars_give_identity():
    r = random.Random(4)
    sp, lp = _points(3, r), _points(3, r)
    want = _run_all(sp, [0] * 3, lp, [0] * 3, what="zero scalars")
    assert ref.is_identity(want)


@pytest.mark.parametrize("shape", ["no short", "no long", "both empty", "single short",
                                   "single long"])
def test_empty_groups_and_single_points(shape):
    r = random.Random(5)
    pts = _points(4, r)
    s128 = [r.getrandbits(128) for _ in pts]
    sl = [r.randrange(L) for _ in pts]
    if shape == "no short":
        args = ([], [], pts, sl)
    elif shape == "no long":
        args = (pts, s128, [], [])
    elif shape == "both empty":
        args = ([], [], [], [])
    elif shape == "single short":
        args = (pts[:1], s128[:1], [], [])
    else:
        args = ([], [], pts[:1], sl[:1])
    _run_all(*args, what=shape)


def test_repeated_and_opposite_points():
    r = random.Random(6)
    base = _points(3, r)
    neg0 = _affine(ref.point_neg(base[0]))
    sp = [base[0], base[0], base[0], neg0, base[1]]
    s = r.getrandbits(128)
    ss = [s, s, r.getrandbits(128), s, 2**128 - 1]
    lp = [base[0], neg0, base[2], base[2], ref.B, ref.B]
    t = r.randrange(L)
    ls = [t, t, L - 1, 1, r.randrange(L), r.randrange(L)]
    _run_all(sp, ss, lp, ls, what="repeated points")
    # P with scalar s and -P with scalar s cancel exactly; so do [t]Q and [L - t]Q for a
    # torsion-free Q (base[2]: _points adds torsion only to every third point from index 1)
    want = _run_all([base[0], neg0], [s, s], [base[2], base[2]], [t, L - t],
                    what="cancelling terms")
    assert ref.is_identity(want)


def test_small_order_and_torsion_points():
    r = random.Random(7)
    small = [_affine(t) for t in ref.SMALL_ORDER_POINTS]  # includes the identity itself
    ss = [r.getrandbits(128) for _ in small]
    ls = [r.randrange(L) for _ in small]
    _run_all(small, ss, small, ls, what="small-order points")
    tors = _points(6, r, torsion_every=1)
    _run_all(tors, [r.getrandbits(128) for _ in tors], tors[::-1],
             [r.randrange(L) for _ in tors], what="torsion components")


def test_batch_shaped_larger():
    """The batch equation's shape: many short R-terms, fewer long A-terms and B."""
    r = random.Random(8)
    sp = _points(size(60, 12), r)
    lp = _points(size(20, 4), r) + [ref.B]
    ss = [r.getrandbits(128) for _ in sp]
    ls = [r.randrange(L) for _ in lp]
    c = pippenger_window(len(sp), len(lp))
    _run_all(sp, ss, lp, ls, cs=sorted({c, 6} | set(size((9, 10), ()))), what="batch-shaped")


def test_pippenger_window_range():
    prev = 4
    for n in (0, 1, 8, 64, 256, 1024, 4096, 16384, 100000):
        c = pippenger_window(n, n // 2 + 1)
        assert 4 <= c <= 16
        assert c >= prev  # the window grows (weakly) with the batch
        prev = c
