"""libsodium backend: agreement with plain PyNaCl, one call per row, over any number of threads."""

from __future__ import annotations


import numpy as np
import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from engine.verification import sodium_backend
from engine.model.attestation import BODY_SIZE
from engine.verification.keys import derive_seeds, keypairs_from_seeds, sign_many
from engine.verification.api import to_columns, verify_many, verify_one


def pynacl_ok(msg: bytes, sig: bytes, pk: bytes) -> bool:
    """The oracle: plain PyNaCl, one call, exceptions meaning invalid."""
    try:
        VerifyKey(pk).verify(msg, sig)
        return True
    except (BadSignatureError, ValueError, TypeError, Exception):
        return False


@pytest.fixture
def signed(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = 400
    bodies = rng.integers(0, 256, size=(n, BODY_SIZE), dtype=np.uint8)
    seeds = derive_seeds(4, 9)
    idx = rng.integers(0, 9, size=n)
    sigs = sign_many(bodies, seeds, key_index=idx, threads=2)
    pks = np.stack([np.frombuffer(bytes(SigningKey(bytes(seeds[i])).verify_key), np.uint8) for i in idx])
    # Corrupt a third of the rows: one random bit of R, S, the body or the key.
    bad = rng.random(n) < 0.33
    for i in np.flatnonzero(bad):
        target = (sigs, bodies, pks)[rng.integers(0, 3)]
        target[i, rng.integers(0, target.shape[1])] ^= np.uint8(1 << rng.integers(0, 8))
    return bodies, sigs, pks


def test_verify_many_agrees_with_pynacl(signed) -> None:
    bodies, sigs, pks = signed
    expected = np.array([pynacl_ok(bytes(b), bytes(s), bytes(k)) for b, s, k in zip(bodies, sigs, pks)])
    assert 0 < expected.sum() < len(expected)
    for threads in (1, 2, 3):
        assert np.array_equal(verify_many(bodies, sigs, pks, threads=threads, backend="libsodium"), expected)
    as_lists = verify_many([bytes(b) for b in bodies], [bytes(s) for s in sigs], [bytes(k) for k in pks],
                           threads=2, backend="libsodium")
    assert np.array_equal(as_lists, expected)
    assert np.array_equal(sodium_backend.verify_columns_plain(to_columns(bodies, sigs, pks)), expected)
    for i in range(0, len(bodies), 37):
        assert verify_one(bytes(bodies[i]), bytes(sigs[i]), bytes(pks[i]), backend="libsodium") == expected[i]








# ---- the generated dataset ---------------------------------------------------------------------














def test_sign_into_fills_only_its_rows() -> None:
    seeds = derive_seeds(5, 3)
    _, secret = keypairs_from_seeds(seeds)
    bodies = np.arange(10 * 7, dtype=np.uint8).reshape(10, 7)
    key_index = np.arange(10) % 3
    out = np.zeros((10, 64), np.uint8)
    sodium_backend.sign_into(bodies, secret, key_index, out, range(2, 6))
    whole = sign_many(bodies, seeds, key_index=key_index, threads=1)
    assert np.array_equal(out[2:6], whole[2:6]) and not out[:2].any() and not out[6:].any()
