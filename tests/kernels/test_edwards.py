"""Unit tests of kernels/edwards.py against the Python-int reference (tests/support/ref_ed25519.py).

- ge_decompress_zip215 (and ed25519_verify.decompress_rows): random valid points, points with
  torsion, every small-order encoding, non-canonical y (y >= p), negative zero, undecodable
  encodings (ok=False), random 32-byte strings; the decoded point must equal the reference's.
- ge_add / ge_sub / ge_add_cached / ge_sub_cached / ge_madd / ge_msub / ge_dbl / ge_dbl_n /
  ge_mul_by_cofactor / ge_neg / ge_to_affine_niels / niels_neg / ge_is_identity / ge_tobytes:
  inputs in general projective form (random Z), including identity, small-order points, P + P,
  P - P; results compared through compressed encodings and projective equality, and every
  output must satisfy the extended-coordinates invariant XY = ZT with reduced limbs.
- a long random chain of mixed operations feeding outputs back as inputs.
- BASE_NIELS_ODD[j] == (2j + 1)B.
- kernels/fixed_base.py (when present): comb_digits reconstructs with digits in [-8, 8],
  comb_mul(BASE_COMB, s) == [s]B, comb_table_build(B) == BASE_COMB, and tables of arbitrary
  points (torsion, small-order, identity) give [s]P.
"""

import random

import numpy as np
import pytest

from tests.support import kernel_harness as H
from tests.support import ref_ed25519 as ref
from kernels.edwards import BASE_NIELS_ODD
from tests.support import nojit  # noqa: F401  (this file runs uncompiled too: the kernel coverage gate)

P = ref.P


# ---- helpers --------------------------------------------------------------------------------


def _special_points(seed):
    """Identity (several Z), the 8 small-order points, B, -B, and random points."""
    r = random.Random(seed)
    pts = [ref.IDENTITY, H.scaled_point(ref.IDENTITY, r.randrange(2, P)), ref.B, ref.point_neg(ref.B)]
    pts += [H.scaled_point(t, r.randrange(1, P)) for t in ref.SMALL_ORDER_POINTS]
    return pts




def _binop(op, ps, qs):
    out = np.zeros((len(ps), 4, 5), dtype=np.uint64)
    H.ge_binop_rows(op, H.point_array(ps), H.point_array(qs), out)
    return out


# ---- decompression --------------------------------------------------------------------------


def _decompress(blobs):
    b = H.bytes_array(blobs, 32)
    ok = np.zeros(len(blobs), dtype=np.bool_)
    out = np.zeros((len(blobs), 4, 5), dtype=np.uint64)
    H.ge_decompress_rows(b, ok, out)
    return ok, out


def _check_decompress(blobs):
    ok, out = _decompress(blobs)
    for i, blob in enumerate(blobs):
        want = ref.decompress_zip215(blob)
        assert bool(ok[i]) == (want is not None), f"ok differs for {blob.hex()}"
        if want is None:
            continue
        X, Y, Z, T = H.point_ints(out[i])
        assert Z == 1, blob.hex()
        assert (X, Y) == ref.to_affine(want), f"decoded point differs for {blob.hex()}"
        assert T == X * Y % P, blob.hex()
    good = out[ok]
    if good.size:
        assert int(good.max()) < H.REDUCED, "decompressed limbs not reduced"
    return ok, out


def test_decompress_random_valid_points():
    pts = H.random_points(120, 1, torsion=True, scale=False)
    blobs = [ref.compress(p) for p in pts]
    ok, _ = _check_decompress(blobs)
    assert ok.all()


def test_decompress_small_order_encodings():
    blobs = ref.small_order_encodings()
    assert len(blobs) == 14
    ok, out = _check_decompress(blobs)
    assert ok.all()
    # all of them are killed by the cofactor
    cof = np.zeros_like(out)
    H.ge_unop_rows(H.GE_COFACTOR, out, cof)
    ident = np.zeros(len(blobs), dtype=np.bool_)
    H.ge_is_identity_rows(cof, ident)
    assert ident.all()


def test_decompress_noncanonical_negative_zero_identity():
    blobs = ref.noncanonical_encodings() + ref.negative_zero_encodings() + \
        ref.identity_encodings()
    # every y in [p, 2^255) with either sign: decodable or not, must match the reference
    for y in range(P, 2**255):
        for sign in (0, 1):
            blobs.append((y | (sign << 255)).to_bytes(32, "little"))
    ok, _ = _check_decompress(blobs)
    assert ok[: len(ref.noncanonical_encodings())].all()
    # negative zero decodes to x = 0
    nz_ok, nz = _decompress(ref.negative_zero_encodings())
    assert nz_ok.all()
    assert all(H.point_ints(row)[0] == 0 for row in nz)


def test_decompress_undecodable_and_random_bytes():
    r = random.Random(2)
    blobs = [r.randbytes(32) for _ in range(600)]
    # y = 2 is not on the curve (x^2 is not a square); so are many small y
    blobs += [(y | (s << 255)).to_bytes(32, "little") for y in range(0, 64) for s in (0, 1)]
    blobs += [((P - y) | (s << 255)).to_bytes(32, "little") for y in range(1, 64) for s in (0, 1)]
    blobs += [b"\xff" * 32, b"\xff" * 31 + b"\x7f", bytes(32)]
    ok, _ = _check_decompress(blobs)
    assert 0 < ok.sum() < len(blobs)  # both outcomes are exercised
    undecodable = [b for b in blobs if ref.decompress_zip215(b) is None]
    assert len(undecodable) > 100
    ok2, _ = _decompress(undecodable)
    assert not ok2.any()


def test_decompress_rows_kernel_matches():
    from kernels.ed25519_verify import decompress_rows

    r = random.Random(3)
    blobs = [ref.compress(p) for p in H.random_points(20, 4, scale=False)] + \
        ref.small_order_encodings() + [r.randbytes(32) for _ in range(40)]
    enc = H.bytes_array(blobs, 32)
    points = np.zeros((len(blobs), 4, 5), dtype=np.uint64)
    ok = np.zeros(len(blobs), dtype=np.bool_)
    decompress_rows(enc, points, ok)
    ok_h, out_h = _decompress(blobs)
    assert ok.tolist() == ok_h.tolist()
    for i in range(len(blobs)):
        if ok[i]:
            assert np.array_equal(points[i], out_h[i])
        else:
            assert H.point_ints(points[i]) == (0, 1, 1, 0)  # identity stored for bad rows


# ---- group law ------------------------------------------------------------------------------


def test_ge_add_sub_all_forms():
    pts = _special_points(5) + H.random_points(10, 6)
    ps, qs = H.all_pairs(pts)
    # P + P, P - P, P + (-P) are all in the pairs (pts holds B and -B, and each point twice)
    want_add = [ref.point_add(p, q) for p, q in zip(ps, qs)]
    want_sub = [ref.point_sub(p, q) for p, q in zip(ps, qs)]
    for op, want, name in ((H.GE_ADD, want_add, "ge_add"), (H.GE_SUB, want_sub, "ge_sub"),
                           (H.GE_ADD_CACHED, want_add, "ge_add_cached"),
                           (H.GE_SUB_CACHED, want_sub, "ge_sub_cached")):
        H.check_points(_binop(op, ps, qs), want, name)


def test_ge_add_differently_scaled_same_point():
    r = random.Random(7)
    ps, qs = [], []
    for pt in H.random_points(20, 8, scale=False) + ref.SMALL_ORDER_POINTS:
        ps.append(H.scaled_point(pt, r.randrange(1, P)))
        qs.append(H.scaled_point(pt, r.randrange(1, P)))
    H.check_points(_binop(H.GE_ADD, ps, qs), [ref.point_double(p) for p in ps], "ge_add(P, P)")
    sub = _binop(H.GE_SUB, ps, qs)
    H.check_points(sub, [ref.IDENTITY] * len(ps), "ge_sub(P, P)")
    ident = np.zeros(len(ps), dtype=np.bool_)
    H.ge_is_identity_rows(sub, ident)
    assert ident.all()


def test_ge_madd_msub_and_niels():
    pts = _special_points(9) + H.random_points(10, 10)
    ps, qs = H.all_pairs(pts)
    niels = H.niels_array(qs)
    a = H.point_array(ps)
    for op, fn, name in ((H.GE_MADD, ref.point_add, "ge_madd"),
                         (H.GE_MSUB, ref.point_sub, "ge_msub"),
                         (H.GE_MADD_NEG, ref.point_sub, "ge_madd(niels_neg)")):
        out = np.zeros_like(a)
        H.ge_madd_rows(op, a, niels, out)
        H.check_points(out, [fn(p, q) for p, q in zip(ps, qs)], name)
    # ge_to_affine_niels equals the reference affine Niels form (mod p)
    got = np.zeros((len(pts), 3, 5), dtype=np.uint64)
    H.ge_to_affine_niels_rows(H.point_array(pts), got)
    want = H.niels_array(pts)
    for i in range(len(pts)):
        for j in range(3):
            assert H.fe_value(got[i, j]) % P == H.fe_value(want[i, j]), (i, j)
    assert int(got.max()) < H.REDUCED
    # ... and works as a madd operand
    out = np.zeros_like(a)
    H.ge_to_affine_niels_rows(H.point_array(qs), niels)
    H.ge_madd_rows(H.GE_MADD, a, niels, out)
    H.check_points(out, [ref.point_add(p, q) for p, q in zip(ps, qs)], "ge_madd(to_affine_niels)")


def test_ge_dbl_neg_cofactor_dbl_n():
    pts = _special_points(11) + H.random_points(30, 12)
    a = H.point_array(pts)
    out = np.zeros_like(a)
    H.ge_unop_rows(H.GE_DBL, a, out)
    H.check_points(out, [ref.point_double(p) for p in pts], "ge_dbl")
    H.ge_unop_rows(H.GE_NEG, a, out)
    negs = [ref.point_neg(p) for p in pts]
    assert H.compressed_rows(out) == [ref.compress(p) for p in negs]
    H.ge_unop_rows(H.GE_COFACTOR, a, out)
    H.check_points(out, [ref.mul_by_cofactor(p) for p in pts], "ge_mul_by_cofactor")
    for n in (1, 2, 3, 4, 7, 16):
        H.ge_dbl_n_rows(a, n, out)
        H.check_points(out, [ref.scalar_mult(2**n, p) for p in pts], f"ge_dbl_n({n})")


def test_ge_is_identity():
    r = random.Random(13)
    pts, want = [], []
    for lam in (1, 2, P - 1, r.randrange(1, P)):
        pts.append(H.scaled_point(ref.IDENTITY, lam))
        want.append(True)
    for t in ref.SMALL_ORDER_POINTS[1:]:  # (0, -1) has x = 0 but y != 1: not the identity
        pts.append(H.scaled_point(t, r.randrange(1, P)))
        want.append(False)
    for pt in H.random_points(10, 14):
        pts.append(pt)
        want.append(False)
    # identity whose Y, Z limbs are non-canonical (Y = Z + p in limb form, X = p)
    arr = H.point_array(pts)
    out = np.zeros(len(pts), dtype=np.bool_)
    H.ge_is_identity_rows(arr, out)
    assert out.tolist() == want
    odd = np.zeros((1, 4, 5), dtype=np.uint64)
    odd[0, 0] = H.limbs_of(P)  # X = p (= 0)
    odd[0, 1] = H.limbs_of(P + 5)  # Y = 5 + p
    odd[0, 2] = H.limbs_of(5)
    odd[0, 3] = H.limbs_of(0)
    out1 = np.zeros(1, dtype=np.bool_)
    H.ge_is_identity_rows(odd, out1)
    assert out1[0]


def test_ge_tobytes():
    pts = _special_points(15) + H.random_points(60, 16)
    got = H.compressed_rows(H.point_array(pts))
    assert got == [ref.compress(p) for p in pts]
    assert got[0] == (1).to_bytes(32, "little")


def test_random_operation_chain():
    """Outputs fed back as inputs across many mixed operations (limb bounds must compose)."""
    r = random.Random(17)
    pool = H.random_points(6, 18) + ref.SMALL_ORDER_POINTS[:3]
    q_ref = ref.B
    q = H.point_array([q_ref])
    out = np.zeros_like(q)
    for step in range(300):
        op = r.randrange(7)
        other = pool[r.randrange(len(pool))]
        if op == 0:
            H.ge_binop_rows(H.GE_ADD, q, H.point_array([other]), out)
            q_ref = ref.point_add(q_ref, other)
        elif op == 1:
            H.ge_binop_rows(H.GE_SUB_CACHED, q, H.point_array([other]), out)
            q_ref = ref.point_sub(q_ref, other)
        elif op == 2:
            H.ge_madd_rows(H.GE_MADD, q, H.niels_array([other]), out)
            q_ref = ref.point_add(q_ref, other)
        elif op == 3:
            H.ge_madd_rows(H.GE_MSUB, q, H.niels_array([other]), out)
            q_ref = ref.point_sub(q_ref, other)
        elif op == 4:
            H.ge_unop_rows(H.GE_DBL, q, out)
            q_ref = ref.point_double(q_ref)
        elif op == 5:
            H.ge_dbl_n_rows(q, 3, out)
            q_ref = ref.mul_by_cofactor(q_ref)
        else:
            H.ge_binop_rows(H.GE_ADD_CACHED, q, q.copy(), out)
            q_ref = ref.point_double(q_ref)
        q, out = out.copy(), out
        if step % 25 == 0 or step == 299:
            H.check_points(q, [q_ref], f"chain step {step} (op {op})")


@pytest.mark.parametrize("j", range(64))
def test_base_niels_odd(j):
    want = H.niels_array([ref.scalar_mult(2 * j + 1, ref.B)])[0]
    for k in range(3):
        assert H.fe_value(BASE_NIELS_ODD[j, k]) % P == H.fe_value(want[k]), (j, k)






