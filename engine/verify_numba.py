"""The Numba ZIP-215 backend: key cache, thread split, and the call into kernels/.

`verify_columns` is the backend entry point used by `engine.verify` (see its docstring for
the contract). Per call:
  1. distinct public keys are found with one `np.unique` over the 32-byte key column;
  2. each distinct key is looked up in a process-wide cache of decompressed keys (a
     validator set is small and its keys repeat across calls), and misses are decompressed
     in one kernel call;
  3. rows are split into `threads` contiguous chunks; each chunk runs
     `kernels.ed25519_verify.verify_chunk` (nogil) in a worker thread with its own
     128-bit random coefficients z_i from the OS CSPRNG.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from kernels.ed25519_verify import decompress_rows, verify_chunk

__all__ = ["verify_columns", "KeyCache", "KEY_CACHE", "MAX_BATCH_ROWS"]

# Rows per batch equation. Larger batches amortize Pippenger's bucket sums and coalesce
# more rows per key: on a 16,384-row column from 1,000 keys, batches of 4,096 / 8,192 /
# 16,384 rows measured 5.0x / 5.7x / 6.1x libsodium on one thread.
MAX_BATCH_ROWS = 16384
# Below this many rows per thread, splitting across threads costs more than it saves.
MIN_ROWS_PER_THREAD = 256


class KeyCache:
    """Decompressed public keys (extended points, Z = 1) by their 32-byte encoding.

    Bounded: when it would exceed `capacity` keys it starts over (a validator set is far
    smaller; an adversary sending fresh keys only costs itself decompression).
    """

    def __init__(self, capacity: int = 1 << 20):
        self.capacity = capacity
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self._slot: dict[bytes, int] = {}
        self._points = np.empty((1024, 4, 5), dtype=np.uint64)
        self._ok = np.empty(1024, dtype=np.bool_)

    def __len__(self) -> int:
        return len(self._slot)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(points (u, 4, 5), decodable (u,)) for distinct keys given as (u, 32) uint8."""
        names = [k.tobytes() for k in keys]
        with self._lock:
            if len(self._slot) + len(names) > self.capacity:
                self._clear()
            slots = np.fromiter((self._slot.get(k, -1) for k in names), dtype=np.int64,
                                count=len(names))
            missing = np.flatnonzero(slots < 0)
            if len(missing):
                fresh_points = np.empty((len(missing), 4, 5), dtype=np.uint64)
                fresh_ok = np.empty(len(missing), dtype=np.bool_)
                decompress_rows(np.ascontiguousarray(keys[missing]), fresh_points, fresh_ok)
                start = len(self._slot)
                self._grow(start + len(missing))
                self._points[start:start + len(missing)] = fresh_points
                self._ok[start:start + len(missing)] = fresh_ok
                for j, row in enumerate(missing):
                    self._slot[names[row]] = start + j
                slots[missing] = np.arange(start, start + len(missing))
            return self._points[slots], self._ok[slots]

    def _grow(self, size: int) -> None:
        if size <= len(self._ok):
            return
        cap = max(size, 2 * len(self._ok))
        points = np.empty((cap, 4, 5), dtype=np.uint64)
        ok = np.empty(cap, dtype=np.bool_)
        points[: len(self._ok)] = self._points
        ok[: len(self._ok)] = self._ok
        self._points, self._ok = points, ok


KEY_CACHE = KeyCache()


def _random_coefficients(n: int) -> np.ndarray:
    """(n, 2) uint64: one uniformly random 128-bit z_i per row, from the OS CSPRNG."""
    return np.frombuffer(os.urandom(16 * n), dtype=np.uint64).reshape(n, 2).copy()


def verify_columns(cols, *, threads: int, batch: bool) -> np.ndarray:
    """ZIP-215 verdict per row of an `engine.verify.VerifyColumns` (see module docstring)."""
    n = cols.n
    out = np.zeros(n, dtype=np.bool_)
    if n == 0:
        return out
    pks = np.ascontiguousarray(cols.pks)
    distinct, key_index = np.unique(pks.view("V32").ravel(), return_inverse=True)
    key_points, key_ok = KEY_CACHE.lookup(distinct.view(np.uint8).reshape(-1, 32))
    key_index = key_index.astype(np.int64).ravel()
    row_ok = np.array(cols.well_formed, dtype=np.bool_, copy=True)
    z = _random_coefficients(n)

    def run(lo: int, hi: int) -> None:
        # msg_offsets stay absolute: the kernel reads msg_data at [offsets[i], offsets[i+1]).
        verify_chunk(cols.msg_data, cols.msg_offsets[lo:hi + 1], cols.sigs[lo:hi],
                     pks[lo:hi], row_ok[lo:hi], key_index[lo:hi], key_points, key_ok,
                     z[lo:hi], batch, MAX_BATCH_ROWS, out[lo:hi])

    n_chunks = max(1, min(threads, n // MIN_ROWS_PER_THREAD))
    bounds = np.linspace(0, n, n_chunks + 1).astype(np.int64)
    if n_chunks == 1:
        run(0, n)
    else:
        with ThreadPoolExecutor(max_workers=n_chunks) as pool:
            list(pool.map(run, bounds[:-1], bounds[1:]))
    return out
