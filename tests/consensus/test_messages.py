"""The BlockGraph's message log: hashes as big-endian uint64 keys (byte order preserved), and
append-only columns whose incremental reads see only the new rows."""
from __future__ import annotations

import numpy as np
import pytest

from engine.consensus.messages import MessageColumns, hash_keys, hashes_to_array, key_hashes, or_words


def test_keys_round_trip_and_keep_byte_order() -> None:
    rows = np.random.default_rng(3).integers(0, 256, (200, 32), dtype=np.uint8)
    rows[0] = 0
    keys = hash_keys(rows)
    assert keys.dtype == np.uint64 and keys.shape == (200, 4)
    assert np.array_equal(key_hashes(keys), rows)
    by_bytes = sorted(range(200), key=lambda i: rows[i].tobytes())
    by_keys = sorted(range(200), key=lambda i: tuple(keys[i]))
    assert by_bytes == by_keys
    assert (or_words(keys) == 0).tolist() == [True] + [False] * 199


def test_hashes_to_array_checks_shapes() -> None:
    assert hashes_to_array([b"\x01" * 32, bytearray(32)]).shape == (2, 32)
    with pytest.raises(TypeError):
        hashes_to_array(b"\x00" * 32)  # one bytes object is not a list of hashes
    with pytest.raises(ValueError):
        hashes_to_array([b"short"])
    with pytest.raises(ValueError):
        hashes_to_array(np.zeros((2, 31), np.uint8))


def test_columns_append_compact_and_since() -> None:
    cols = MessageColumns({"v": (np.int64, ()), "k": (np.uint64, (4,))})
    assert cols["v"].shape == (0,) and cols["k"].shape == (0, 4)
    cols.append(v=[1, 2], k=np.ones((2, 4)))
    cols.append(v=[3], k=np.zeros((1, 4)))
    newest = cols.since(2, "v")
    assert newest.tolist() == [3] and cols.n == 3
    assert cols["v"].tolist() == [1, 2, 3] and cols["k"].dtype == np.uint64  # compacted once
    assert cols.since(1, "v").tolist() == [2, 3]  # a view of the compacted column
    assert cols.since(3, "v").shape == (0,)
