"""Unit tests of the verification kernels in kernels/ed25519_verify.py.

- prepare_rows: per-row S < L check, R decompression, k = SHA-512(R || A || M) mod L and the
  row_ok bookkeeping, against tests/support/ref_ed25519.py on the adversarial cases.
- verify_rows_single and verify_chunk (use_batch True and False, several max_batch): the
  reference verdict on every adversarial case (torsion, small-order, non-canonical, negative
  zero, identity, S = 0, S >= L, undecodable points, wrong lengths), in two row orders.
- batch_equation_holds: True on batches of valid ZIP-215 signatures (honest, torsion on A
  and R, small-order A and R) for Straus and Pippenger sizes and extreme z, False as soon as
  one row is invalid (wherever it is).
- batch_verify_rows: out[i] is exactly the verdict for 0, 1, 2, many and all invalid rows, for
  batch sizes around SINGLE_CHECK_ROWS and around STRAUS_MAX_TERMS, with distinct keys, few
  keys and one key; rows outside `rows` are left alone; the MSM count is 1 for an all-good
  batch and logarithmic for one bad row.
- verify_chunk on a slice with absolute message offsets (as the engine calls it), and on a
  long column whose share of invalid rows changes along the way (adaptive batching).
The single and batch paths run with no key, every key and every other key having
precomputed tables (a comb for single checks, odd multiples for Straus MSMs).
"""

import math
import random

import numpy as np
import pytest
from nacl.signing import SigningKey

from tests.support import kernel_harness as H
from tests.support import ref_ed25519 as ref
from tests.support.ed25519_cases import adversarial_cases
from tests.support import nojit
from tests.support.nojit import jit_only
from kernels.ed25519_verify import (
    SINGLE_CHECK_ROWS, STRAUS_MAX_TERMS, BatchPlan, KeyTables, Prepared, SignedRows,
    batch_equation_holds, batch_verify_rows, build_key_tables, decompress_rows, prepare_rows,
    verify_chunk, verify_rows_single,
)
from kernels.fixed_base import KEY_COMB_ROWS

L = ref.L
# Which keys get precomputed tables (comb + odd multiples): none, every key, every other key.
COMB_MODES = ["half"] if nojit.NOJIT else ["none", "all", "half"]  # "half": rows with and without tables


# ---- building kernel inputs -----------------------------------------------------------------


class Batch:
    """Column arrays for the kernels from rows (msg, sig, pk); wrong lengths -> row_ok False."""

    def __init__(self, items, seed=0, z_values=None, combs="none"):
        n = len(items)
        self.items = items
        self.n = n
        msgs = [bytes(m) for m, _, _ in items]
        self.msg_data = np.frombuffer(b"".join(msgs) + b"\x00", dtype=np.uint8)[:-1].copy()
        self.msg_offsets = np.zeros(n + 1, dtype=np.int64)
        self.msg_offsets[1:] = np.cumsum([len(m) for m in msgs])
        self.well_formed = np.array([len(s) == 64 and len(k) == 32 for _, s, k in items],
                                    dtype=np.bool_)
        self.sigs = np.zeros((n, 64), dtype=np.uint8)
        self.pks = np.zeros((n, 32), dtype=np.uint8)
        for i, (_, s, k) in enumerate(items):
            if self.well_formed[i]:
                self.sigs[i] = np.frombuffer(s, dtype=np.uint8)
                self.pks[i] = np.frombuffer(k, dtype=np.uint8)
        slot = {}
        self.key_index = np.zeros(n, dtype=np.int64)
        for i in range(n):
            self.key_index[i] = slot.setdefault(self.pks[i].tobytes(), len(slot))
        enc = np.zeros((max(1, len(slot)), 32), dtype=np.uint8)
        for k, j in slot.items():
            enc[j] = np.frombuffer(k, dtype=np.uint8)
        self.key_points = np.zeros((enc.shape[0], 4, 5), dtype=np.uint64)
        self.key_ok = np.zeros(enc.shape[0], dtype=np.bool_)
        decompress_rows(enc, self.key_points, self.key_ok)
        # precomputed key tables for no key, every key, or every other key
        n_keys = enc.shape[0]
        self.key_tab = np.full(n_keys, -1, dtype=np.int64)
        with_tab = {"none": [], "all": list(range(n_keys)),
                    "half": list(range(0, n_keys, 2))}[combs]
        self.combs = np.zeros((max(1, len(with_tab)), KEY_COMB_ROWS, 8, 3, 5), dtype=np.uint64)
        self.odds = np.zeros((max(1, len(with_tab)), 64, 3, 5), dtype=np.uint64)
        if with_tab:
            build_key_tables(self.key_points[with_tab], self.combs, self.odds)
            self.key_tab[with_tab] = np.arange(len(with_tab))
        r = random.Random(seed)
        if z_values is None:
            z_values = [r.getrandbits(128) for _ in range(n)]
        self.z = np.array([[v & (2**64 - 1), v >> 64] for v in z_values],
                          dtype=np.uint64).reshape(n, 2)

    def rows(self, lo=0, hi=None):
        hi = self.n if hi is None else hi
        return SignedRows(self.msg_data, self.msg_offsets[lo:hi + 1], self.sigs[lo:hi],
                          self.pks[lo:hi], self.key_index[lo:hi])

    def keys(self, suspect=None):
        n_keys = len(self.key_ok)
        suspect = np.zeros(n_keys, np.bool_) if suspect is None else suspect
        return KeyTables(self.key_points, self.key_ok, self.key_tab, self.combs, self.odds,
                         suspect)

    def prepare(self):
        n = self.n
        self.prep = Prepared(self.well_formed.copy(), np.zeros((n, 4, 5), dtype=np.uint64),
                             np.zeros((n, 4), dtype=np.uint64), np.zeros((n, 4), dtype=np.uint64))
        prepare_rows(self.rows(), self.keys(), self.prep)
        self.row_ok, self.r_points, self.k_scalars, self.s_scalars = self.prep
        return self

    def good_rows(self):
        return np.flatnonzero(self.row_ok).astype(np.int64)

    def equation_holds(self, rows=None):
        rows = self.good_rows() if rows is None else rows
        return bool(batch_equation_holds(rows, self.z, self.rows(), self.keys(), self.prep))

    def batch_verify(self, rows, out):
        return int(batch_verify_rows(rows, self.z, self.rows(), self.keys(), self.prep, out))

    def single(self, rows=None):
        rows = self.good_rows() if rows is None else rows
        out = np.zeros(self.n, dtype=np.bool_)
        verify_rows_single(rows, self.rows(), self.keys(), self.prep, out)
        return out

    def chunk(self, use_batch, max_batch, start_single=False, suspect=None):
        row_ok = self.well_formed.copy()
        out = np.ones(self.n, dtype=np.bool_)  # verify_chunk must overwrite every row
        n_msm = verify_chunk(self.rows(), self.keys(suspect), self.z,
                             BatchPlan(use_batch, max_batch, start_single), row_ok, out)
        return out, int(n_msm)


# ---- row pools with known verdicts ----------------------------------------------------------


def _s_plus_one(sig):
    """An invalid twin of a valid signature: S + 1 mod L (still canonical, so it reaches the
    equation; [8]([S+1]B - R - [k]A) = [8]B != 0)."""
    s = (int.from_bytes(sig[32:], "little") + 1) % L
    return sig[:32] + s.to_bytes(32, "little")


@pytest.fixture(scope="module")
def pool():
    """Valid rows (msg, sig, pk) by key structure."""
    r = random.Random(2150)
    keys = [SigningKey(r.randbytes(32)) for _ in range(260)]

    def honest(key):
        msg = r.randbytes(r.choice([0, 1, 32, 111, 112, 120, 128, 200]))
        return msg, key.sign(msg).signature, bytes(key.verify_key)

    distinct = [honest(k) for k in keys[:250]]
    few = [honest(keys[250 + r.randrange(5)]) for _ in range(200)]
    one = [honest(keys[255]) for _ in range(200)]
    # ZIP-215-valid rows that libsodium rejects: torsion on A and R; small-order A and R.
    torsion = []
    for i in range(16):
        msg = r.randbytes(40)
        a, rr = r.randrange(1, L), r.randrange(1, L)
        a_bytes = ref.encode_with_torsion(a, i % 8)
        r_bytes = ref.encode_with_torsion(rr, (3 * i + 1) % 8)
        torsion.append((msg, ref.sign_raw(msg, a, a_bytes, rr, r_bytes), a_bytes))
    small = ref.small_order_encodings()
    for i in range(8):
        torsion.append((r.randbytes(10), small[(5 * i) % len(small)] + bytes(32), small[i]))
    for row in torsion:
        assert ref.verify_zip215(*row)
    return {"distinct": distinct, "few": few, "one": one, "torsion": torsion}


def _rows_for(pool, mode, size, r):
    if mode == "distinct":
        # distinct keys; a few ZIP-215-only rows mixed in (their keys are distinct too, except
        # the small-order ones, which repeat)
        base = pool["distinct"][: size - min(size // 4, 12)]
        extra = r.sample(pool["torsion"], min(size // 4, 12))
        rows = base + extra
    else:
        rows = pool[mode][:size]
    rows = list(rows)
    r.shuffle(rows)
    assert len(rows) == size
    return rows


# ---- prepare_rows / single / verify_chunk on adversarial cases ------------------------------


@pytest.fixture(scope="module")
def adversarial():
    cases = adversarial_cases(150, seed=4242)
    if nojit.NOJIT:  # a fixed sample: every family is still drawn from, a few rows each
        cases = random.Random(1).sample(cases, 16)
    items = [(m, s, k) for m, s, k, _ in cases]
    expected = np.array([v for _, _, _, v in cases], dtype=np.bool_)
    return items, expected


def test_prepare_rows_against_reference(adversarial):
    items, _ = adversarial
    b = Batch(items).prepare()
    for i, (m, s, k) in enumerate(items):
        parsed = ref.parse_zip215(m, s, k)
        assert bool(b.row_ok[i]) == (parsed is not None), (i, s.hex(), k.hex())
        if parsed is None:
            continue
        S, R, _A, kk = parsed
        assert H.scalar_value(b.s_scalars[i]) == S, i
        assert H.scalar_value(b.k_scalars[i]) == kk, i
        X, Y, Z, T = H.point_ints(b.r_points[i])
        assert ref.point_eq((X, Y, Z, T), R), i
        assert Z == 1 and T == X * Y % ref.P, i


@pytest.mark.parametrize("combs", COMB_MODES)
def test_verify_rows_single_adversarial(adversarial, combs):
    items, expected = adversarial
    b = Batch(items, combs=combs).prepare()
    got = b.single()
    bad = np.flatnonzero(got != expected)
    assert bad.size == 0, [(int(i), items[i][1].hex(), items[i][2].hex()) for i in bad[:5]]


@pytest.mark.parametrize("combs", COMB_MODES)
@pytest.mark.parametrize("order", ["as built", "shuffled"])
def test_verify_chunk_batch_and_single_agree(adversarial, order, combs):
    items, expected = adversarial
    idx = list(range(len(items)))
    if order == "shuffled":
        random.Random(9).shuffle(idx)
    items = [items[i] for i in idx]
    expected = expected[idx]
    b = Batch(items, seed=10, combs=combs)
    single, n0 = b.chunk(False, 8192)
    assert n0 == 0
    bad = np.flatnonzero(single != expected)
    assert bad.size == 0, [(int(i), items[i][1].hex(), items[i][2].hex()) for i in bad[:5]]
    for max_batch in (8192, 64, 7, 2, 1):
        got, n_msm = b.chunk(True, max_batch)
        assert n_msm >= 1
        bad = np.flatnonzero(got != single)
        assert bad.size == 0, (max_batch, [(int(i), items[i][1].hex()) for i in bad[:5]])


@pytest.mark.parametrize("combs", COMB_MODES)
def test_verify_chunk_malformed_rows_do_not_poison(pool, combs):
    r = random.Random(11)
    good = list(pool["few"][:nojit.size(30, 4)]) + list(pool["torsion"][:nojit.size(6, 2)])
    msg, sig, pk = good[0]
    bad = [
        (msg, sig[:63], pk),  # wrong lengths
        (msg, sig, pk[:31]),
        (msg, sig + b"\x00", pk),
        (msg, sig[:32] + L.to_bytes(32, "little"), pk),  # S = L
        (msg, sig[:32] + (2**256 - 1).to_bytes(32, "little"), pk),  # S = 2^256 - 1
        (msg, (2).to_bytes(32, "little") + sig[32:], pk),  # undecodable R
        (msg, sig, (2).to_bytes(32, "little")),  # undecodable A
        (msg, _s_plus_one(sig), pk),  # well-formed but invalid
    ]
    items = good + bad
    expected = np.array([True] * len(good) + [False] * len(bad), dtype=np.bool_)
    order = list(range(len(items)))
    r.shuffle(order)
    items = [items[i] for i in order]
    expected = expected[order]
    b = Batch(items, seed=12, combs=combs)
    for use_batch in (False, True):
        for max_batch in (8192, 5):
            got, _ = b.chunk(use_batch, max_batch)
            assert got.tolist() == expected.tolist(), (use_batch, max_batch)


def test_verify_chunk_tiny_inputs(pool):
    for items, want in (([], []), (pool["distinct"][:1], [True]),
                        ([(pool["distinct"][0][0], _s_plus_one(pool["distinct"][0][1]),
                           pool["distinct"][0][2])], [False])):
        b = Batch(items)
        for use_batch in (False, True):
            got, _ = b.chunk(use_batch, 8192)
            assert got.tolist() == want


# ---- batch_equation_holds -------------------------------------------------------------------


@pytest.mark.parametrize("mode,size", [("distinct", 1), ("distinct", 2), ("distinct", 12),
                                       *[pytest.param(*p, marks=jit_only) for p in (
                                           ("distinct", 40), ("distinct", 120), ("few", 60),
                                           ("few", 150), ("one", 94), ("one", 140))],
                                       ("one", 3)])
def test_batch_equation_holds(pool, mode, size):
    r = random.Random(size * 31 + len(mode))
    rows = _rows_for(pool, mode, size, r)
    b = Batch(rows, seed=size).prepare()
    assert b.row_ok.all()
    assert b.equation_holds()
    # extreme coefficients: all z = 2^128 - 1, and z = 1
    for zv in (2**128 - 1, 1):
        bz = Batch(rows, z_values=[zv] * size).prepare()
        assert bz.equation_holds(), zv
    # one invalid row anywhere makes it fail
    for pos in sorted({0, size // 2, size - 1}):
        bad_rows = list(rows)
        m, s, k = bad_rows[pos]
        bad_rows[pos] = (m, _s_plus_one(s), k)
        bb = Batch(bad_rows, seed=size + 1).prepare()
        assert bb.row_ok.all()
        assert not bb.equation_holds(), (mode, size, pos)
        # ... and holds again on the rows without it
        rest = np.array([i for i in range(size) if i != pos], dtype=np.int64)
        assert bb.equation_holds(rest), (mode, size, pos)


# ---- batch_verify_rows ----------------------------------------------------------------------


def _sizes():
    s = set()
    for base in (SINGLE_CHECK_ROWS, 2 * SINGLE_CHECK_ROWS):
        s.update(range(max(1, base - 2), base + 3))
    # Straus <-> Pippenger: rows + distinct keys + 1 (B) terms vs STRAUS_MAX_TERMS
    half = (STRAUS_MAX_TERMS - 1) // 2
    s.update((half, half + 1, STRAUS_MAX_TERMS - 2, STRAUS_MAX_TERMS - 1, STRAUS_MAX_TERMS,
              STRAUS_MAX_TERMS + 1, 150))
    return sorted(s)


def _bad_sets(size, r):
    sets = {"none": set(), "one": {r.randrange(size)}, "all": set(range(size))}
    if size >= 2:
        sets["two"] = set(r.sample(range(size), 2))
        sets["two adjacent"] = {size // 2 - 1, size // 2} if size >= 3 else {0, 1}
        sets["many"] = set(r.sample(range(size), max(2, size // 3)))
        sets["all but one"] = set(range(size)) - {r.randrange(size)}
    return sets


@jit_only
@pytest.mark.parametrize("combs", COMB_MODES[:2])
@pytest.mark.parametrize("mode", ["distinct", "few", "one"])
def test_batch_verify_rows_pins_invalid_rows(pool, mode, combs):
    r = random.Random({"distinct": 1, "few": 2, "one": 3}[mode])
    for size in _sizes():
        if size > len(pool[mode]) + (12 if mode == "distinct" else 0):
            continue
        rows = _rows_for(pool, mode, size, r)
        for name, bad in _bad_sets(size, r).items():
            items = [(m, _s_plus_one(s), k) if i in bad else (m, s, k)
                     for i, (m, s, k) in enumerate(rows)]
            expected = np.array([i not in bad for i in range(size)], dtype=np.bool_)
            b = Batch(items, seed=size, combs=combs).prepare()
            assert b.row_ok.all()
            rws = b.good_rows()
            out = ~expected  # every entry must be overwritten
            n_msm = b.batch_verify(rws, out)
            assert out.tolist() == expected.tolist(), (mode, size, name, sorted(bad))
            if not bad:
                assert n_msm == 1, (mode, size)
            if len(bad) == 1:
                assert n_msm <= 1 + math.ceil(math.log2(size)), (mode, size, n_msm)


@jit_only
def test_batch_verify_rows_subset_leaves_other_rows_alone(pool):
    r = random.Random(13)
    rows = _rows_for(pool, "few", 60, r)
    bad = {3, 17, 40}
    items = [(m, _s_plus_one(s), k) if i in bad else (m, s, k) for i, (m, s, k) in enumerate(rows)]
    b = Batch(items, seed=14).prepare()
    subset = np.arange(0, 60, 2, dtype=np.int64)  # every other row
    out = np.zeros(60, dtype=np.bool_)
    out[1::2] = True  # sentinels in rows outside the subset
    for i in subset:
        out[i] = i in bad  # the opposite of the answer
    b.batch_verify(subset, out)
    for i in range(60):
        if i % 2:
            assert out[i], i
        else:
            assert out[i] == (i not in bad), i


def test_batch_verify_rows_empty():
    b = Batch([])
    b.prepare()
    out = np.zeros(0, dtype=np.bool_)
    assert b.batch_verify(np.zeros(0, dtype=np.int64), out) == 0


def test_verify_chunk_on_a_slice_with_absolute_offsets(pool):
    """The engine passes each thread a slice of the columns with absolute message offsets."""
    r = random.Random(15)
    rows = _rows_for(pool, "few", 40, r)
    bad = {2, 11, 30}  # uncompiled: only the slice below is verified, 24 rows
    items = [(m, _s_plus_one(s), k) if i in bad else (m, s, k) for i, (m, s, k) in enumerate(rows)]
    b = Batch(items, seed=16)
    lo, hi = 13, 37
    for use_batch in (False, True):
        row_ok = b.well_formed[lo:hi].copy()
        out = np.ones(hi - lo, dtype=np.bool_)
        verify_chunk(b.rows(lo, hi), b.keys(), b.z[lo:hi], BatchPlan(use_batch, 8192, False),
                     row_ok, out)
        assert out.tolist() == [i not in bad for i in range(lo, hi)], use_batch


@jit_only
@pytest.mark.parametrize("combs", COMB_MODES[:2])
def test_verify_chunk_long_column_with_bad_stretches(combs):
    """A column long enough for verify_chunk's batching to change course: a stretch dense
    with invalid rows, then a long clean stretch with rare invalid rows, then another dense
    stretch. Every row must get its own verdict, with batching on and off."""
    r = random.Random(17)
    keys = [SigningKey(r.randbytes(32)) for _ in range(40)]
    items, expected = [], []
    n = 2600
    for i in range(n):
        key = keys[r.randrange(len(keys))]
        msg = r.randbytes(r.choice([0, 16, 120]))
        sig = key.sign(msg).signature
        dense = i < 300 or 2300 <= i < 2400
        bad = (r.random() < 0.2) if dense else (i in (700, 1900))
        if bad:
            sig = _s_plus_one(sig)
        items.append((msg, sig, bytes(key.verify_key)))
        expected.append(not bad)
    b = Batch(items, seed=18, combs=combs)
    for use_batch, max_batch, start_single in ((False, 8192, False), (True, 8192, False),
                                               (True, 500, False), (True, 64, False),
                                               (True, 8192, True), (True, 64, True)):
        got, _ = b.chunk(use_batch, max_batch, start_single)
        bad_rows = np.flatnonzero(got != np.array(expected))
        assert bad_rows.size == 0, (use_batch, max_batch, start_single, bad_rows[:10].tolist())
