"""Public Ed25519 suites (Wycheproof, CCTV, speccheck) and RFC 8032 vectors through the
production API: the Numba backend must reproduce every ZIP-215 verdict of
engine/verification/vectors/expected_zip215.json in single verification (verify_one, and verify_many with
batch=False) AND in batch verification (each suite and all suites as one batch, random
sub-batches of random sizes in random order, one and two threads).

The suites are loaded by engine/verification/conformance.py, the same code the conformance gate of
``bizra gates`` uses; its ``conformance_mismatches`` is checked here too, including that it
notices a wrong verdict. The libsodium backend is checked against libsodium itself (it is
stricter than ZIP-215 on these suites; see engine/verification/vectors/README.md).
"""

import random

import numpy as np
import pytest

from tests.support.ed25519_cases import RFC8032_VECTORS, libsodium_verify
from engine import verify_many, verify_one
from engine.model.errors import InputError
from engine.verification.conformance import MODES, SUITES, Vector, conformance_mismatches, load_vectors, vectors_dir

VECTORS = load_vectors()


def _suite(suite: str | None):
    rows = [v for v in VECTORS if suite is None or v.suite == suite]
    msgs = [v.msg for v in rows]
    sigs = [v.sig for v in rows]
    pks = [v.pk for v in rows]
    expected = np.array([v.expected for v in rows], dtype=bool)
    ids = [v.name for v in rows]
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
@pytest.mark.parametrize("suite", list(SUITES) + [None])
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


def test_suites_load_with_their_published_sizes():
    """The vectors README: 151 Wycheproof tests, 914 CCTV vectors (826 accepted), 12 speccheck
    cases with ZIP-215 verdicts V V V V V V X X X V V V."""
    by_suite = {s: [v for v in VECTORS if v.suite == s] for s in SUITES}
    assert [len(by_suite[s]) for s in SUITES] == [151, 914, 12]
    assert sum(v.expected for v in by_suite["cctv"]) == 826
    assert [v.expected for v in by_suite["speccheck"]] == [True] * 6 + [False] * 3 + [True] * 3
    assert all(len(v.pk) == 32 for v in VECTORS)


@pytest.mark.parametrize("mode", MODES)
def test_conformance_check_passes_and_notices_a_wrong_verdict(mode):
    assert conformance_mismatches(VECTORS, mode, threads=2) == []
    flipped = {0, len(VECTORS) - 1}  # first Wycheproof test, last speccheck case
    doctored = [v._replace(expected=not v.expected) if i in flipped else v for i, v in enumerate(VECTORS)]
    assert conformance_mismatches(doctored, mode, threads=2) == [VECTORS[0].name, VECTORS[-1].name]


def test_conformance_check_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        conformance_mismatches(VECTORS[:1], "bulk")


def test_vectors_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BIZRA_VECTORS_DIR", str(tmp_path))
    assert vectors_dir() == tmp_path
    with pytest.raises(InputError, match="expected_zip215.json: no such file"):
        load_vectors()
    (tmp_path / "expected_zip215.json").write_text("{not json")
    with pytest.raises(InputError, match="expected_zip215.json: not JSON"):
        load_vectors()


def test_vector_names_are_suite_and_id():
    assert Vector("cctv", 7, b"", b"", b"", True).name == "cctv:7"
