"""Keys: deterministic seeds, sign_many vs plain PyNaCl, the 0600 key file, key admission."""

from __future__ import annotations

import os
import stat

import numpy as np
import polars as pl
import pytest
from nacl.signing import SigningKey

from engine.dataset import keygen, read_validators, validators_frame, write_parquet_atomic
from engine.errors import InputError, KeyAdmissionError, KeyReason
from engine.keys import (
    check_admissible,
    derive_seeds,
    keypairs_from_seeds,
    read_secret_keys,
    sign_many,
    write_secret_keys,
)

# ---- slow obvious twin: Edwards25519 with Python ints (public data only) ----------------------
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def ref_decode(enc: bytes) -> tuple[int, int] | None:
    """RFC 8032 decoding, rejecting y >= p (the admission policy's canonical form)."""
    y = int.from_bytes(enc, "little") & ((1 << 255) - 1)
    sign = enc[31] >> 7
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * v**3 * pow(u * v**7, (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    if v * x * x % P != u:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return x, y


def ref_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P, (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P)


def ref_mul(k: int, a: tuple[int, int]) -> tuple[int, int]:
    acc = (0, 1)
    while k:
        if k & 1:
            acc = ref_add(acc, a)
        a, k = ref_add(a, a), k >> 1
    return acc


def ref_reason(enc: bytes) -> KeyReason | None:
    if len(enc) != 32:
        return KeyReason.WRONG_LENGTH
    if int.from_bytes(enc, "little") & ((1 << 255) - 1) >= P:
        return KeyReason.NON_CANONICAL
    point = ref_decode(enc)
    if point is None:
        return KeyReason.NOT_ON_CURVE
    if ref_mul(8, point) == (0, 1):
        return KeyReason.SMALL_ORDER
    return None if ref_mul(L, point) == (0, 1) else KeyReason.NOT_TORSION_FREE


def encode_point(p: tuple[int, int]) -> bytes:
    x, y = p
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


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


def test_keygen_writes_admissible_validators(tmp_path, capsys) -> None:
    df = keygen(tmp_path, 6, weight=32, seed=9)
    assert df.schema == {"index": pl.UInt32, "public_key": pl.Binary, "weight": pl.Int64}
    assert stat.S_IMODE((tmp_path / "validator_keys.secret").stat().st_mode) == 0o600
    back = read_validators(tmp_path / "validators.parquet")
    assert back.equals(df) and back["weight"].to_list() == [32] * 6
    seeds = read_secret_keys(tmp_path / "validator_keys.secret")
    assert [bytes(SigningKey(bytes(s)).verify_key) for s in seeds] == back["public_key"].to_list()
    assert all(ref_reason(pk) is None for pk in back["public_key"].to_list())
    assert keygen(tmp_path / "again", 6, weight=32, seed=9).equals(df)
    assert not keygen(tmp_path / "random", 6).equals(df)
    out = capsys.readouterr()
    assert all(bytes(s).hex() not in out.out + out.err for s in seeds)


# ---- admission ----------------------------------------------------------------------------------

SMALL_ORDER_HEX = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
]


def test_admission_named_cases() -> None:
    honest = bytes(SigningKey(b"\x07" * 32).verify_key)
    assert check_admissible(honest) is None
    for h in SMALL_ORDER_HEX:
        assert check_admissible(bytes.fromhex(h)) == ref_reason(bytes.fromhex(h))
        assert check_admissible(bytes.fromhex(h)) in (KeyReason.SMALL_ORDER, KeyReason.NOT_ON_CURVE)
    torsion = ref_decode(bytes.fromhex(SMALL_ORDER_HEX[4]))
    torsioned = encode_point(ref_add(ref_decode(honest), torsion))
    assert check_admissible(torsioned) == KeyReason.NOT_TORSION_FREE == ref_reason(torsioned)
    non_canonical = (P + 1).to_bytes(32, "little")  # encodes y = 1 with y >= p
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


def test_read_validators_rejects_inadmissible_key(tmp_path) -> None:
    pks, _ = keypairs_from_seeds(derive_seeds(1, 3))
    pks[1] = np.frombuffer(bytes.fromhex(SMALL_ORDER_HEX[4]), np.uint8)
    write_parquet_atomic(validators_frame(pks, np.ones(3, np.int64)), tmp_path / "v.parquet")
    with pytest.raises(KeyAdmissionError, match=r"v\.parquet: validator 1 public key c7176a.* small_order"):
        read_validators(tmp_path / "v.parquet")
    assert read_validators(tmp_path / "v.parquet", admit=False).height == 3


def test_keygen_refuses_to_overwrite_secret_keys(tmp_path) -> None:
    keygen(tmp_path, 2, seed=1)
    before = (tmp_path / "validator_keys.secret").read_bytes()
    with pytest.raises(InputError, match="refusing to overwrite"):
        keygen(tmp_path, 2)
    assert (tmp_path / "validator_keys.secret").read_bytes() == before
