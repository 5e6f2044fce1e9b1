"""Synthetic data, in one place: the ``bizra generate`` dataset, block trees with forks and the
votes on them, and signed rows. Tests, benchmarks (scripts/, asv_benchmarks/), the determinism
check, the load test, the release gates and the notebooks all draw from here, so a change to
how test data looks is made once. Seeded keys are test data only: anyone who knows the seed
knows every key.

Dataset generator model (deterministic for a seed; numpy Generator(PCG64)):
  1. validators: keys from derive_seeds(seed) (test keys only), integer weights 1..100;
  2. blocks: a main chain (heights 0..M-1) plus fork branches of geometric length hanging off
     random main-chain blocks; hash = SHA-256("bizra-block/v1" | seed | kind | i);
  3. epochs advance along the main chain (M / E blocks per epoch); in each epoch about 95% of
     validators vote once for a block at or just below that epoch's main-chain tip, sometimes for
     a recent fork block;
  4. anomalies, as fractions of all rows: orphan targets (random hashes), keys that are not the
     validator's registered key, unknown validator indices, equivocations (second vote, same
     validator and epoch, other target), corrupted signatures (one bit flipped in R, S or the
     body's nonce after signing), exact duplicates, and (off by default) malformed bodies
     (version 2, validly signed);
  5. rows are ordered by timestamp and signed with libsodium in threads, chunk by chunk.

Example::

    g = generate_dataset("data", validators=1000, blocks=5000, attestations=200_000, seed=1)
    hashes, parents, main = chain_with_forks(10_000, np.random.default_rng(1))
    cols = signed_columns(16_384, 1_000, seed=3)
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from engine.model.attestation import BODY_SIZE, attestations_frame, binary_column, decode_bodies, encode_bodies
from engine.model.chain import CHAIN_ID, EPOCH_US, GENESIS_TIME_US
from engine.model.errors import InputError
from engine.pipeline.progress import Progress
from engine.tables.parquet import write_parquet_atomic
from engine.tables.validators import validators_frame
from engine.verification import keys as keymod
from engine.verification import sodium_backend
from engine.verification.api import VerifyColumns, resolve_threads, to_columns

__all__ = [
    "KIND_NAMES",
    "Chain",
    "GeneratedDataset",
    "SignedRows",
    "chain_with_forks",
    "generate_dataset",
    "signed_attestations",
    "signed_columns",
    "validator_columns",
    "votes_near_main",
    "with_bad_rows",
]

# Truth codes returned by generate_dataset (never written to the Parquet files).
KIND_NAMES = ("honest", "bad_signature", "equivocation", "orphan_target", "key_mismatch", "unknown_validator",
              "duplicate", "malformed")
HONEST, BAD_SIG, EQUIVOCATION, ORPHAN, KEY_MISMATCH, UNKNOWN_VALIDATOR, DUPLICATE, MALFORMED = range(len(KIND_NAMES))
_SIGN_CHUNK = 65_536


# ---- block trees and votes ------------------------------------------------------------------


class Chain(NamedTuple):
    """A block tree: (n, 32) hashes and parents (genesis first, parent all-zero), and the
    indices of the main-chain blocks in order."""

    hashes: np.ndarray
    parents: np.ndarray
    main: np.ndarray


def chain_with_forks(n_blocks: int, rng: np.random.Generator, *, fork_rate: float = 0.1,
                     hashes: np.ndarray | None = None) -> Chain:
    """A chain whose blocks fork off one of the last 10 main blocks with probability ``fork_rate``.

    Hashes are random (never zero) unless given. Blocks are listed parents first. Example:
    ``chain_with_forks(1000, np.random.default_rng(1)).hashes.shape == (1000, 32)``.
    """
    if hashes is None:
        hashes = rng.integers(0, 256, (n_blocks, 32), dtype=np.uint8)
        hashes[:, 0] |= 1  # never the zero hash
    on_main = rng.random(n_blocks) >= fork_rate
    on_main[0] = True
    main_pos = np.cumsum(on_main) - 1  # index into the main chain of the latest main block
    main = np.flatnonzero(on_main)
    idx = np.arange(1, n_blocks)
    prev_main = main[main_pos[idx - 1]]
    back = main[np.maximum(0, main_pos[idx - 1] - rng.integers(0, 10, idx.size))]
    parent_idx = np.where(on_main[1:], prev_main, back)
    parents = np.zeros_like(hashes)
    parents[1:] = hashes[parent_idx]
    return Chain(hashes, parents, main)


def votes_near_main(main: np.ndarray, n_validators: int, n_epochs: int, rng: np.random.Generator, *,
                    every_epoch: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(validators, epochs, target block indices): each vote targets a main-chain block near its
    epoch's height. One vote per validator at a random epoch, or (``every_epoch``) one per
    validator per epoch."""
    if every_epoch:
        v = np.tile(np.arange(n_validators, dtype=np.int64), n_epochs)
        e = np.repeat(np.arange(n_epochs, dtype=np.int64), n_validators)
    else:
        v = np.arange(n_validators, dtype=np.int64)
        e = rng.integers(0, n_epochs, n_validators).astype(np.int64)
    at = ((e + 1) * (main.size - 1)) // n_epochs
    lag = rng.integers(0, max(1, main.size // (4 * n_epochs)), v.size)
    return v, e, main[np.clip(at - lag, 0, main.size - 1)]


# ---- signed rows ------------------------------------------------------------------------------


def signed_columns(n_rows: int, n_keys: int, *, seed: int = 1, msg_len: int = 120) -> VerifyColumns:
    """n_rows honest signatures over random msg_len-byte messages from n_keys keys.

    Row i is signed by key i % n_keys. Example: ``signed_columns(8, 2).n == 8``.
    """
    rng = np.random.default_rng(seed)
    seeds = np.frombuffer(b"".join(rng.bytes(32) for _ in range(n_keys)), np.uint8).reshape(n_keys, 32)
    public_keys, _ = keymod.keypairs_from_seeds(seeds)
    owner = np.arange(n_rows) % n_keys
    msgs = rng.integers(0, 256, size=(n_rows, msg_len), dtype=np.uint8)
    sigs = keymod.sign_many(msgs, seeds, key_index=owner, threads=1)
    return to_columns(msgs, sigs, public_keys[owner].reshape(n_rows, 32))


class ValidatorColumn(NamedTuple):
    """Honest rows of one column: messages (n, len), signatures (n, 64), public keys (n, 32),
    and the validator of each row."""

    messages: np.ndarray
    signatures: np.ndarray
    public_keys: np.ndarray
    owner: np.ndarray


def validator_columns(n_validators: int, n_columns: int, rows: int, *, seed: int,
                      msg_len: int = 110) -> list[ValidatorColumn]:
    """Columns of honest signatures as a validator set produces them: each row signed by a
    validator drawn uniformly from n_validators (validator v's key comes from a seed derived
    from v, so every column of a set shares its keys). Example:
    ``validator_columns(10_000, 4, 16_384, seed=1)[0].owner.max() < 10_000``."""
    rng = np.random.default_rng(seed)
    owners = rng.integers(0, n_validators, (n_columns, rows))
    used = np.unique(owners)
    seeds = np.zeros((len(used), 32), np.uint8)
    seeds[:, :8] = used.astype("<u8").view(np.uint8).reshape(-1, 8)
    public_keys, _ = keymod.keypairs_from_seeds(seeds)
    columns = []
    for owner in owners:
        slot = np.searchsorted(used, owner)
        msgs = rng.integers(0, 256, (rows, msg_len), dtype=np.uint8)
        sigs = keymod.sign_many(msgs, seeds, key_index=slot)
        columns.append(ValidatorColumn(msgs, sigs, public_keys[slot], owner))
    return columns


def with_bad_rows(column: ValidatorColumn, mode: str, share: float, n_validators: int, *,
                  seed: int) -> tuple[VerifyColumns, np.ndarray]:
    """The column with one message bit flipped after signing (so S < L and R still decodes)
    in a `share` of its rows ("scattered": tampered signatures all over the set) or in every
    row of a `share` of the validators ("concentrated": a few validators whose every
    signature fails, as after a wrong key or domain tag; the same validators for any seed);
    mode "clean" flips nothing. Returns the verify columns and the expected verdicts."""
    rng = np.random.default_rng(seed)
    if mode == "scattered":
        bad = rng.random(len(column.owner)) < share
    elif mode == "concentrated":
        bad = (np.random.default_rng(99).random(n_validators) < share)[column.owner]
    elif mode == "clean":
        bad = np.zeros(len(column.owner), bool)
    else:
        raise ValueError(f"mode: expected clean, scattered or concentrated, got {mode!r}")
    msgs = column.messages.copy()
    msgs[bad, msgs.shape[1] // 2] ^= 1
    return to_columns(msgs, column.signatures, column.public_keys), ~bad


class SignedRows(NamedTuple):
    """Honest attestations: bodies (n, 110), signatures (n, 64), public keys (n, 32); row i is
    signed by seeds[owner[i]] and names validator owner[i]."""

    bodies: np.ndarray
    signatures: np.ndarray
    public_keys: np.ndarray
    seeds: np.ndarray
    owner: np.ndarray


def signed_attestations(n: int, n_keys: int, *, seed: int, label: str = "synthetic",
                        threads: int | None = None) -> SignedRows:
    """n honest attestations from n_keys seeded test keys (row i by key i % n_keys), random fields.

    Example: ``signed_attestations(4, 2, seed=1).bodies.shape == (4, 110)``.
    """
    rng = np.random.default_rng(seed)
    seeds = keymod.derive_seeds(seed, n_keys, label=label)
    public_keys, _ = keymod.keypairs_from_seeds(seeds)
    owner = np.arange(n) % n_keys
    bodies = encode_bodies({
        "chain_id": np.full(n, CHAIN_ID, np.uint32), "validator_index": owner.astype(np.uint32),
        "epoch": rng.integers(0, 1 << 20, n, dtype=np.uint64),
        "target": rng.integers(0, 256, (n, 32), dtype=np.uint8),
        "evidence_root": rng.integers(0, 256, (n, 32), dtype=np.uint8),
        "poi_score": rng.integers(0, 1_000_001, n, dtype=np.uint32),
        "timestamp_us": rng.integers(1_700_000_000_000_000, 1_800_000_000_000_000, n, dtype=np.uint64),
        "nonce": rng.integers(0, 1 << 63, n, dtype=np.uint64),
    })
    sigs = keymod.sign_many(bodies, seeds, key_index=owner, threads=threads)
    return SignedRows(bodies, sigs, public_keys[owner], seeds, owner)


# ---- generator ----------------------------------------------------------------------------


@dataclasses.dataclass
class GeneratedDataset:
    """What generate_dataset made; ``truth`` is for tests (never written to disk).

    truth["kind"]: uint8 codes into KIND_NAMES per attestation row; truth["corrupted"]: bool,
    the signature was deliberately broken after signing (duplicates of such rows too).
    """

    validators: pl.DataFrame
    blocks: pl.DataFrame
    attestations: pl.DataFrame
    truth: dict[str, np.ndarray]
    seconds: dict[str, float]


def _sha256_rows(prefix: bytes, n: int) -> np.ndarray:
    raw = b"".join(hashlib.sha256(prefix + struct.pack("<Q", i)).digest() for i in range(n))
    return np.frombuffer(raw, np.uint8).reshape(n, 32).copy()


def _make_blocks(rng: np.random.Generator, seed: int, n_blocks: int, fork_rate: float) -> dict[str, np.ndarray]:
    n_fork = min(int(round(n_blocks * fork_rate)), max(n_blocks - 2, 0))
    n_main = n_blocks - n_fork
    main_hash = _sha256_rows(b"bizra-block/v1\0%d\0main\0" % seed, n_main)
    # Fork branches: geometric lengths (mean 2), each starting off a random non-tip main block.
    lengths = np.zeros(0, dtype=np.int64)
    while lengths.sum() < n_fork:
        lengths = np.concatenate([lengths, rng.geometric(0.5, size=max(n_fork // 2, 1))])
    lengths = lengths[: np.searchsorted(np.cumsum(lengths), n_fork) + 1] if n_fork else lengths[:0]
    if n_fork:
        lengths[-1] -= lengths.sum() - n_fork
    lengths = lengths[lengths > 0]
    base_height = rng.integers(0, max(n_main - 1, 1), size=len(lengths))
    branch = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.arange(n_fork) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    fork_hash = _sha256_rows(b"bizra-block/v1\0%d\0fork\0" % seed, n_fork)
    fork_height = base_height[branch] + 1 + pos
    fork_parent = np.where((pos == 0)[:, None], main_hash[base_height[branch]], np.roll(fork_hash, 1, axis=0))
    hashes = np.concatenate([main_hash, fork_hash])
    parents = np.concatenate([np.zeros((1, 32), np.uint8), main_hash[:-1], fork_parent])
    heights = np.concatenate([np.arange(n_main), fork_height]).astype(np.uint64)
    order = np.argsort(heights, kind="stable")  # parents before children, main chain first per height
    return {
        "hash": hashes[order], "parent": parents[order], "height": heights[order],
        "main_hash": main_hash, "fork_hash": fork_hash, "fork_height": fork_height.astype(np.int64),
    }


def generate_dataset(
    out_dir: str | os.PathLike[str] | None,
    *,
    validators: int,
    blocks: int,
    attestations: int,
    seed: int,
    bad_signature_rate: float = 0.02,
    equivocation_rate: float = 0.0005,
    fork_rate: float = 0.05,
    orphan_rate: float = 0.003,
    key_mismatch_rate: float = 0.003,
    unknown_validator_rate: float = 0.001,
    duplicate_rate: float = 0.002,
    malformed_rate: float = 0.0,
    threads: int | None = None,
    progress: bool | None = None,
) -> GeneratedDataset:
    """Generate (and with ``out_dir``, write) a synthetic dataset; see the module docstring.

    Example: ``generate_dataset("data", validators=1000, blocks=5000, attestations=200_000, seed=1)``.
    """
    if validators < 1 or blocks < 1 or attestations < 0:
        raise InputError("validators and blocks must be >= 1, attestations >= 0")
    for name, rate in [("bad_signature_rate", bad_signature_rate), ("equivocation_rate", equivocation_rate),
                       ("fork_rate", fork_rate), ("orphan_rate", orphan_rate), ("key_mismatch_rate", key_mismatch_rate),
                       ("unknown_validator_rate", unknown_validator_rate), ("duplicate_rate", duplicate_rate),
                       ("malformed_rate", malformed_rate)]:
        if not 0.0 <= rate <= 1.0:
            raise InputError(f"{name}: must be within 0..1, got {rate}")
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    rng = np.random.default_rng(np.random.PCG64(seed))
    n = attestations
    V = validators

    seeds = keymod.derive_seeds(seed, V)
    pks, secrets = keymod.keypairs_from_seeds(seeds)
    weights = rng.integers(1, 101, size=V, dtype=np.int64)
    blk = _make_blocks(rng, seed, blocks, fork_rate)
    n_main = len(blk["main_hash"])
    seconds["keys_blocks"] = time.perf_counter() - t0

    # Anomaly counts; equivocations and duplicates are extra rows, the rest rewrite base rows.
    # Each equivocation needs its own honest source row, and duplicates need something to copy.
    n_equiv = min(int(round(n * equivocation_rate)), n // 2)
    n_dup = max(0, min(int(round(n * duplicate_rate)), n - 2 * n_equiv - 1))
    n_base = n - n_dup - n_equiv
    counts = [int(round(n * r)) for r in (orphan_rate, key_mismatch_rate, unknown_validator_rate, bad_signature_rate,
                                          malformed_rate)]
    scale = min(1.0, max(n_base - n_equiv, 0) / max(sum(counts), 1))
    n_orphan, n_mismatch, n_unknown, n_bad, n_malformed = (int(c * scale) for c in counts)

    # Base votes: epoch e holds per_epoch distinct validators starting at a random offset.
    per_epoch = max(1, min(V, int(V * 0.95), n_base)) if n_base else 1
    n_epochs = max(1, -(-n_base // per_epoch))
    r = np.arange(n_base)
    epoch = r // per_epoch
    offset = rng.integers(0, V, size=n_epochs)
    vidx = ((offset[epoch] + r % per_epoch) % V).astype(np.int64)
    tip = np.minimum(((epoch + 1) * n_main) // n_epochs, n_main - 1)
    lag = np.minimum(rng.geometric(0.6, size=n_base) - 1, tip)
    target = blk["main_hash"][tip - lag]
    fork_sorted = np.argsort(blk["fork_height"], kind="stable")
    if len(fork_sorted):
        # Some votes go to one of the 8 most recent fork blocks at or below the tip.
        visible = np.searchsorted(blk["fork_height"][fork_sorted], tip, side="right")
        pick = visible - 1 - rng.integers(0, 8, size=n_base) % np.maximum(visible, 1)
        to_fork = (rng.random(n_base) < fork_rate) & (visible > 0)
        target = np.where(to_fork[:, None], blk["fork_hash"][fork_sorted[np.maximum(pick, 0)]], target)
    ts = GENESIS_TIME_US + epoch * EPOCH_US + rng.integers(0, EPOCH_US, size=n_base)
    pool = _sha256_rows(b"bizra-evidence/v1\0%d\0" % seed, min(4096, max(n, 1)))
    fields: dict[str, Any] = {
        "chain_id": np.full(n_base, CHAIN_ID, np.uint32),
        "validator_index": vidx.copy(),
        "epoch": epoch.astype(np.uint64),
        "target": target,
        "evidence_root": pool[rng.integers(0, len(pool), size=n_base)],
        "poi_score": rng.integers(0, 1_000_001, size=n_base),
        "timestamp_us": ts.astype(np.uint64),
        "nonce": rng.integers(0, 2**64, size=n_base, dtype=np.uint64),
    }
    kind = np.full(n_base, HONEST, np.uint8)
    # Signer table: registered keys, then keys that belong to no validator.
    n_extra = n_mismatch + n_unknown
    extra_seeds = keymod.derive_seeds(seed, n_extra, label="unregistered")
    extra_pks, extra_secrets = keymod.keypairs_from_seeds(extra_seeds)
    signer = vidx.copy()

    perm = rng.permutation(n_base)
    cut = np.cumsum([n_orphan, n_mismatch, n_unknown, n_bad, n_malformed])
    orphan_rows, mismatch_rows, unknown_rows, bad_rows, malformed_rows = np.split(perm[: cut[-1]], cut[:-1])
    equiv_src = perm[cut[-1] : cut[-1] + n_equiv]
    kind[orphan_rows] = ORPHAN
    fields["target"][orphan_rows] = rng.integers(0, 256, size=(n_orphan, 32), dtype=np.uint8)
    kind[mismatch_rows] = KEY_MISMATCH
    # Half sign with another validator's key, half with a key no validator has.
    other = rng.random(n_mismatch) < 0.5
    signer[mismatch_rows] = np.where(other & (V > 1), (vidx[mismatch_rows] + 1 + rng.integers(0, max(V - 1, 1), n_mismatch)) % V,
                                     V + np.arange(n_mismatch))
    kind[unknown_rows] = UNKNOWN_VALIDATOR
    fields["validator_index"][unknown_rows] = V + rng.integers(0, 1000, size=n_unknown)
    signer[unknown_rows] = V + n_mismatch + np.arange(n_unknown)
    kind[bad_rows] = BAD_SIG
    kind[malformed_rows] = MALFORMED

    # Equivocations: same validator and epoch as an honest vote, another target, later time.
    eq = {k: v[equiv_src].copy() for k, v in fields.items()}
    all_hash = np.concatenate([blk["main_hash"], blk["fork_hash"]])
    if len(all_hash) > 1:
        alt = rng.integers(0, len(all_hash) - 1, size=n_equiv)
        same = (all_hash[alt] == eq["target"]).all(axis=1)
        eq["target"] = all_hash[np.where(same, len(all_hash) - 1, alt)]
        # Hashes are unique and sources are never orphan rows, so block H-1 differs when alt hits.
    else:
        eq["target"] = rng.integers(0, 256, size=(n_equiv, 32), dtype=np.uint8)
    eq["timestamp_us"] = eq["timestamp_us"] + rng.integers(1, 10_000_000, size=n_equiv).astype(np.uint64)
    eq["nonce"] = rng.integers(0, 2**64, size=n_equiv, dtype=np.uint64)
    cols = {k: np.concatenate([fields[k], eq[k]]) for k in fields}
    signer = np.concatenate([signer, vidx[equiv_src]])
    kind = np.concatenate([kind, np.full(n_equiv, EQUIVOCATION, np.uint8)])
    bodies = encode_bodies(cols)
    # Malformed: an unknown layout version, signed as is (a valid signature over bytes that do not decode).
    bodies[malformed_rows, 8] = 2
    seconds["columns"] = time.perf_counter() - t0 - seconds["keys_blocks"]

    # Sign chunk by chunk so the progress bar moves; each chunk uses all threads.
    t_sign = time.perf_counter()
    secret_table = np.concatenate([secrets, extra_secrets])
    pk_table = np.concatenate([pks, extra_pks])
    nthreads = resolve_threads(threads)
    sigs = np.empty((len(bodies), 64), np.uint8)
    bar = Progress(len(bodies), "sign", enabled=progress if progress is not None else None)
    with bar:
        for lo in range(0, len(bodies), _SIGN_CHUNK):
            hi = min(lo + _SIGN_CHUNK, len(bodies))
            sigs[lo:hi] = sodium_backend.sign_rows(bodies[lo:hi], secret_table, signer[lo:hi], threads=nthreads)
            bar.update(hi - lo)
    seconds["sign"] = time.perf_counter() - t_sign
    public_keys = pk_table[signer]

    # Corrupt after signing: flip one bit of R, of S, or of the body's nonce (keeps it decodable).
    corrupted = np.zeros(len(bodies), dtype=bool)
    corrupted[bad_rows] = True
    where = rng.integers(0, 3, size=n_bad)
    bit = (1 << rng.integers(0, 8, size=n_bad)).astype(np.uint8)
    sig_byte = np.where(where == 0, rng.integers(0, 32, size=n_bad), rng.integers(32, 64, size=n_bad))
    in_sig = where < 2
    sigs[bad_rows[in_sig], sig_byte[in_sig]] ^= bit[in_sig]
    body_byte = rng.integers(102, BODY_SIZE, size=n_bad)
    bodies[bad_rows[~in_sig], body_byte[~in_sig]] ^= bit[~in_sig]

    # Exact duplicates of random earlier rows, then everything in arrival (timestamp) order.
    dup_src = rng.integers(0, len(bodies), size=n_dup) if len(bodies) else np.zeros(0, np.int64)
    bodies = np.concatenate([bodies, bodies[dup_src]])
    sigs = np.concatenate([sigs, sigs[dup_src]])
    public_keys = np.concatenate([public_keys, public_keys[dup_src]])
    kind = np.concatenate([kind, np.full(n_dup, DUPLICATE, np.uint8)])
    corrupted = np.concatenate([corrupted, corrupted[dup_src]])
    ts_all = decode_bodies(bodies, strict=False)["timestamp_us"]
    order = np.argsort(ts_all, kind="stable")
    bodies, sigs, public_keys, kind, corrupted = (a[order] for a in (bodies, sigs, public_keys, kind, corrupted))

    t_frames = time.perf_counter()
    att_df = attestations_frame(bodies, sigs, public_keys, strict=n_malformed == 0)
    val_df = validators_frame(pks, weights)
    blk_df = pl.DataFrame([binary_column("hash", blk["hash"]), binary_column("parent", blk["parent"]),
                           pl.Series("height", blk["height"], dtype=pl.UInt64)])
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_parquet_atomic(val_df, out / "validators.parquet")
        write_parquet_atomic(blk_df, out / "blocks.parquet")
        write_parquet_atomic(att_df, out / "attestations.parquet")
    seconds["frames_write"] = time.perf_counter() - t_frames
    seconds["total"] = time.perf_counter() - t0
    truth = {"kind": kind, "corrupted": corrupted}
    return GeneratedDataset(val_df, blk_df, att_df, truth, seconds)

