"""The BlockGraph's message log: 32-byte hashes as uint64 keys, and append-only columns.

A hash travels through the kernels as a key: four uint64 words holding its 32 bytes read
big-endian, so comparing keys word by word is exactly the byte order of the hashes
(kernels.blockgraph_index). Messages are kept as the chunks received and concatenated only when
every row is needed, so a live feed's incremental walk reads only its new chunk.

Example: ``key_hashes(hash_keys(hashes_to_array([h]))) == hashes_to_array([h])``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["MessageColumns", "hash_keys", "hashes_to_array", "key_hashes", "or_words"]


def hashes_to_array(hashes) -> np.ndarray:
    """32-byte hashes (list of bytes or (n, 32) uint8) as a C-contiguous (n, 32) uint8 array.

    Example: ``hashes_to_array([bytes(32)]).shape == (1, 32)``.
    """
    if isinstance(hashes, np.ndarray):
        arr = np.ascontiguousarray(hashes, dtype=np.uint8)
        if arr.ndim != 2 or arr.shape[1] != 32:
            raise ValueError(f"hash array must have shape (n, 32), got {arr.shape}")
        return arr
    if isinstance(hashes, (bytes, bytearray, memoryview)):
        raise TypeError("expected a sequence of 32-byte hashes, got a single bytes object")
    hashes = [bytes(h) for h in hashes]
    if any(len(h) != 32 for h in hashes):
        raise ValueError("every hash must be exactly 32 bytes")
    return np.frombuffer(b"".join(hashes), np.uint8).reshape(len(hashes), 32).copy()


def hash_keys(rows: np.ndarray) -> np.ndarray:
    """(n, 32) uint8 -> (n, 4) uint64 big-endian words (numeric order = byte order)."""
    return rows.view(">u8").astype(np.uint64)


def or_words(keys: np.ndarray) -> np.ndarray:
    """(n, 4) uint64 keys -> (n,) OR of the four words (0 exactly for the zero hash); column
    ORs, since ``.any(axis=1)`` on (n, 32) rows costs ~20 ns per row."""
    return keys[:, 0] | keys[:, 1] | keys[:, 2] | keys[:, 3]


def key_hashes(keys: np.ndarray) -> np.ndarray:
    """(n, 4) uint64 keys -> (n, 32) uint8 hashes."""
    return np.ascontiguousarray(keys, dtype=np.uint64).astype(">u8").view(np.uint8).reshape(-1, 32)


class MessageColumns:
    """Append-only columns kept as the chunks received; concatenated lazily, once, when every
    row is needed (a full recompute, a report); the incremental walk reads only new chunks."""

    def __init__(self, spec):
        self._spec = spec  # name -> (dtype, trailing shape)
        self._chunks = []  # (first row, {name: array})
        self.n = 0

    def append(self, **cols):
        k = len(next(iter(cols.values())))
        self._chunks.append((self.n, {name: np.ascontiguousarray(col, dtype=self._spec[name][0])
                                      for name, col in cols.items()}))
        self.n += k

    def _compact(self):
        if len(self._chunks) > 1:
            merged = {}
            for name in self._spec:  # column by column, dropping each chunk's piece once merged:
                merged[name] = np.concatenate([c[name] for _, c in self._chunks])  # peak: one column extra
                for _, c in self._chunks:
                    del c[name]
            self._chunks = [(0, merged)]

    def __getitem__(self, name):
        if not self._chunks:
            dt, shp = self._spec[name]
            return np.empty((0,) + shp, dt)
        self._compact()
        return self._chunks[0][1][name]

    def since(self, row, name):
        """Rows row..n of one column: the newest chunk as it is when ``row`` starts it, else a
        view of the compacted column (never a second copy of many chunks)."""
        if row == self.n:
            dt, shp = self._spec[name]
            return np.empty((0,) + shp, dt)
        first, cols = self._chunks[-1]
        if first == row:
            return cols[name]
        return self[name][row:]
