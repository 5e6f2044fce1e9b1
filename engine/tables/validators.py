"""The validator table: ``validators.parquet`` read and checked, loaded into dense arrays by
validator index (the one loader ``bizra run`` and ``bizra serve`` share), written by
``bizra keygen``.

    validators.parquet    index u32, public_key binary(32), weight i64

A table is usable when its indices are unique, its weights are >= 0, every key passes key
admission (canonical, not small order, torsion-free: engine.verification.keys) and no index
exceeds MAX_VALIDATOR_INDEX.

Example::

    table = load_validator_table("data/validators.parquet")
    table.weights[7], table.registered[7], table.keys[7]
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from engine.model.attestation import binary_column, binary_to_array
from engine.model.chain import MAX_VALIDATOR_INDEX
from engine.model.errors import InputError
from engine.tables.parquet import VALIDATORS_SCHEMA, read_table, write_parquet_atomic
from engine.verification import keys as keymod

__all__ = ["ValidatorTable", "keygen", "load_validator_table", "read_validators", "validators_frame"]


class ValidatorTable(NamedTuple):
    """Dense arrays indexed by validator index (at least one slot, so lookups need no branch)."""

    weights: np.ndarray     # (size,) int64, 0 where no validator
    registered: np.ndarray  # (size,) bool
    keys: np.ndarray        # (size, 32) uint8, the registered public key (zeros where none)

    @property
    def count(self) -> int:
        """Registered validators."""
        return int(self.registered.sum())


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


def load_validator_table(path: str | os.PathLike[str]) -> ValidatorTable:
    """read_validators, then the dense arrays; InputError (or KeyAdmissionError) naming the file.

    Example: ``load_validator_table("data/validators.parquet").count``.
    """
    df = read_validators(path)
    idx = df["index"].to_numpy().astype(np.int64)
    size = int(idx.max()) + 1 if len(idx) else 1
    if size - 1 > MAX_VALIDATOR_INDEX:
        raise InputError(f"{path}: validator index {size - 1} too large (max {MAX_VALIDATOR_INDEX})")
    weights = np.zeros(size, np.int64)
    weights[idx] = df["weight"].to_numpy()
    registered = np.zeros(size, bool)
    registered[idx] = True
    keys = np.zeros((size, 32), np.uint8)
    keys[idx] = binary_to_array(df["public_key"], 32)
    return ValidatorTable(weights, registered, keys)


def validators_frame(public_keys: np.ndarray, weights: np.ndarray) -> pl.DataFrame:
    """validators.parquet content from (n, 32) keys and integer weights (indices 0..n-1)."""
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
