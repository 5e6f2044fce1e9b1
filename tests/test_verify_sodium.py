"""libsodium backend and the public verify API: agreement with plain PyNaCl, malformed rows,
configuration, and the generated dataset verifying exactly where it was not corrupted."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

import engine
from engine import verify_sodium
from engine.attestation import BODY_SIZE, binary_to_array, decode_bodies, well_formed_bodies
from engine.dataset import KIND_NAMES, generate_dataset, read_attestations, read_blocks, read_validators
from engine.keys import derive_seeds, sign_many
from engine.verify import resolve_backend, resolve_batch, resolve_threads, to_columns, verify_many, verify_one


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
    assert np.array_equal(verify_sodium.verify_columns_plain(to_columns(bodies, sigs, pks)), expected)
    for i in range(0, len(bodies), 37):
        assert verify_one(bytes(bodies[i]), bytes(sigs[i]), bytes(pks[i]), backend="libsodium") == expected[i]


def test_malformed_rows_are_false_never_exceptions() -> None:
    key = SigningKey(b"\x01" * 32)
    pk = bytes(key.verify_key)
    msgs = [b"", b"a", b"hello world" * 20, b"x", b"y", b"z"]
    sigs = [key.sign(m).signature for m in msgs]
    sigs[3] = sigs[3][:63]
    sigs[5] = b""
    pks = [pk, pk, pk, pk, pk[:31], pk]
    out = verify_many(msgs, sigs, pks, threads=2, backend="libsodium")
    assert out.tolist() == [True, True, True, False, False, False]
    cols = to_columns(msgs, sigs, pks)
    assert cols.msg_offsets.tolist() == [0, 0, 1, 221, 222, 223, 224]
    assert cols.well_formed.tolist() == [True, True, True, False, False, True & False]
    assert not verify_one(b"m", b"\0" * 65, pk, backend="libsodium")
    assert verify_many([], [], [], backend="libsodium").shape == (0,)
    wrong_width = verify_many(np.zeros((2, 5), np.uint8), np.zeros((2, 63), np.uint8), np.zeros((2, 32), np.uint8),
                              backend="libsodium")
    assert wrong_width.tolist() == [False, False]


def test_configuration_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_backend("libsodium") is verify_sodium
    monkeypatch.setenv("BIZRA_VERIFY_BACKEND", "libsodium")
    assert resolve_backend() is verify_sodium
    monkeypatch.setenv("BIZRA_VERIFY_BACKEND", "openssl")
    with pytest.raises(ValueError, match="BIZRA_VERIFY_BACKEND"):
        resolve_backend()
    with pytest.raises(ValueError, match="backend: unknown verify backend 'x'"):
        verify_many([b""], [b""], [b""], backend="x")
    monkeypatch.setenv("BIZRA_THREADS", "3")
    assert resolve_threads() == 3 and resolve_threads(1) == 1
    monkeypatch.setenv("BIZRA_THREADS", "many")
    with pytest.raises(ValueError, match="BIZRA_THREADS"):
        resolve_threads()
    monkeypatch.setenv("POI_BATCH_VERIFY", "0")
    assert resolve_batch() is False and resolve_batch(True) is True
    monkeypatch.setenv("POI_BATCH_VERIFY", "maybe")
    with pytest.raises(ValueError, match="POI_BATCH_VERIFY"):
        resolve_batch()


def test_engine_exports() -> None:
    assert engine.verify_one is verify_one and engine.verify_many is verify_many
    assert {"verify_one", "verify_many", "sign_many", "AttestationBody"} <= set(engine.__all__)


# ---- the generated dataset ---------------------------------------------------------------------


def test_generated_dataset_verifies_except_corrupted_rows(small_dataset) -> None:
    out, g = small_dataset
    df = read_attestations(out / "attestations.parquet", fields=True)
    assert df.equals(g.attestations)
    ok = verify_many(binary_to_array(df["body"], BODY_SIZE), binary_to_array(df["signature"], 64),
                     binary_to_array(df["public_key"], 32), threads=2, backend="libsodium")
    assert np.array_equal(ok, ~g.truth["corrupted"])
    kinds = {KIND_NAMES[k] for k in np.unique(g.truth["kind"])}
    assert kinds == set(KIND_NAMES)
    # Decoded columns are exactly the body's fields.
    body = binary_to_array(df["body"], BODY_SIZE)
    names = np.array(KIND_NAMES)[g.truth["kind"]]
    bad_body = ~well_formed_bodies(body)
    assert bad_body[names == "malformed"].all() and np.isin(names[bad_body], ["malformed", "duplicate"]).all()
    decoded = decode_bodies(body, strict=False)
    for name, col in decoded.items():
        got = binary_to_array(df[name], 32) if col.ndim == 2 else df[name].to_numpy()
        assert np.array_equal(got, col), name


def test_generated_dataset_structure(small_dataset) -> None:
    out, g = small_dataset
    validators = read_validators(out / "validators.parquet")
    blocks = read_blocks(out / "blocks.parquet")
    att = g.attestations
    kind = g.truth["kind"]
    names = np.array(KIND_NAMES)[kind]
    assert blocks.height == 80 and validators.height == 24 and att.height == 3000
    # A tree: one genesis (zero parent, height 0), unique hashes, every parent known at height - 1.
    height_of = dict(zip(blocks["hash"].to_list(), blocks["height"].to_list()))
    assert len(height_of) == blocks.height
    genesis = blocks.filter(pl.col("parent") == b"\0" * 32)
    assert genesis.height == 1 and genesis["height"][0] == 0
    for parent, h in zip(blocks["parent"].to_list(), blocks["height"].to_list()):
        assert parent == b"\0" * 32 or height_of[parent] == h - 1
    assert max(height_of.values()) < blocks.height - 1  # forks exist, so the tree is not one chain
    targets = att["target"].to_list()
    known = np.array([t in height_of for t in targets])
    assert not known[names == "orphan_target"].any() and known[names == "honest"].all()
    # Registered keys match except for key mismatches and unknown validators.
    reg = validators["public_key"].to_list()
    vidx = att["validator_index"].to_numpy()
    pks = att["public_key"].to_list()
    registered = np.array([v < len(reg) and reg[v] == pk for v, pk in zip(vidx, pks)])
    assert registered[np.isin(names, ["honest", "bad_signature", "equivocation", "orphan_target", "malformed"])].all()
    assert not registered[np.isin(names, ["key_mismatch", "unknown_validator"])].any()
    assert (vidx[names == "unknown_validator"] >= len(reg)).all()
    # Each equivocation has an earlier vote by the same validator in the same epoch, other target.
    epochs = att["epoch"].to_numpy()
    for i in np.flatnonzero(names == "equivocation"):
        same = np.flatnonzero((vidx == vidx[i]) & (epochs == epochs[i]))
        assert any(targets[j] != targets[i] for j in same)
    # Duplicates are exact copies of another row; ids (SHA-256 of body) repeat only there.
    ids = [hashlib.sha256(b).digest() for b in att["body"].to_list()]
    assert len(set(ids)) == len(ids) - int((names == "duplicate").sum())
    assert np.all(np.diff(att["timestamp_us"].to_numpy().astype(np.int64)) >= 0)


def test_generation_is_deterministic() -> None:
    a = generate_dataset(None, validators=5, blocks=12, attestations=300, seed=3, threads=1, progress=False)
    b = generate_dataset(None, validators=5, blocks=12, attestations=300, seed=3, threads=2, progress=False)
    c = generate_dataset(None, validators=5, blocks=12, attestations=300, seed=4, threads=2, progress=False)
    assert a.attestations.equals(b.attestations) and a.blocks.equals(b.blocks) and a.validators.equals(b.validators)
    assert np.array_equal(a.truth["kind"], b.truth["kind"])
    assert not a.attestations.equals(c.attestations)


def test_tiny_generation_edge_cases() -> None:
    g = generate_dataset(None, validators=1, blocks=1, attestations=50, seed=0, threads=2, progress=False)
    assert g.blocks.height == 1 and g.attestations.height == 50
    e = generate_dataset(None, validators=3, blocks=2, attestations=0, seed=0, progress=False)
    assert e.attestations.height == 0


def test_ambiguous_array_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="messages"):
        verify_many(np.zeros(110, np.uint8), [b"\0" * 64], [b"\0" * 32], backend="libsodium")
    with pytest.raises(ValueError, match="signatures"):
        verify_many([b"m"], np.zeros(64, np.uint8), [b"\0" * 32], backend="libsodium")


@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
def test_extreme_rates(rate: float) -> None:
    rates = {k: rate for k in ("bad_signature_rate", "equivocation_rate", "fork_rate", "orphan_rate",
                               "key_mismatch_rate", "unknown_validator_rate", "duplicate_rate", "malformed_rate")}
    for n in (1, 2, 7, 120):
        g = generate_dataset(None, validators=3, blocks=6, attestations=n, seed=n, threads=2, progress=False, **rates)
        assert g.attestations.height == n
        df = g.attestations
        ok = verify_many(binary_to_array(df["body"], BODY_SIZE), binary_to_array(df["signature"], 64),
                         binary_to_array(df["public_key"], 32), backend="libsodium")
        assert np.array_equal(ok, ~g.truth["corrupted"])
