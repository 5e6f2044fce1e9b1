"""Dataset tables (validators, blocks, attestations): schemas, checked reads, atomic writes,
``bizra keygen`` and the ``bizra generate`` synthetic dataset generator.

Files of a dataset directory (all Parquet):

    validators.parquet    index u32, public_key binary(32), weight i64
    blocks.parquet        hash binary(32), parent binary(32), height u64  (genesis parent = 0*32)
    attestations.parquet  body binary(110), signature binary(64), public_key binary(32),
                          plus the decoded body fields (engine.attestation.ATTESTATION_SCHEMA)

Generator model (deterministic for a seed; numpy Generator(PCG64)):
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
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine import keys as keymod
from engine import verify_sodium
from engine.attestation import (
    ATTESTATION_SCHEMA,
    BINARY_WIDTHS,
    BODY_SIZE,
    attestations_frame,
    binary_column,
    binary_to_array,
    decode_bodies,
    encode_bodies,
)
from engine.errors import InputError, first_line
from engine.progress import Progress
from engine.verify import resolve_threads

__all__ = [
    "BLOCKS_SCHEMA",
    "KIND_NAMES",
    "VALIDATORS_SCHEMA",
    "GeneratedDataset",
    "generate_dataset",
    "keygen",
    "read_attestations",
    "read_blocks",
    "read_table",
    "read_validators",
    "write_parquet_atomic",
]

VALIDATORS_SCHEMA: dict[str, pl.DataType] = {"index": pl.UInt32(), "public_key": pl.Binary(), "weight": pl.Int64()}
BLOCKS_SCHEMA: dict[str, pl.DataType] = {"hash": pl.Binary(), "parent": pl.Binary(), "height": pl.UInt64()}
_WIDTHS = {**BINARY_WIDTHS, "hash": 32, "parent": 32}
# Truth codes returned by generate_dataset (never written to the Parquet files).
KIND_NAMES = ("honest", "bad_signature", "equivocation", "orphan_target", "key_mismatch", "unknown_validator",
              "duplicate", "malformed")
HONEST, BAD_SIG, EQUIVOCATION, ORPHAN, KEY_MISMATCH, UNKNOWN_VALIDATOR, DUPLICATE, MALFORMED = range(len(KIND_NAMES))
GENESIS_TIME_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
EPOCH_US = 384_000_000  # 32 slots of 12 s
CHAIN_ID = 1
_SIGN_CHUNK = 65_536


# ---- tables on disk -----------------------------------------------------------------------


def write_parquet_atomic(df: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` to a temp name next to ``path`` and rename it into place on success.

    Example: ``write_parquet_atomic(df, "out/verified.parquet")``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        df.write_parquet(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_table(path: str | os.PathLike[str], required: dict[str, pl.DataType]) -> pl.DataFrame:
    """Read a Parquet file, checking that ``required`` columns exist with their dtypes and that
    binary columns have their fixed widths; InputError("<path>: <problem>") otherwise.

    Example: ``read_table("blocks.parquet", BLOCKS_SCHEMA)``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a Parquet file")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(max(path.stat().st_size - 4, 0))
            tail = f.read(4)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    if head != b"PAR1" or tail != b"PAR1" or path.stat().st_size < 12:
        raise InputError(f"{path}: not a Parquet file")
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # polars raises several unrelated types for corrupt files
        raise InputError(f"{path}: corrupt Parquet file ({first_line(exc)})") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    for name, dtype in required.items():
        if df.schema[name] != dtype:
            raise InputError(f"{path}: column {name} has type {df.schema[name]}, expected {dtype}")
        if df[name].null_count():
            raise InputError(f"{path}: column {name} has {df[name].null_count()} null values")
        if dtype == pl.Binary and name in _WIDTHS:
            sizes = df[name].bin.size()
            bad = sizes != _WIDTHS[name]
            if bad.any():
                row = int(bad.arg_max())
                raise InputError(
                    f"{path}: column {name}: expected {_WIDTHS[name]} bytes, got {sizes[row]} "
                    f"(row {row}, {int(bad.sum())} bad rows)"
                )
    return df


def read_validators(path: str | os.PathLike[str], *, admit: bool = True) -> pl.DataFrame:
    """The validator table, with unique indices, non-negative weights and admitted keys.

    Example: ``read_validators("data/validators.parquet")["weight"].sum()``.
    """
    df = read_table(path, VALIDATORS_SCHEMA)
    if df["index"].n_unique() != len(df):
        raise InputError(f"{path}: column index has duplicate values")
    if len(df) and df["weight"].min() < 0:
        raise InputError(f"{path}: column weight has negative values")
    if admit:
        keymod.require_admissible(binary_to_array(df["public_key"], 32), df["index"].to_numpy(), source=str(path))
    return df


def read_blocks(path: str | os.PathLike[str]) -> pl.DataFrame:
    """The blocks table (columns and widths checked; tree structure is the BlockGraph's job)."""
    return read_table(path, BLOCKS_SCHEMA)


def read_attestations(path: str | os.PathLike[str], *, fields: bool = False) -> pl.DataFrame:
    """An attestations table; ``fields=True`` also requires the decoded body field columns.

    Example: ``read_attestations("data/attestations.parquet")["body"]``.
    """
    names = list(ATTESTATION_SCHEMA) if fields else ["body", "signature", "public_key"]
    return read_table(path, {c: ATTESTATION_SCHEMA[c] for c in names})


# ---- keygen -------------------------------------------------------------------------------


def validators_frame(public_keys: np.ndarray, weights: np.ndarray) -> pl.DataFrame:
    """validators.parquet content from (n, 32) keys and integer weights."""
    n = len(public_keys)
    return pl.DataFrame(
        [
            pl.Series("index", np.arange(n, dtype=np.uint32), dtype=pl.UInt32),
            binary_column("public_key", public_keys),
            pl.Series("weight", np.asarray(weights, dtype=np.int64), dtype=pl.Int64),
        ]
    )


def keygen(out_dir: str | os.PathLike[str], validators: int, *, weight: int = 1, seed: int | None = None) -> pl.DataFrame:
    """Write ``out_dir/validators.parquet`` and ``out_dir/validator_keys.secret`` (mode 0600).

    Keys come from libsodium's CSPRNG, or, with ``seed``, from derive_seeds (test data only).
    Example: ``keygen("keys", 4, weight=32)``.
    """
    if validators < 1:
        raise InputError(f"validators: must be >= 1, got {validators}")
    if weight < 0:
        raise InputError(f"weight: must be >= 0, got {weight}")
    out = Path(out_dir)
    if (out / "validator_keys.secret").exists():
        raise InputError(f"{out / 'validator_keys.secret'}: exists; refusing to overwrite secret keys")
    out.mkdir(parents=True, exist_ok=True)
    seeds = keymod.random_seeds(validators) if seed is None else keymod.derive_seeds(seed, validators)
    pks, _ = keymod.keypairs_from_seeds(seeds)
    keymod.require_admissible(pks, source="keygen")
    df = validators_frame(pks, np.full(validators, weight, dtype=np.int64))
    keymod.write_secret_keys(out / "validator_keys.secret", seeds)
    write_parquet_atomic(df, out / "validators.parquet")
    return df


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
            sigs[lo:hi] = verify_sodium.sign_rows(bodies[lo:hi], secret_table, signer[lo:hi], threads=nthreads)
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

