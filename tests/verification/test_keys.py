"""Keys: deterministic seeds, sign_many vs plain PyNaCl, the 0600 key file, key admission."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from nacl.signing import SigningKey

from engine.model.errors import InputError, KeyReason
from tests.support import ref_admission
from tests.support.ref_admission import SIGN_BIT_SMALL_ORDER_HEX, SMALL_ORDER_HEX, encode_point, ref_add, ref_decode, ref_reason
from engine.verification.keys import (
    check_admissible,
    derive_seeds,
    keypairs_from_seeds,
    read_secret_keys,
    sign_many,
    write_secret_keys,
)

# ---- seeds and signing ------------------------------------------------------------------------


def test_derive_seeds_deterministic_and_distinct() -> None:
    a, b = derive_seeds(5, 10), derive_seeds(5, 10)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, derive_seeds(6, 10))
    assert len({bytes(r) for r in a}) == 10
    assert not np.array_equal(a, derive_seeds(5, 10, label="unregistered"))


def test_keypairs_match_pynacl() -> None:
    seeds = derive_seeds(1, 5)
    pks, sks = keypairs_from_seeds(seeds)
    for seed, pk, sk in zip(seeds, pks, sks):
        key = SigningKey(bytes(seed))
        assert bytes(pk) == bytes(key.verify_key)
        assert bytes(sk) == bytes(key._signing_key)


def test_sign_many_matches_pynacl_and_threads_agree(rng: np.random.Generator) -> None:
    n = 300
    bodies = rng.integers(0, 256, size=(n, 110), dtype=np.uint8)
    seeds = derive_seeds(2, 7)
    idx = rng.integers(0, 7, size=n)
    one = sign_many(bodies, seeds, key_index=idx, threads=1)
    assert np.array_equal(one, sign_many(bodies, seeds, key_index=idx, threads=2))
    assert np.array_equal(one, sign_many(bodies, seeds, key_index=idx, threads=5))
    per_row = sign_many([bytes(b) for b in bodies], seeds[idx], threads=2)
    assert np.array_equal(one, per_row)
    keys = [SigningKey(bytes(s)) for s in seeds]
    for i in range(0, n, 17):
        assert bytes(one[i]) == keys[idx[i]].sign(bytes(bodies[i])).signature
    assert np.array_equal(one[:5], sign_many(bodies[:5], [keys[j] for j in idx[:5]], threads=1))


def test_sign_many_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="keys"):
        sign_many(np.zeros((2, 110), np.uint8), [b"\0" * 31, b"\0" * 32])
    with pytest.raises(ValueError, match="key_index"):
        sign_many(np.zeros((2, 110), np.uint8), derive_seeds(1, 1), key_index=[0, 1])
    assert sign_many(np.zeros((0, 110), np.uint8), derive_seeds(1, 1), key_index=[]).shape == (0, 64)


# ---- key files ----------------------------------------------------------------------------------


def test_secret_key_file_mode_0600_and_round_trip(tmp_path) -> None:
    old = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        path = write_secret_keys(tmp_path / "k.secret", derive_seeds(3, 4))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert np.array_equal(read_secret_keys(path), derive_seeds(3, 4))
    assert [p.name for p in tmp_path.iterdir()] == ["k.secret"]
    path.chmod(0o644)
    with pytest.raises(InputError, match="mode 644"):
        read_secret_keys(path)
    path.chmod(0o600)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(InputError, match="truncated"):
        read_secret_keys(path)




# ---- admission ----------------------------------------------------------------------------------



def test_admission_named_cases() -> None:
    honest = bytes(SigningKey(b"\x07" * 32).verify_key)
    assert check_admissible(honest) is None
    for h in SMALL_ORDER_HEX:
        assert check_admissible(bytes.fromhex(h)) == ref_reason(bytes.fromhex(h))
        assert check_admissible(bytes.fromhex(h)) in (KeyReason.SMALL_ORDER, KeyReason.NOT_ON_CURVE)
    for h in SIGN_BIT_SMALL_ORDER_HEX:  # was NOT_TORSION_FREE
        assert check_admissible(bytes.fromhex(h)) == KeyReason.SMALL_ORDER == ref_reason(bytes.fromhex(h)), h
    torsion = ref_decode(bytes.fromhex(SMALL_ORDER_HEX[4]))
    torsioned = encode_point(ref_add(ref_decode(honest), torsion))
    assert check_admissible(torsioned) == KeyReason.NOT_TORSION_FREE == ref_reason(torsioned)
    non_canonical = (ref_admission.P + 1).to_bytes(32, "little")  # encodes y = 1 with y >= p
    assert check_admissible(non_canonical) == KeyReason.NON_CANONICAL
    assert check_admissible(honest[:31]) == KeyReason.WRONG_LENGTH


def test_admission_agrees_with_python_reference_on_random_bytes(rng: np.random.Generator) -> None:
    seen = set()
    for _ in range(60):
        enc = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
        reason = check_admissible(enc)
        assert reason == ref_reason(enc), enc.hex()
        seen.add(reason)
    assert {KeyReason.NOT_ON_CURVE, KeyReason.NOT_TORSION_FREE} <= seen




