"""Unit tests of kernels/verify_x8.py.

- decompress_rows_x8 gives the serial decompression's verdict and point for every row it is
  given (row counts that are not multiples of eight, rows in any order), and leaves the
  other rows alone;
- verify_rows_single_x8 gives the reference ZIP-215 verdict on the adversarial cases (torsion,
  small order, non-canonical and negative-zero encodings, S = 0, identity, corrupted rows),
  for keys with combs, keys without, and a mix, and agrees with the serial single check;
- comb_digits (the signed radix-16 digits the single checks read) reconstruct the scalar.
"""

import random

import numpy as np
import pytest

from tests.support import kernel_harness as H
from tests.support import nojit
from tests.support import ref_ed25519 as ref
from tests.support.ed25519_cases import adversarial_cases
from kernels.ed25519_verify import (
    KeyTables, SignedRows, _verify_rows_serial, build_key_tables, decompress_rows, new_prepared,
    prepare_rows,
)
from kernels.fixed_base import KEY_COMB_ROWS, comb_digits
from kernels.verify_x8 import decompress_rows_x8, verify_rows_single_x8

P = ref.P


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
        build_key_tables(points[chosen], combs, odds)
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
    verify_rows_single_x8(good, rows, keys, prep, x8)
    serial = np.zeros(len(items), bool)
    _verify_rows_serial(good, rows, keys, prep, serial)
    assert x8.tolist() == serial.tolist()
    assert x8.tolist() == [bool(e) for e in expected]
    assert not x8[~prep.row_ok].any()


def test_comb_digits_reconstruct_the_scalar():
    r = random.Random(24)
    for s in [0, 1, 8, 9, 2**252, ref.L - 1, 2**255 - 1] + [r.randrange(2**255) for _ in range(20)]:
        e = np.zeros(64, np.int8)
        comb_digits(tuple(np.uint64((s >> (64 * j)) & (2**64 - 1)) for j in range(4)), e)
        assert sum(int(d) * 16**k for k, d in enumerate(e)) == s
        assert all(-8 <= int(d) <= 8 for d in e)
