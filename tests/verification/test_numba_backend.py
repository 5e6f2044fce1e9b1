"""Differential tests of the production verifier (engine.verify_one / verify_many).

1. Adversarial ZIP-215 cases (tests/ed25519_cases.adversarial_cases: torsion on A and R,
   small-order and non-canonical encodings, negative zero, identity points, S = 0, S >= L,
   wrong lengths, honest and corrupted rows): Numba single == Numba batch == the slow reference
   (tests/support/ref_ed25519.py), in whole, shuffled random sub-batches, one and two threads.
2. Honest and randomly corrupted signatures (bit flips in R, S, message, key; S + L): Numba
   single and batch and the libsodium backend == libsodium (PyNaCl). 5,000 rows by default;
   BIZRA_LONG_TESTS=1 runs 100,000 (the lead runs that before merging verifier changes:
   `BIZRA_LONG_TESTS=1 PYTHONPATH=. .venv/bin/python -m pytest tests/verification/test_numba_backend.py`).
3. Batch failure location: one or a few bad rows inside large good batches, malformed rows, and
   all-bad batches give per-row answers.
"""

import os
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import ref_ed25519 as ref
from tests.support.ed25519_cases import adversarial_cases, honest_and_corrupted
from engine import verify_many, verify_one

LONG = os.environ.get("BIZRA_LONG_TESTS", "") == "1"
N_ADVERSARIAL_RANDOM = 10_000 if LONG else 2_500  # plus ~520 structured cases
N_DIFFERENTIAL = 100_000 if LONG else 5_000


@pytest.fixture(scope="module")
def adversarial():
    cases = adversarial_cases(N_ADVERSARIAL_RANDOM, seed=215)
    msgs, sigs, pks, expected = zip(*cases)
    return list(msgs), list(sigs), list(pks), np.array(expected, dtype=bool)


@pytest.fixture(scope="module")
def differential():
    cases = honest_and_corrupted(N_DIFFERENTIAL, seed=25519)
    msgs, sigs, pks, expected = zip(*cases)
    return list(msgs), list(sigs), list(pks), np.array(expected, dtype=bool)


def _bad_rows(got, expected, msgs, sigs, pks, limit=10):
    got = np.asarray(got, dtype=bool)
    assert got.shape == expected.shape and got.dtype == bool
    idx = np.flatnonzero(got != expected)
    return [(int(i), bool(expected[i]), msgs[i].hex(), sigs[i].hex(), pks[i].hex()) for i in idx[:limit]], len(idx)


def _sub_batches(n, rng, sizes):
    order = list(range(n))
    rng.shuffle(order)
    pos = 0
    while pos < n:
        size = rng.choice(sizes)
        yield order[pos : pos + size]
        pos += size


# ---- 1. adversarial: single == batch == reference ------------------------------------------

def test_adversarial_cases_are_mixed(adversarial):
    *_, expected = adversarial
    assert len(expected) > 2_500 and 0.2 < expected.mean() < 0.9


def test_adversarial_numba_single(adversarial):
    msgs, sigs, pks, expected = adversarial
    got = verify_many(msgs, sigs, pks, backend="numba", batch=False, threads=1)
    assert _bad_rows(got, expected, msgs, sigs, pks) == ([], 0)


def test_adversarial_numba_verify_one(adversarial):
    msgs, sigs, pks, expected = adversarial
    got = [verify_one(m, s, k, backend="numba") for m, s, k in zip(msgs, sigs, pks)]
    assert _bad_rows(got, expected, msgs, sigs, pks) == ([], 0)


@pytest.mark.parametrize("threads", [1, 2])
def test_adversarial_numba_batch_whole(adversarial, threads):
    msgs, sigs, pks, expected = adversarial
    got = verify_many(msgs, sigs, pks, backend="numba", batch=True, threads=threads)
    assert _bad_rows(got, expected, msgs, sigs, pks) == ([], 0)


def test_adversarial_numba_batch_random_sub_batches(adversarial):
    msgs, sigs, pks, expected = adversarial
    rng = random.Random(1)
    bad = []
    for part in _sub_batches(len(msgs), rng, [1, 2, 5, 16, 64, 129, 500]):
        got = verify_many(
            [msgs[i] for i in part], [sigs[i] for i in part], [pks[i] for i in part],
            backend="numba", batch=True, threads=rng.choice([1, 2]),
        )
        rows, _ = _bad_rows(got, expected[part], [msgs[i] for i in part], [sigs[i] for i in part], [pks[i] for i in part])
        bad += rows
    assert bad == []


def test_adversarial_valid_rows_pass_as_one_batch(adversarial):
    """Torsioned, small-order, non-canonical and negative-zero signatures that ZIP-215 accepts
    satisfy the cofactored batch equation together (no row may be lost to the fallback)."""
    msgs, sigs, pks, expected = adversarial
    keep = np.flatnonzero(expected)
    got = verify_many([msgs[i] for i in keep], [sigs[i] for i in keep], [pks[i] for i in keep], backend="numba", batch=True)
    assert got.all()


# ---- 2. honest and corrupted: numba == libsodium -------------------------------------------

def test_differential_is_mixed(differential):
    *_, expected = differential
    assert len(expected) == N_DIFFERENTIAL and 0.35 < expected.mean() < 0.65


def test_differential_numba_batch(differential):
    msgs, sigs, pks, expected = differential
    got = verify_many(msgs, sigs, pks, backend="numba", batch=True)
    assert _bad_rows(got, expected, msgs, sigs, pks) == ([], 0)


def test_differential_numba_single(differential):
    msgs, sigs, pks, expected = differential
    got = verify_many(msgs, sigs, pks, backend="numba", batch=False)
    assert _bad_rows(got, expected, msgs, sigs, pks) == ([], 0)


def test_differential_numba_batch_random_sub_batches(differential):
    msgs, sigs, pks, expected = differential
    rng = random.Random(2)
    bad = []
    for part in _sub_batches(len(msgs), rng, [1, 3, 8, 64, 256, 1000, 4096]):
        got = verify_many(
            [msgs[i] for i in part], [sigs[i] for i in part], [pks[i] for i in part],
            backend="numba", batch=True, threads=rng.choice([1, 2]),
        )
        rows, _ = _bad_rows(got, expected[part], [msgs[i] for i in part], [sigs[i] for i in part], [pks[i] for i in part])
        bad += rows
    assert bad == []


@pytest.mark.parametrize("batch", [False, True])
def test_differential_libsodium_backend(differential, batch):
    msgs, sigs, pks, expected = differential
    got = verify_many(msgs, sigs, pks, backend="libsodium", batch=batch)
    assert _bad_rows(got, expected, msgs, sigs, pks) == ([], 0)


def test_differential_reference_sample(differential):
    """The slow reference agrees with libsodium on a sample of the same rows."""
    msgs, sigs, pks, expected = differential
    for i in range(0, len(msgs), max(1, len(msgs) // 300)):
        assert ref.verify_zip215(msgs[i], sigs[i], pks[i]) == expected[i], i


# ---- 3. locating bad rows in batches -------------------------------------------------------

def _honest_rows(n, seed):
    cases = honest_and_corrupted(n, seed=seed, corrupt_fraction=0.0)
    msgs, sigs, pks, ok = (list(x) for x in zip(*cases))
    assert all(ok)
    return msgs, sigs, pks


@pytest.mark.parametrize("n,n_bad", [(2, 1), (64, 1), (1000, 1), (1000, 3), (4096, 17), (300, 300)])
def test_batch_locates_bad_rows(n, n_bad):
    msgs, sigs, pks = _honest_rows(n, seed=n + n_bad)
    rng = random.Random(n * 7 + n_bad)
    bad = sorted(rng.sample(range(n), n_bad))
    for i in bad:
        kind = rng.choice(["msg", "S", "R", "S+L"])
        if kind == "msg":
            msgs[i] = msgs[i] + b"\x00"
        elif kind == "S":
            s = bytearray(sigs[i])
            s[40] ^= 4
            sigs[i] = bytes(s)
        elif kind == "R":
            s = bytearray(sigs[i])
            s[3] ^= 1
            sigs[i] = bytes(s)
        else:
            s = int.from_bytes(sigs[i][32:], "little") + ref.L
            sigs[i] = sigs[i][:32] + s.to_bytes(32, "little")
    want = np.ones(n, dtype=bool)
    want[bad] = False
    for threads in (1, 2):
        got = verify_many(msgs, sigs, pks, backend="numba", batch=True, threads=threads)
        assert np.flatnonzero(got != want).tolist() == []


def test_malformed_rows_do_not_poison_the_batch():
    msgs, sigs, pks = _honest_rows(200, seed=9)
    want = np.ones(200, dtype=bool)
    for i, (s_len, p_len) in zip(range(0, 200, 23), [(0, 32), (63, 32), (65, 32), (64, 0), (64, 31), (64, 33), (64, 64), (10, 10), (128, 32)]):
        sigs[i] = (sigs[i] * 2)[:s_len]
        pks[i] = (pks[i] * 2)[:p_len]
        want[i] = False
    # Undecodable key and R, and S = 2^255.
    pks[5] = (2).to_bytes(32, "little")
    sigs[6] = (2).to_bytes(32, "little") + sigs[6][32:]
    sigs[7] = sigs[7][:32] + (2**255).to_bytes(32, "little")
    want[[5, 6, 7]] = False
    for batch in (False, True):
        got = verify_many(msgs, sigs, pks, backend="numba", batch=batch)
        assert got.tolist() == want.tolist()
    assert verify_one(msgs[0], sigs[0], pks[0][:31], backend="numba") is False
    assert verify_one(msgs[0], sigs[0][:63], pks[0], backend="numba") is False


def test_torsion_malleability_is_accepted_in_single_and_batch():
    """(R + T, S) with T small order is also valid under ZIP-215 (docs/design.md, "Validity rule"), so signature
    bytes are malleable: a batch of honest signatures plus their torsioned twins all pass."""
    rng = random.Random(10)
    msgs, sigs, pks, want = [], [], [], []
    for _ in range(40):
        a, r = rng.randrange(1, ref.L), rng.randrange(1, ref.L)
        msg = rng.randbytes(120)
        a_bytes = ref.compress(ref.base_mult(a))
        for t in range(8):
            r_bytes = ref.encode_with_torsion(r, t)
            msgs.append(msg)
            sigs.append(ref.sign_raw(msg, a, a_bytes, r, r_bytes))
            pks.append(a_bytes)
            want.append(True)
    assert all(ref.verify_zip215(m, s, k) for m, s, k in zip(msgs[::37], sigs[::37], pks[::37]))
    for batch in (False, True):
        assert verify_many(msgs, sigs, pks, backend="numba", batch=batch).tolist() == want


def test_all_bad_and_empty_batches():
    msgs, sigs, pks = _honest_rows(100, seed=11)
    wrong = [m + b"#" for m in msgs]  # every message changed after signing
    for batch in (False, True):
        assert not verify_many(wrong, sigs, pks, backend="numba", batch=batch).any()
    empty = verify_many([], [], [], backend="numba", batch=True)
    assert empty.shape == (0,) and empty.dtype == bool


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=300))
def test_distinct_keys_small_and_large_paths_agree(picks):
    """Small calls find distinct keys with a dict, large ones with np.unique: either way every
    row maps to its own key and the counts add up."""
    from engine.verification.numba_backend import _distinct_keys

    pool = np.random.default_rng(5).integers(0, 256, (10, 32), dtype=np.uint8)
    pks = np.ascontiguousarray(pool[picks])
    distinct, key_index, counts, names = _distinct_keys(pks)
    assert np.array_equal(distinct[key_index], pks)
    assert len(np.unique(distinct, axis=0)) == len(distinct) == len(counts)
    assert counts.tolist() == np.bincount(key_index, minlength=len(distinct)).tolist() and counts.sum() == len(pks)
    assert names is None or names == [k.tobytes() for k in distinct]


# ---- 4. every path of the backend: tables or not, suspect keys, thread split ----------------


@pytest.fixture
def fresh_cache(monkeypatch):
    """Install a key cache built by the test (the process-wide one is left as it was)."""
    from engine.verification import numba_backend

    def install(**kwargs):
        cache = numba_backend.KeyCache(**kwargs)
        monkeypatch.setattr(numba_backend, "KEY_CACHE", cache)
        numba_backend.forget_bad_share()
        return cache

    yield install
    numba_backend.forget_bad_share()


@pytest.mark.parametrize("tables", ["none", "all"])
@pytest.mark.parametrize("suspects", [False, True])
def test_adversarial_on_every_path(adversarial, fresh_cache, tables, suspects):
    """The reference verdict whether keys have tables or not (the budget), and whether their
    rows are checked singly as suspects or go through batches (bisection, x8 leaves)."""
    from engine.verification import numba_backend

    msgs, sigs, pks, expected = adversarial
    cache = fresh_cache(table_budget=0 if tables == "none" else 1 << 30)
    verify_many(msgs, sigs, pks, backend="numba", threads=1)
    names = list({bytes(k) for k in pks if len(k) == 32})
    keys = np.frombuffer(b"".join(names), np.uint8).reshape(-1, 32)
    for _ in range(2):  # every key seen twice: tables (within the budget)
        _, slots = cache.lookup(keys, np.ones(len(names), np.int64), names)
    if suspects:
        cache.forget_suspects()
        cache.record(slots, np.ones(len(slots)), np.ones(len(slots)))  # every key failed lately
        got_keys, _ = cache.lookup(keys, np.zeros(len(names), np.int64), names)
        assert got_keys.suspect.all()
    for threads in (1, 2):
        got = verify_many(msgs, sigs, pks, backend="numba", threads=threads)
        assert _bad_rows(got, expected, msgs, sigs, pks) == ([], 0), (tables, suspects, threads)
    decodable = int(cache.lookup(keys, np.zeros(len(names), np.int64), names)[0].ok.sum())
    assert cache.n_tables == (decodable if tables == "all" else 0)
    assert numba_backend.KEY_CACHE is cache


def test_key_cache_budget_and_suspects(fresh_cache, monkeypatch):
    from engine.verification import numba_backend

    assert numba_backend.TABLE_BYTES_PER_KEY == 15 * 1024
    monkeypatch.setenv("BIZRA_KEY_TABLES_MB", "1")
    assert numba_backend.KeyCache().table_capacity == (1 << 20) // (15 * 1024)
    monkeypatch.delenv("BIZRA_KEY_TABLES_MB")
    assert numba_backend.KeyCache().table_capacity == (256 << 20) // (15 * 1024) == 17_476
    for bad in ("abc", "-1"):
        monkeypatch.setenv("BIZRA_KEY_TABLES_MB", bad)
        with pytest.raises(ValueError, match="BIZRA_KEY_TABLES_MB"):
            numba_backend.KeyCache()
    monkeypatch.delenv("BIZRA_KEY_TABLES_MB")

    cache = fresh_cache(table_budget=3 * numba_backend.TABLE_BYTES_PER_KEY)
    keys = np.array([np.frombuffer(ref.public_key_from_seed(bytes([i]) * 32), np.uint8) for i in range(5)])
    tables, slots = cache.lookup(keys, np.ones(5, np.int64))
    assert (tables.table_of < 0).all() and cache.n_tables == 0  # seen once: no tables
    tables, _ = cache.lookup(keys, np.ones(5, np.int64))
    assert cache.n_tables == 3 and sorted(tables.table_of.tolist()) == [-1, -1, 0, 1, 2]  # the budget
    assert not tables.suspect.any()
    cache.record(slots, np.array([4.0, 4.0, 1.0, 0.0, 0.0]), np.array([4.0, 1.0, 1.0, 0.0, 0.0]))
    tables, _ = cache.lookup(keys, np.zeros(5, np.int64))
    assert tables.suspect.tolist() == [True, False, True, False, False]  # most rows failed
    cache.record(slots[:1], np.array([4.0]), np.array([0.0]))  # then 4 good rows: bad halves
    assert not cache.lookup(keys, np.zeros(5, np.int64))[0].suspect[0]
    cache.forget_suspects()
    assert not cache.lookup(keys, np.zeros(5, np.int64))[0].suspect.any()


def test_backend_rates_measure_both_backends_on_the_same_rows(monkeypatch):
    from engine.verification import api, numba_backend

    cases = honest_and_corrupted(64, seed=3)
    msgs, sigs, pks, _ = zip(*cases)
    rates = api.backend_rates(list(msgs), list(sigs), list(pks))
    assert set(rates) == {"numba", "libsodium"} and min(rates.values()) > 0
    monkeypatch.setattr(numba_backend, "verify_columns",
                        lambda cols, threads, batch: np.zeros(cols.n, bool))  # a broken verifier
    with pytest.raises(AssertionError, match="libsodium accepts"):
        api.backend_rates(list(msgs), list(sigs), list(pks))
