"""Public Ed25519 suites (Wycheproof, CCTV, speccheck) and RFC 8032 vectors through the
production API: the Numba backend must reproduce every ZIP-215 verdict of
../shared/vectors/expected_zip215.json in single verification (verify_one, and verify_many with
batch=False) AND in batch verification (each suite and all suites as one batch, random
sub-batches of random sizes in random order, one and two threads).

The libsodium backend is checked against libsodium itself (it is stricter than ZIP-215 on these
suites; see ../shared/vectors/README.md).
"""

import random

import numpy as np
import pytest

from ed25519_cases import RFC8032_VECTORS, libsodium_verify, vector_cases
from engine import verify_many, verify_one

VECTORS = vector_cases()
SUITES = ["wycheproof", "cctv", "speccheck"]


def _suite(suite: str | None):
    rows = [v for v in VECTORS if suite is None or v[0] == suite]
    msgs = [v[2] for v in rows]
    sigs = [v[3] for v in rows]
    pks = [v[4] for v in rows]
    expected = np.array([v[5] for v in rows], dtype=bool)
    ids = [f"{v[0]}:{v[1]}" for v in rows]
    return msgs, sigs, pks, expected, ids


def _mismatches(got, expected, ids):
    got = np.asarray(got, dtype=bool)
    assert got.shape == expected.shape
    return [(ids[i], bool(expected[i])) for i in np.flatnonzero(got != expected)]


@pytest.mark.parametrize("suite", SUITES)
def test_numba_verify_one_matches_every_verdict(suite):
    msgs, sigs, pks, expected, ids = _suite(suite)
    got = [verify_one(m, s, k, backend="numba") for m, s, k in zip(msgs, sigs, pks)]
    assert all(isinstance(g, bool) for g in got)
    assert _mismatches(got, expected, ids) == []


@pytest.mark.parametrize("suite", SUITES)
def test_numba_single_verify_many_matches_every_verdict(suite):
    msgs, sigs, pks, expected, ids = _suite(suite)
    got = verify_many(msgs, sigs, pks, backend="numba", batch=False, threads=1)
    assert got.dtype == bool
    assert _mismatches(got, expected, ids) == []


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("suite", SUITES + [None])
def test_numba_batch_whole_suite_as_one_batch(suite, threads):
    """The whole suite (or all three suites together: suite None) as one call with batch=True."""
    msgs, sigs, pks, expected, ids = _suite(suite)
    got = verify_many(msgs, sigs, pks, backend="numba", batch=True, threads=threads)
    assert got.dtype == bool
    assert _mismatches(got, expected, ids) == []


@pytest.mark.parametrize("suite", SUITES)
def test_numba_batch_only_accepted_rows(suite):
    """A batch of only the accepted vectors: the batch equation itself must hold (no fallback)."""
    msgs, sigs, pks, expected, ids = _suite(suite)
    keep = np.flatnonzero(expected)
    got = verify_many(
        [msgs[i] for i in keep], [sigs[i] for i in keep], [pks[i] for i in keep], backend="numba", batch=True
    )
    assert got.all()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_numba_batch_random_sub_batches_shuffled(seed):
    """All suites shuffled together, cut into sub-batches of random sizes (1 .. 400)."""
    msgs, sigs, pks, expected, ids = _suite(None)
    rng = random.Random(seed)
    order = list(range(len(msgs)))
    rng.shuffle(order)
    pos = 0
    bad = []
    while pos < len(order):
        size = rng.choice([1, 2, 3, 7, 8, 31, 64, 100, 255, 400])
        part = order[pos : pos + size]
        got = verify_many(
            [msgs[i] for i in part],
            [sigs[i] for i in part],
            [pks[i] for i in part],
            backend="numba",
            batch=True,
            threads=rng.choice([1, 2]),
        )
        bad += _mismatches(got, expected[part], [ids[i] for i in part])
        pos += size
    assert bad == []


def test_numba_batch_with_duplicated_rows():
    """Every vector twice (same key many times, identical rows) in one shuffled batch."""
    msgs, sigs, pks, expected, ids = _suite(None)
    order = list(range(len(msgs))) * 2
    random.Random(4).shuffle(order)
    got = verify_many(
        [msgs[i] for i in order], [sigs[i] for i in order], [pks[i] for i in order], backend="numba", batch=True
    )
    assert _mismatches(got, expected[order], [ids[i] for i in order]) == []


@pytest.mark.parametrize("backend", ["numba", "libsodium"])
def test_rfc8032_vectors(backend):
    seeds, pks, msgs, sigs = zip(*[(bytes.fromhex(v[1]), bytes.fromhex(v[2]), bytes.fromhex(v[3]), bytes.fromhex(v[4])) for v in RFC8032_VECTORS])
    for m, s, k in zip(msgs, sigs, pks):
        assert verify_one(m, s, k, backend=backend) is True
        assert verify_one(m + b"\x01", s, k, backend=backend) is False
    for batch in (False, True):
        assert verify_many(list(msgs), list(sigs), list(pks), backend=backend, batch=batch).tolist() == [True] * 5
        # Messages rotated against their signatures: every row is wrong.
        rot = list(msgs[1:]) + [msgs[0]]
        assert verify_many(rot, list(sigs), list(pks), backend=backend, batch=batch).tolist() == [False] * 5


@pytest.mark.parametrize("batch", [False, True])
def test_libsodium_backend_matches_libsodium_on_the_suites(batch):
    msgs, sigs, pks, expected, ids = _suite(None)
    want = np.array([libsodium_verify(m, s, k) for m, s, k in zip(msgs, sigs, pks)])
    got = verify_many(msgs, sigs, pks, backend="libsodium", batch=batch)
    assert _mismatches(got, want, ids) == []
