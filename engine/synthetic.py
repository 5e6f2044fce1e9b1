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
  5. rows are ordered by timestamp; then, chunk by chunk in that order, their bodies are built,
     signed with libsodium in threads and written as they come (a compact plan of every row,
     about 30 bytes each, is all that is held).

Example::

    g = generate_dataset("data", validators=1000, blocks=5000, attestations=200_000, seed=1)
    hashes, parents, main = chain_with_forks(10_000, np.random.default_rng(1))
    cols = signed_columns(16_384, 1_000, seed=3)
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from engine.model.attestation import BODY_SIZE, attestations_frame, binary_column, encode_bodies
from engine.model.chain import CHAIN_ID, EPOCH_US, GENESIS_TIME_US
from engine.model.errors import InputError
from engine.pipeline.progress import Progress
from engine.tables.parquet import sink_frames_atomic, write_parquet_atomic
from engine.tables.validators import validators_frame
from engine.verification import keys as keymod
from engine.verification import sodium_backend
from engine.verification.api import VerifyColumns, resolve_threads, to_columns

__all__ = [
    "DEFAULT_CHUNK_ROWS",
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

# Rows per Parquet row group of attestations.parquet: fixed, so the file's bytes never depend on
# chunk_rows or threads; 100K is what write_parquet chose for the 200K-row demo dataset, whose
# files therefore stay byte for byte what they were when the whole table was built first.
_ROW_GROUP_ROWS = 100_000
DEFAULT_CHUNK_ROWS = 65_536  # rows built, signed and written at a time
_PLAN_BLOCK = 1 << 20


class GeneratedDataset:
    """What generate_dataset made; ``truth`` is for tests (never written to disk).

    truth["kind"]: uint8 codes into KIND_NAMES per attestation row; truth["corrupted"]: bool,
    the signature was deliberately broken after signing (duplicates of such rows too).
    ``attestations`` is the whole table: kept in memory when nothing was written, read back
    from ``attestations_path`` on first use otherwise (a large dataset is never held whole).
    """

    def __init__(self, validators: pl.DataFrame, blocks: pl.DataFrame, attestations: pl.DataFrame | Path,
                 truth: dict[str, np.ndarray], seconds: dict[str, float]) -> None:
        self.validators, self.blocks, self.truth, self.seconds = validators, blocks, truth, seconds
        self._attestations = attestations
        self.rows = len(truth["kind"])

    @property
    def attestations_path(self) -> Path | None:
        return self._attestations if isinstance(self._attestations, Path) else None

    @property
    def attestations(self) -> pl.DataFrame:
        if isinstance(self._attestations, Path):
            self._attestations = pl.read_parquet(self._attestations)
        return self._attestations


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


@dataclasses.dataclass
class _Voters:
    """Who votes when: base row r is epoch r // per_epoch, validator (offset[epoch] + r %
    per_epoch) % validators; equivocation row n_base + j repeats base row equiv_src[j]. The
    rows that name an unknown validator, or are signed by another key (an index into the
    signer table: registered keys, then unregistered ones), are listed sorted."""

    n_base: int
    per_epoch: int
    offset: np.ndarray
    validators: int
    equiv_src: np.ndarray
    unknown_rows: np.ndarray
    unknown_index: np.ndarray
    signer_rows: np.ndarray
    signer_index: np.ndarray

    def origin(self, src: np.ndarray) -> np.ndarray:
        src = src.astype(np.int64)
        eq = src >= self.n_base
        src[eq] = self.equiv_src[src[eq] - self.n_base]
        return src

    def epoch(self, src: np.ndarray) -> np.ndarray:
        return self.origin(src) // self.per_epoch

    def validator(self, src: np.ndarray, *, named: bool = True) -> np.ndarray:
        """The validator index in the body (``named``), else the signer table index."""
        base = self.origin(src)
        v = (self.offset[base // self.per_epoch] + base % self.per_epoch) % self.validators
        rows, index = (self.unknown_rows, self.unknown_index) if named else (self.signer_rows, self.signer_index)
        _override(v, src, rows, index)
        return v


def _lookup(rows: np.ndarray, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions i with src[i] in the sorted ``rows``, where each sits in ``rows``)."""
    if not len(rows):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    at = np.minimum(np.searchsorted(rows, src), len(rows) - 1)
    hit = np.flatnonzero(rows[at] == src)
    return hit, at[hit]


def _override(values: np.ndarray, src: np.ndarray, rows: np.ndarray, new: np.ndarray) -> None:
    """values[i] = new[k] where src[i] == rows[k]."""
    hit, at = _lookup(rows, src)
    values[hit] = new[at]


@dataclasses.dataclass
class _RowPlan:
    """Every attestation row, compactly: about 30 bytes per row instead of the 206 bytes of
    body, signature and key, so 100M rows can be planned on a small machine. Rows are first
    numbered in "source" order (base votes, then equivocations); output row i is source row
    ``source[i]`` (a duplicate names the row it copies, and is rebuilt, re-signed and
    re-corrupted identically: Ed25519 signing is deterministic). A base row's epoch, validator
    and signer follow from its number (``_Voters``); only the exceptions are listed."""

    voters: _Voters
    target: np.ndarray           # int32 into targets, per source row
    evidence: np.ndarray         # uint16 into evidence_pool
    poi_score: np.ndarray        # uint32
    time_in_epoch: np.ndarray    # uint32: timestamp_us - GENESIS_TIME_US - epoch * EPOCH_US
    nonce: np.ndarray            # uint64
    malformed_rows: np.ndarray   # sorted source rows with an unknown layout version
    targets: np.ndarray          # (t, 32) main, fork, then random (orphan) hashes
    evidence_pool: np.ndarray    # (e, 32)
    bad_rows: np.ndarray         # sorted source rows whose bytes are flipped after signing
    bad_byte: np.ndarray         # byte of body || signature to flip (>= 110: the signature)
    bad_bit: np.ndarray          # uint8 mask
    source: np.ndarray           # uint32 source row of each output row, in output order
    kind: np.ndarray             # uint8 per output row
    corrupted: np.ndarray        # bool per output row
    strict: bool                 # no malformed rows: decode strictly


def _blocks_of(n: int) -> Iterator[slice]:
    # Per-row arithmetic in slices of a million rows: int64 temporaries of the whole table
    # would cost more than the compact plan itself.
    return (slice(lo, min(lo + _PLAN_BLOCK, n)) for lo in range(0, n, _PLAN_BLOCK))


def _plan_rows(rng: np.random.Generator, blk: dict[str, np.ndarray], seed: int, n: int, V: int,
               rates: dict[str, float]) -> _RowPlan:
    """Draw every row's fields from ``rng`` in the order and sizes of the whole-table generator
    this replaced (so a seed still gives the same rows), keeping only compact columns and
    releasing each whole-table draw as soon as it is folded in."""
    n_main = len(blk["main_hash"])
    fork_rate = rates["fork_rate"]
    # Anomaly counts; equivocations and duplicates are extra rows, the rest rewrite base rows.
    # Each equivocation needs its own honest source row, and duplicates need something to copy.
    n_equiv = min(int(round(n * rates["equivocation_rate"])), n // 2)
    n_dup = max(0, min(int(round(n * rates["duplicate_rate"])), n - 2 * n_equiv - 1))
    n_base = n - n_dup - n_equiv
    n_src = n_base + n_equiv
    counts = [int(round(n * rates[r])) for r in ("orphan_rate", "key_mismatch_rate", "unknown_validator_rate",
                                                   "bad_signature_rate", "malformed_rate")]
    scale = min(1.0, max(n_base - n_equiv, 0) / max(sum(counts), 1))
    n_orphan, n_mismatch, n_unknown, n_bad, n_malformed = (int(c * scale) for c in counts)
    base = slice(0, n_base)

    # Base votes: epoch e holds per_epoch distinct validators starting at a random offset.
    per_epoch = max(1, min(V, int(V * 0.95), n_base)) if n_base else 1
    n_epochs = max(1, -(-n_base // per_epoch))
    offset = rng.integers(0, V, size=n_epochs)

    def epoch_of(b: slice) -> np.ndarray:
        return np.arange(b.start, b.stop) // per_epoch

    # A vote targets a block at or just below its epoch's main-chain tip.
    tip = np.minimum((np.arange(1, n_epochs + 1) * n_main) // n_epochs, n_main - 1)  # per epoch
    target = np.empty(n_src, np.int32)
    lag = rng.geometric(0.6, size=n_base)
    for b in _blocks_of(n_base):
        t = tip[epoch_of(b)]
        target[b] = t - np.minimum(lag[b] - 1, t)
    del lag
    fork_sorted = np.argsort(blk["fork_height"], kind="stable")
    if len(fork_sorted):
        # Some votes go to one of the 8 most recent fork blocks at or below the tip.
        visible = np.searchsorted(blk["fork_height"][fork_sorted], tip, side="right")  # per epoch
        back, pick = rng.integers(0, 8, size=n_base), np.empty(n_base, np.int32)
        for b in _blocks_of(n_base):
            v = visible[epoch_of(b)]
            pick[b] = v - 1 - back[b] % np.maximum(v, 1)
        del back
        coin = rng.random(n_base)
        for b in _blocks_of(n_base):
            to_fork = np.flatnonzero((coin[b] < fork_rate) & (visible[epoch_of(b)] > 0)) + b.start
            target[to_fork] = n_main + fork_sorted[np.maximum(pick[to_fork], 0)]
        del coin, pick
    time_in_epoch = np.empty(n_src, np.uint32)
    time_in_epoch[base] = rng.integers(0, EPOCH_US, size=n_base)
    pool = _sha256_rows(b"bizra-evidence/v1\0%d\0" % seed, min(4096, max(n, 1)))
    evidence, poi_score, nonce = np.empty(n_src, np.uint16), np.empty(n_src, np.uint32), np.empty(n_src, np.uint64)
    evidence[base] = rng.integers(0, len(pool), size=n_base)
    poi_score[base] = rng.integers(0, 1_000_001, size=n_base)
    nonce[base] = rng.integers(0, 2**64, size=n_base, dtype=np.uint64)
    kind = np.full(n_src, HONEST, np.uint8)

    perm = rng.permutation(n_base)
    cut = np.cumsum([n_orphan, n_mismatch, n_unknown, n_bad, n_malformed])
    orphan_rows, mismatch_rows, unknown_rows, bad_rows, malformed_rows = np.split(perm[: cut[-1]].copy(), cut[:-1])
    equiv_src = perm[cut[-1] : cut[-1] + n_equiv].copy()
    del perm
    known = np.concatenate([blk["main_hash"], blk["fork_hash"]])
    kind[orphan_rows] = ORPHAN
    orphan_hashes = rng.integers(0, 256, size=(n_orphan, 32), dtype=np.uint8)
    target[orphan_rows] = len(known) + np.arange(n_orphan)
    kind[mismatch_rows] = KEY_MISMATCH
    voters = _Voters(n_base, per_epoch, offset, V, equiv_src, *(np.zeros(0, np.int64),) * 4)
    # Half sign with another validator's key, half with a key no validator has.
    other = rng.random(n_mismatch) < 0.5
    mismatch_signer = np.where(other & (V > 1),
                               (voters.validator(mismatch_rows) + 1 + rng.integers(0, max(V - 1, 1), n_mismatch)) % V,
                               V + np.arange(n_mismatch))
    kind[unknown_rows] = UNKNOWN_VALIDATOR
    unknown_index = V + rng.integers(0, 1000, size=n_unknown)
    kind[bad_rows] = BAD_SIG
    kind[malformed_rows] = MALFORMED
    by_row = np.argsort(unknown_rows)
    voters.unknown_rows, voters.unknown_index = unknown_rows[by_row], unknown_index[by_row]
    signer_rows = np.concatenate([mismatch_rows, unknown_rows])
    by_row = np.argsort(signer_rows)
    voters.signer_rows = signer_rows[by_row]
    voters.signer_index = np.concatenate([mismatch_signer, V + n_mismatch + np.arange(n_unknown)])[by_row]

    # Equivocations: same validator and epoch as an honest vote, another target, later time.
    eq = slice(n_base, n_src)
    for column in (evidence, poi_score):
        column[eq] = column[equiv_src]
    kind[eq] = EQUIVOCATION
    targets = np.concatenate([known, orphan_hashes])
    if len(known) > 1:
        alt = rng.integers(0, len(known) - 1, size=n_equiv)
        same = (known[alt] == targets[target[equiv_src]]).all(axis=1)
        target[eq] = np.where(same, len(known) - 1, alt)
        # Hashes are unique and sources are never orphan rows, so block H-1 differs when alt hits.
    else:
        target[eq] = len(targets) + np.arange(n_equiv)
        targets = np.concatenate([targets, rng.integers(0, 256, size=(n_equiv, 32), dtype=np.uint8)])
    time_in_epoch[eq] = time_in_epoch[equiv_src] + rng.integers(1, 10_000_000, size=n_equiv)
    nonce[eq] = rng.integers(0, 2**64, size=n_equiv, dtype=np.uint64)

    # Flipped after signing: one bit of R, of S, or of the body's nonce (keeps it decodable).
    where = rng.integers(0, 3, size=n_bad)
    bit = (1 << rng.integers(0, 8, size=n_bad)).astype(np.uint8)
    sig_byte = np.where(where == 0, rng.integers(0, 32, size=n_bad), rng.integers(32, 64, size=n_bad))
    body_byte = rng.integers(102, BODY_SIZE, size=n_bad)
    flip = np.where(where < 2, BODY_SIZE + sig_byte, body_byte)
    by_row = np.argsort(bad_rows)
    corrupted = np.zeros(n_src, bool)
    corrupted[bad_rows] = True

    # Exact duplicates of random earlier rows, then everything in arrival (timestamp) order.
    dup_src = rng.integers(0, n_src, size=n_dup) if n_src else np.zeros(0, np.int64)
    timestamp = np.empty(n_src + n_dup, np.uint64)
    for b in _blocks_of(n_src):
        timestamp[b] = voters.epoch(np.arange(b.start, b.stop))
        timestamp[b] *= np.uint64(EPOCH_US)
        timestamp[b] += time_in_epoch[b]
    timestamp[n_src:] = timestamp[dup_src]
    order = np.argsort(timestamp, kind="stable")
    del timestamp
    source = np.empty(n_src + n_dup, np.uint32)
    source[:n_src] = np.arange(n_src, dtype=np.uint32)
    source[n_src:] = dup_src
    source = source[order]
    is_duplicate = order >= n_src
    del order
    return _RowPlan(
        voters=voters, target=target, evidence=evidence, poi_score=poi_score,
        time_in_epoch=time_in_epoch, nonce=nonce, malformed_rows=np.sort(malformed_rows), targets=targets,
        evidence_pool=pool, bad_rows=bad_rows[by_row], bad_byte=flip[by_row], bad_bit=bit[by_row], source=source,
        kind=np.where(is_duplicate, np.uint8(DUPLICATE), kind[source]),
        corrupted=corrupted[source], strict=n_malformed == 0)


def _chunk_bodies(plan: _RowPlan, src: np.ndarray) -> np.ndarray:
    epoch = plan.voters.epoch(src).astype(np.uint64)
    bodies = encode_bodies({
        "chain_id": np.full(len(src), CHAIN_ID, np.uint32), "validator_index": plan.voters.validator(src),
        "epoch": epoch, "target": plan.targets[plan.target[src]],
        "evidence_root": plan.evidence_pool[plan.evidence[src]], "poi_score": plan.poi_score[src],
        "timestamp_us": np.uint64(GENESIS_TIME_US) + epoch * np.uint64(EPOCH_US) + plan.time_in_epoch[src],
        "nonce": plan.nonce[src],
    })
    # Malformed: an unknown layout version, signed as is (a valid signature over bytes that do not decode).
    bodies[_lookup(plan.malformed_rows, src)[0], 8] = 2
    return bodies


def _corrupt(plan: _RowPlan, src: np.ndarray, bodies: np.ndarray, sigs: np.ndarray) -> None:
    rows, at = _lookup(plan.bad_rows, src)
    byte, bit = plan.bad_byte[at], plan.bad_bit[at]
    in_sig = byte >= BODY_SIZE
    sigs[rows[in_sig], byte[in_sig] - BODY_SIZE] ^= bit[in_sig]
    bodies[rows[~in_sig], byte[~in_sig]] ^= bit[~in_sig]


def _signed_frames(plan: _RowPlan, secret_table: np.ndarray, pk_table: np.ndarray, *, chunk_rows: int,
                   threads: int, bar: Progress) -> Iterator[pl.DataFrame]:
    """The attestation rows in output order, ``chunk_rows`` at a time. The next chunk is built
    and handed to the signing threads before the current one is turned into a frame, so the
    threads sign while this thread encodes; ``threads`` threads sign, each a contiguous slice."""
    n = len(plan.source)
    bounds = [(lo, min(lo + chunk_rows, n)) for lo in range(0, n, chunk_rows)]
    with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="bizra-generate") as pool:

        def start(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[concurrent.futures.Future], np.ndarray]:
            src = plan.source[lo:hi]
            bodies = _chunk_bodies(plan, src)
            sigs = np.empty((hi - lo, 64), np.uint8)
            signer = plan.voters.validator(src, named=False)
            edges = np.linspace(0, hi - lo, threads + 1).astype(np.int64)
            jobs = [pool.submit(sodium_backend.sign_into, bodies, secret_table, signer, sigs, range(a, b))
                    for a, b in zip(edges[:-1], edges[1:]) if b > a]
            return src, bodies, sigs, jobs, signer

        pending = start(*bounds[0]) if bounds else None
        for k in range(len(bounds)):
            src, bodies, sigs, jobs, signer = pending
            pending = start(*bounds[k + 1]) if k + 1 < len(bounds) else None
            for job in jobs:
                job.result()
            _corrupt(plan, src, bodies, sigs)
            yield attestations_frame(bodies, sigs, pk_table[signer], strict=plan.strict)
            bar.update(len(src))


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
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> GeneratedDataset:
    """Generate (and with ``out_dir``, write) a synthetic dataset; see the module docstring.

    Rows are built, signed and written ``chunk_rows`` at a time (memory: about 30 bytes per row
    plus a few chunks); the files' bytes depend on the seed and rates only, never on
    ``chunk_rows`` or ``threads``. Example:
    ``generate_dataset("data", validators=1000, blocks=5000, attestations=200_000, seed=1)``.
    """
    if validators < 1 or blocks < 1 or attestations < 0:
        raise InputError("validators and blocks must be >= 1, attestations >= 0")
    if chunk_rows < 1:
        raise InputError(f"chunk_rows: must be >= 1, got {chunk_rows}")
    rates = {"bad_signature_rate": bad_signature_rate, "equivocation_rate": equivocation_rate, "fork_rate": fork_rate,
             "orphan_rate": orphan_rate, "key_mismatch_rate": key_mismatch_rate,
             "unknown_validator_rate": unknown_validator_rate, "duplicate_rate": duplicate_rate,
             "malformed_rate": malformed_rate}
    for name, rate in rates.items():
        if not 0.0 <= rate <= 1.0:
            raise InputError(f"{name}: must be within 0..1, got {rate}")
    if attestations >= 2**32:
        raise InputError(f"attestations: at most {2**32 - 1:,} rows, got {attestations:,}")
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    rng = np.random.default_rng(np.random.PCG64(seed))
    V = validators

    seeds = keymod.derive_seeds(seed, V)
    pks, secrets = keymod.keypairs_from_seeds(seeds)
    weights = rng.integers(1, 101, size=V, dtype=np.int64)
    blk = _make_blocks(rng, seed, blocks, fork_rate)
    seconds["keys_blocks"] = time.perf_counter() - t0

    plan = _plan_rows(rng, blk, seed, attestations, V, rates)
    # Signer table: registered keys, then keys that belong to no validator.
    n_extra = int(plan.voters.signer_index.max()) + 1 - V if len(plan.voters.signer_index) else 0
    extra_pks, extra_secrets = keymod.keypairs_from_seeds(
        keymod.derive_seeds(seed, max(n_extra, 0), label="unregistered"))
    secret_table = np.concatenate([secrets, extra_secrets])
    pk_table = np.concatenate([pks, extra_pks])
    seconds["plan"] = time.perf_counter() - t0 - seconds["keys_blocks"]

    t_rows = time.perf_counter()
    val_df = validators_frame(pks, weights)
    blk_df = pl.DataFrame([binary_column("hash", blk["hash"]), binary_column("parent", blk["parent"]),
                           pl.Series("height", blk["height"], dtype=pl.UInt64)])
    bar = Progress(len(plan.source), "generate", enabled=progress)
    with bar:
        frames = _signed_frames(plan, secret_table, pk_table, chunk_rows=chunk_rows, threads=resolve_threads(threads),
                                bar=bar)
        if out_dir is None:
            att: pl.DataFrame | Path = pl.concat(list(frames)) if len(plan.source) else _empty_attestations()
        else:
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True)
            write_parquet_atomic(val_df, out / "validators.parquet")
            write_parquet_atomic(blk_df, out / "blocks.parquet")
            att = sink_frames_atomic(frames, _empty_attestations().schema, out / "attestations.parquet",
                                     row_group_size=_ROW_GROUP_ROWS)
    seconds["sign_write"] = time.perf_counter() - t_rows
    seconds["total"] = time.perf_counter() - t0
    truth = {"kind": plan.kind, "corrupted": plan.corrupted}
    return GeneratedDataset(val_df, blk_df, att, truth, seconds)


def _empty_attestations() -> pl.DataFrame:
    return attestations_frame(np.zeros((0, BODY_SIZE), np.uint8), np.zeros((0, 64), np.uint8),
                              np.zeros((0, 32), np.uint8))
