"""The blocks table: ``blocks.parquet`` read and checked, and the structural checks that make a
blocks file usable by the batch job.

    blocks.parquet        hash binary(32), parent binary(32), height u64  (genesis parent = 0*32)

``read_blocks`` checks columns, widths and the height range (heights are int64 in the
BlockGraph); ``load_blocks`` also refuses what would make the batch job's answer meaningless:
an all-zero hash, no genesis or two, a reused hash, a cycle. The live service takes blocks as
they come (they may wait for a parent), so it only reads.

Example: ``hashes, parents, heights = load_blocks("data/blocks.parquet")``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl

from engine.model.attestation import binary_to_array
from engine.model.chain import MAX_HEIGHT
from engine.model.errors import InputError
from engine.tables.parquet import BLOCKS_SCHEMA, read_table

__all__ = ["hash_rows", "load_blocks", "read_blocks"]


def read_blocks(path: str | os.PathLike[str]) -> pl.DataFrame:
    """The blocks table (columns, widths, height range; tree structure is the BlockGraph's job)."""
    df = read_table(path, BLOCKS_SCHEMA)
    if len(df) and int(df["height"].max()) > MAX_HEIGHT:
        raise InputError(f"{path}: height {int(df['height'].max())} out of range")
    return df


def hash_rows(rows: np.ndarray) -> np.ndarray:
    """(n, 32) uint8 -> (n,) V32, sortable and comparable as whole hashes (byte order)."""
    return np.ascontiguousarray(rows, dtype=np.uint8).view("V32").reshape(-1)


def load_blocks(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hashes, parents, heights) after the structural checks that make a blocks file usable."""
    path = Path(path)
    df = read_blocks(path)
    h = binary_to_array(df["hash"], 32)
    p = binary_to_array(df["parent"], 32)
    heights = df["height"].to_numpy()
    zero_hash = ~h.any(axis=1)
    if zero_hash.any():
        raise InputError(f"{path}: block with an all-zero hash (row {int(np.argmax(zero_hash))})")
    roots = np.flatnonzero(~p.any(axis=1))
    if len(roots) != 1:
        what = "no genesis block" if not len(roots) else f"{len(roots)} genesis blocks (two geneses)"
        raise InputError(f"{path}: {what}; expected exactly one block with an all-zero parent")
    keys = hash_rows(h)
    order = np.argsort(keys, kind="stable")
    same = keys[order][1:] == keys[order][:-1]
    if same.any():
        row = int(order[1:][np.argmax(same)])
        raise InputError(f"{path}: duplicate block hash {h[row].tobytes().hex()} (row {row})")
    # Cycle check by pointer doubling: after ceil(log2 n) + 1 doublings every chain that ends
    # (at genesis or at a missing parent) has reached -1; a node still pointing somewhere lies on
    # or leads into a cycle. Runs log2(n) times over whole columns.
    pos = np.searchsorted(keys[order], hash_rows(p))
    pos = np.minimum(pos, len(order) - 1)
    up = np.where(keys[order][pos] == hash_rows(p), order[pos], -1)
    for _ in range(int(np.ceil(np.log2(max(len(up), 2)))) + 1):
        up = np.where(up >= 0, up[np.maximum(up, 0)], -1)
    if (up >= 0).any():
        row = int(np.argmax(up >= 0))
        raise InputError(f"{path}: blocks form a cycle (through block {h[row].tobytes().hex()}, row {row})")
    return h, p, heights.astype(np.int64)
