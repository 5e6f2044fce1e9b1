"""Unit tests of kernels/verify_x8.py and kernels/tables_x8.py.

- decompress_rows_x8 gives the serial decompression's verdict and point for every row it is
  given (row counts that are not multiples of eight, rows in any order), and leaves the
  other rows alone;
- verify_rows_single_x8 gives the reference ZIP-215 verdict on the adversarial cases (torsion,
  small order, non-canonical and negative-zero encodings, S = 0, identity, corrupted rows),
  for keys with combs, keys without, and a mix, and agrees with the serial single check;
- build_key_tables_x8 builds the same tables (values mod p) as the serial builders of
  kernels.fixed_base, for random, torsion and small-order keys, and a comb of KEY_COMB_ROWS
  rows multiplies like the reference.
"""

import random

import numpy as np
import pytest
from numba import njit

import kernel_harness as H
import nojit
import ref_ed25519 as ref
from ed25519_cases import adversarial_cases
from kernels.ed25519_verify import (
    KeyTables, SignedRows, _verify_rows_serial, decompress_rows, new_prepared, prepare_rows,
)
from kernels.field25519 import fe_canonical
from kernels.fixed_base import KEY_COMB_ROWS, comb_digits, comb_mul, comb_table_build, odd_multiples_build
from kernels.tables_x8 import build_key_tables_x8
from kernels.verify_x8 import decompress_rows_x8, verify_rows_single_x8

P = ref.P


@njit(cache=True)
def _canonical(a):
    f = a.reshape(-1, 5)
    out = np.empty_like(f)
    for i in range(f.shape[0]):
        r = fe_canonical((f[i, 0], f[i, 1], f[i, 2], f[i, 3], f[i, 4]))
        for k in range(5):
            out[i, k] = r[k]
    return out


def _affine(points):
    """Affine (x, y) of each extended point row (Z may differ between representations)."""
    out = []
    for row in points:
        X, Y, Z, _ = (H.fe_value(row[c]) % P for c in range(4))
        zi = pow(Z, P - 2, P)
        out.append((X * zi % P, Y * zi % P))
    return out


def test_decompress_rows_x8_matches_serial():
    r = random.Random(21)
    encodings = (ref.small_order_encodings() + ref.noncanonical_encodings()
                 + ref.negative_zero_encodings()
                 + [ref.compress(ref.scalar_mult(r.randrange(ref.L), ref.B)) for _ in range(20)]
                 + [r.randbytes(32) for _ in range(30)])
    enc = np.frombuffer(b"".join(e + r.randbytes(32) for e in encodings), np.uint8).reshape(-1, 64)
    n = len(encodings)
    want_pts = np.zeros((n, 4, 5), np.uint64)
    want_ok = np.zeros(n, bool)
    decompress_rows(np.ascontiguousarray(enc[:, :32]), want_pts, want_ok)
    for count in (1, 7, 8, 9, n):
        rows = np.array(r.sample(range(n), count), dtype=np.int64)
        pts = np.zeros((n, 4, 5), np.uint64)
        ok = np.zeros(n, bool)
        decompress_rows_x8(enc, rows, pts, ok)
        assert ok[rows].tolist() == want_ok[rows].tolist()
        assert _affine(pts[rows]) == _affine(want_pts[rows])
        others = np.setdiff1d(np.arange(n), rows)
        assert not ok[others].any() and not pts[others].any()


def _inputs(cases, tabled):
    """SignedRows / KeyTables / Prepared for rows (msg, sig, pk); tabled: which key indices
    get tables ("all", "none", "half")."""
    n = len(cases)
    msgs = [m for m, _, _ in cases]
    msg_data = np.frombuffer(b"".join(msgs) + b"\0", np.uint8)[:-1].copy()
    offsets = np.zeros(n + 1, np.int64)
    offsets[1:] = np.cumsum([len(m) for m in msgs])
    sigs = np.array([np.frombuffer(s, np.uint8) for _, s, _ in cases])
    pks = np.array([np.frombuffer(k, np.uint8) for _, _, k in cases])
    names = {}
    key_index = np.array([names.setdefault(k, len(names)) for _, _, k in cases], np.int64)
    enc = np.array([np.frombuffer(k, np.uint8) for k in names])
    points = np.zeros((len(names), 4, 5), np.uint64)
    ok = np.zeros(len(names), bool)
    decompress_rows(enc, points, ok)
    chosen = {"all": list(range(len(names))), "none": [],
              "half": list(range(0, len(names), 2))}[tabled]
    chosen = [u for u in chosen if ok[u]]
    table_of = np.full(len(names), -1, np.int64)
    combs = np.zeros((max(1, len(chosen)), KEY_COMB_ROWS, 8, 3, 5), np.uint64)
    odds = np.zeros((max(1, len(chosen)), 64, 3, 5), np.uint64)
    if chosen:
        build_key_tables_x8(points[chosen], combs, odds)
        table_of[chosen] = np.arange(len(chosen))
    rows = SignedRows(msg_data, offsets, sigs, pks, key_index)
    keys = KeyTables(points, ok, table_of, combs, odds, np.zeros(len(names), bool))
    prep = new_prepared(np.ones(n, bool))
    prepare_rows(rows, keys, prep)
    return rows, keys, prep


@pytest.fixture(scope="module")
def cases():
    got = adversarial_cases(200, seed=777)
    if nojit.NOJIT:
        got = random.Random(2).sample(got, 12)
    return got


@pytest.mark.parametrize("tabled", ["none", "all", "half"])
def test_single_checks_x8_give_the_reference_verdict(cases, tabled):
    items = [(m, s, k) for m, s, k, _ in cases if len(s) == 64 and len(k) == 32]
    expected = [v for _, s, k, v in cases if len(s) == 64 and len(k) == 32]
    rows, keys, prep = _inputs(items, tabled)
    good = np.flatnonzero(prep.row_ok)
    x8 = np.zeros(len(items), bool)
    verify_rows_single_x8(good, rows.key_index, keys.points, keys.table_of, keys.combs,
                          prep.r_points, prep.k_scalars, prep.s_scalars, x8)
    serial = np.zeros(len(items), bool)
    _verify_rows_serial(good, rows, keys, prep, serial)
    assert x8.tolist() == serial.tolist()
    assert x8.tolist() == [bool(e) for e in expected]
    assert not x8[~prep.row_ok].any()


def test_key_tables_x8_match_the_serial_builders():
    r = random.Random(23)
    keys = [ref.scalar_mult(r.randrange(ref.L), ref.B) for _ in range(9)]
    keys += [ref.decompress_zip215(ref.encode_with_torsion(r.randrange(ref.L), t)) for t in range(1, 4)]
    keys += [ref.decompress_zip215(e) for e in ref.small_order_encodings()[:3]]
    points = H.point_array([(x, y, 1, x * y % P) for x, y in map(ref.to_affine, keys)])
    n = len(keys)
    combs = np.zeros((n, KEY_COMB_ROWS, 8, 3, 5), np.uint64)
    odds = np.zeros((n, 64, 3, 5), np.uint64)
    build_key_tables_x8(points, combs, odds)
    want_combs = np.zeros_like(combs)
    want_odds = np.zeros_like(odds)
    _serial_tables(points, want_combs, want_odds)
    assert (_canonical(combs) == _canonical(want_combs)).all()
    assert (_canonical(odds) == _canonical(want_odds)).all()
    # the comb multiplies: [s]P for an R-row comb
    scalars = [0, 1, ref.L - 1, r.randrange(ref.L), r.randrange(2**255)]
    for i in (0, n - 1):
        for s in scalars:
            got = _comb_mul(combs[i], H.scalar_array([s]))
            X, Y, Z, _ = (H.fe_value(got[0, c]) % P for c in range(4))
            want = ref.to_affine(ref.scalar_mult(s, keys[i]))
            zi = pow(Z, P - 2, P)
            assert (X * zi % P, Y * zi % P) == want


@njit(cache=True)
def _serial_tables(points, combs, odds):
    for i in range(points.shape[0]):
        P_ = ((points[i, 0, 0], points[i, 0, 1], points[i, 0, 2], points[i, 0, 3], points[i, 0, 4]),
              (points[i, 1, 0], points[i, 1, 1], points[i, 1, 2], points[i, 1, 3], points[i, 1, 4]),
              (points[i, 2, 0], points[i, 2, 1], points[i, 2, 2], points[i, 2, 3], points[i, 2, 4]),
              (points[i, 3, 0], points[i, 3, 1], points[i, 3, 2], points[i, 3, 3], points[i, 3, 4]))
        comb_table_build(P_, combs[i])
        odd_multiples_build(P_, odds[i])


@njit(cache=True)
def _comb_mul(table, s):
    e = np.empty(64, np.int8)
    Q = comb_mul(table, (s[0, 0], s[0, 1], s[0, 2], s[0, 3]), e)
    out = np.empty((1, 4, 5), np.uint64)
    for c in range(4):
        for k in range(5):
            out[0, c, k] = Q[c][k]
    return out


def test_comb_digits_reconstruct_the_scalar():
    r = random.Random(24)
    for s in [0, 1, 8, 9, 2**252, ref.L - 1, 2**255 - 1] + [r.randrange(2**255) for _ in range(20)]:
        e = np.zeros(64, np.int8)
        comb_digits(tuple(np.uint64((s >> (64 * j)) & (2**64 - 1)) for j in range(4)), e)
        assert sum(int(d) * 16**k for k, d in enumerate(e)) == s
        assert all(-8 <= int(d) <= 8 for d in e)
