"""The blocks table: read with its height range, and the structural checks of load_blocks."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.model.attestation import binary_column
from engine.model.errors import InputError
from engine.tables.blocks import hash_rows, load_blocks, read_blocks
from engine.tables.parquet import write_parquet_atomic


def _write(path, hashes, parents, heights=None):
    h = np.array([list(x) for x in hashes], np.uint8)
    p = np.array([list(x) for x in parents], np.uint8)
    heights = list(range(len(hashes))) if heights is None else heights
    write_parquet_atomic(pl.DataFrame([binary_column("hash", h), binary_column("parent", p),
                                       pl.Series("height", heights, dtype=pl.UInt64)]), path)
    return path


G, A, B, Z = b"G" * 32, b"A" * 32, b"B" * 32, bytes(32)


def test_a_chain_loads_in_file_order(tmp_path) -> None:
    h, p, ht = load_blocks(_write(tmp_path / "b.parquet", [G, A, B], [Z, G, A]))
    assert [bytes(x) for x in h] == [G, A, B] and [bytes(x) for x in p] == [Z, G, A]
    assert ht.dtype == np.int64 and ht.tolist() == [0, 1, 2]


@pytest.mark.parametrize("hashes, parents, problem", [
    ([G, Z], [Z, G], "all-zero hash"),
    ([G, A], [Z, Z], "2 genesis blocks"),
    ([A, B], [G, A], "no genesis block"),
    ([G, A, A], [Z, G, G], "duplicate block hash"),
    ([G, A, B], [Z, B, A], "blocks form a cycle"),
])
def test_structural_problems_are_one_line(tmp_path, hashes, parents, problem) -> None:
    path = _write(tmp_path / "b.parquet", hashes, parents)
    with pytest.raises(InputError, match=problem) as exc:
        load_blocks(path)
    assert str(exc.value).startswith(str(path)) and "\n" not in str(exc.value)


def test_heights_beyond_int64_are_refused(tmp_path) -> None:
    path = _write(tmp_path / "b.parquet", [G, A], [Z, G], heights=[0, 2**63])
    with pytest.raises(InputError, match=f"height {2**63} out of range"):
        read_blocks(path)
    assert read_blocks(_write(tmp_path / "ok.parquet", [G, A], [Z, G], heights=[0, 2**63 - 1])).height == 2


def test_hash_rows_compare_in_byte_order() -> None:
    rows = np.array([[0] * 31 + [2], [0] * 31 + [1], [1] + [0] * 31], np.uint8)
    assert np.argsort(hash_rows(rows)).tolist() == [1, 0, 2]
