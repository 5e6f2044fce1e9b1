"""The Numba ZIP-215 backend: key cache, thread split, and the call into kernels/.

`verify_columns` is the backend entry point used by `engine.verification.api` (see its docstring for
the contract). Per call:
  1. distinct public keys are found with one `np.unique` over the 32-byte key column;
  2. each distinct key is looked up in a process-wide cache of decompressed keys (a
     validator set is small and its keys repeat across calls); misses are decompressed in
     one kernel call, and keys that repeat get precomputed tables within a memory budget
     (`KeyCache`): a comb, which makes their single checks cheaper, and odd multiples,
     which make their Straus MSM terms cheaper;
  3. rows are split into `threads` contiguous chunks; each chunk runs
     `kernels.ed25519_verify.verify_chunk` (nogil) in a worker thread with its own
     128-bit random coefficients z_i from the OS CSPRNG;
  4. what the call saw steers the next one: per key, a decaying count of its failed rows
     marks keys whose rows mostly fail as suspect (their rows are checked singly, outside
     the batches: a validator with a wrong key fails every row); over the other rows, a
     decaying share of invalid rows lets the next call start in single-check mode when bad
     rows are common. Both steer the work only, never a verdict.
"""
from __future__ import annotations

import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from kernels.ed25519_verify import (
    SINGLE_MODE_SHARE, BatchPlan, KeyTables, SignedRows, build_key_tables, decompress_rows,
    verify_chunk,
)
from kernels.fixed_base import COMB_COLS, KEY_COMB_ROWS, ODD_MULTIPLES

__all__ = ["verify_columns", "forget_bad_share", "KeyCache", "KEY_CACHE", "MAX_BATCH_ROWS",
           "TABLE_BYTES_PER_KEY", "key_table_budget"]

# Rows per batch equation. Larger batches amortize Pippenger's bucket sums and coalesce
# more rows per key: on a 16,384-row column from 1,000 keys, batches of 4,096 / 8,192 /
# 16,384 rows measured 5.0x / 5.7x / 6.1x libsodium on one thread.
MAX_BATCH_ROWS = 16384
# Below this many rows per thread, splitting across threads costs more than it saves.
MIN_ROWS_PER_THREAD = 256


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _libc():
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def set_heap_scratch(on: bool) -> None:
    """On: stop glibc from serving the kernels' multi-megabyte scratch arrays with mmap.

    Each batch equation allocates a few MB of scratch; above glibc's default threshold
    every such allocation is a fresh mmap whose first touch page-faults, and page faults
    of one process serialize on its memory-map lock: two verify threads measured 1.27x
    one thread in batch mode. With scratch served from per-thread heap arenas they
    measured 1.95x. The price is memory: freed heap blocks stay with the process.

    Off (for memory-heavy work after verifying, such as a job's BlockGraph stage): large
    arrays are mmapped again, so freeing them returns memory, and the heap is trimmed now.
    No-op where the C library has no mallopt.
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return
    if on:
        libc.mallopt(_M_MMAP_THRESHOLD, 256 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 512 << 20)
    else:
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 20)
        if hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)



# Bytes of precomputed tables per cached key: a comb of KEY_COMB_ROWS rows and the odd
# multiples, both 8 x 3 x 5 uint64 per point (kernels.fixed_base): 15 KiB.
TABLE_BYTES_PER_KEY = (KEY_COMB_ROWS * COMB_COLS + ODD_MULTIPLES) * 3 * 5 * 8
_DEFAULT_TABLE_MB = 256


def key_table_budget() -> int:
    """Bytes the key cache may spend on tables: BIZRA_KEY_TABLES_MB (default 256, i.e. tables
    for 17,476 keys), from the environment when the cache is created."""
    raw = os.environ.get("BIZRA_KEY_TABLES_MB", "").strip()
    if not raw:
        return _DEFAULT_TABLE_MB << 20
    try:
        mb = int(raw)
    except ValueError:
        raise ValueError(f"BIZRA_KEY_TABLES_MB: not an integer: {raw!r}") from None
    if mb < 0:
        raise ValueError(f"BIZRA_KEY_TABLES_MB: must be >= 0, got {mb}")
    return mb << 20


# A key is suspect while its decaying count of failed rows is at least this and at least
# half its decaying count of rows (both halve each time the key is seen in a call). One
# failed row is enough: with 10K validators a column of 16K rows holds ~1.6 rows per key, and
# a wrongly suspected key only costs its next rows a single check each.
_SUSPECT_MIN_BAD = 1.0


class KeyCache:
    """Decompressed public keys (extended points, Z = 1) by their 32-byte encoding, plus, for
    each key seen at least twice, its precomputed tables (kernels.fixed_base): a comb for
    single checks and odd multiples for small batches (Straus), 15 KiB per key
    (TABLE_BYTES_PER_KEY). Building them costs about 50 us per key, three single checks,
    once per process: a validator set's keys repeat, and when bad rows come, their single
    checks find the tables ready.

    Bounded: past `capacity` keys it starts over (a validator set is far smaller; an
    adversary sending fresh keys only costs itself decompression), and tables go to at most
    `table_budget // TABLE_BYTES_PER_KEY` keys (the first ones to qualify; 17,476 keys with
    the default 256 MiB). Keys past the budget are checked without tables: their single
    checks cost about twice as much, verdicts are the same.

    Per key it also keeps decaying counts of rows and failed rows (`suspects`).
    """

    def __init__(self, capacity: int = 1 << 20, table_budget: int | None = None):
        self.capacity = capacity
        budget = key_table_budget() if table_budget is None else table_budget
        self.table_capacity = budget // TABLE_BYTES_PER_KEY
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self._slot: dict[bytes, int] = {}
        self._points = np.empty((1024, 4, 5), dtype=np.uint64)
        self._ok = np.empty(1024, dtype=np.bool_)
        self._seen = np.zeros(1024, dtype=np.int64)
        self._table_of = np.full(1024, -1, dtype=np.int64)
        self._recent_rows = np.zeros(1024, dtype=np.float64)
        self._recent_bad = np.zeros(1024, dtype=np.float64)
        self._combs = np.empty((0, KEY_COMB_ROWS, COMB_COLS, 3, 5), dtype=np.uint64)
        self._odds = np.empty((0, ODD_MULTIPLES, 3, 5), dtype=np.uint64)
        self._n_tables = 0

    def __len__(self) -> int:
        return len(self._slot)

    @property
    def n_tables(self) -> int:
        return self._n_tables

    def lookup(self, keys: np.ndarray, counts: np.ndarray,
               names: list[bytes] | None = None) -> tuple[KeyTables, np.ndarray]:
        """For distinct keys (u, 32) uint8 appearing counts[j] times in this call: their
        KeyTables (kernels.ed25519_verify) and their slots (for `record`).
        ``names``: the keys as bytes, when the caller has them already."""
        if names is None:
            names = [k.tobytes() for k in keys]
        with self._lock:
            if len(self._slot) + len(names) > self.capacity:
                self._clear()
            slots = np.fromiter((self._slot.get(k, -1) for k in names), dtype=np.int64,
                                count=len(names))
            if len(slots) and slots.min() < 0:
                missing = np.flatnonzero(slots < 0)
                slots[missing] = self._insert(keys[missing], [names[j] for j in missing])
            self._seen[slots] += counts
            self._build_tables(slots)
            suspect = ((self._recent_bad[slots] >= _SUSPECT_MIN_BAD)
                       & (2 * self._recent_bad[slots] >= self._recent_rows[slots]))
            tables = KeyTables(self._points[slots], self._ok[slots], self._table_of[slots],
                               self._combs, self._odds, suspect)
            return tables, slots

    def record(self, slots: np.ndarray, rows: np.ndarray, bad: np.ndarray) -> None:
        """After a call: rows[j] of its checked rows belonged to key slots[j], bad[j] failed.
        Races between concurrent calls only blur these counts, which steer work only."""
        self._recent_rows[slots] = 0.5 * self._recent_rows[slots] + rows
        self._recent_bad[slots] = 0.5 * self._recent_bad[slots] + bad

    def forget_suspects(self) -> None:
        """Drop the per-key counts of failed rows (benchmarks isolate their cases with it)."""
        self._recent_rows[:] = 0
        self._recent_bad[:] = 0

    def _insert(self, keys: np.ndarray, names: list[bytes]) -> np.ndarray:
        points = np.empty((len(keys), 4, 5), dtype=np.uint64)
        ok = np.empty(len(keys), dtype=np.bool_)
        decompress_rows(np.ascontiguousarray(keys), points, ok)
        start = len(self._slot)
        self._grow(start + len(keys))
        end = start + len(keys)
        self._points[start:end] = points
        self._ok[start:end] = ok
        self._seen[start:end] = 0
        self._table_of[start:end] = -1
        self._recent_rows[start:end] = 0
        self._recent_bad[start:end] = 0
        for j, name in enumerate(names):
            self._slot[name] = start + j
        return np.arange(start, end, dtype=np.int64)

    def _build_tables(self, slots: np.ndarray) -> None:
        want = slots[(self._seen[slots] >= 2) & (self._table_of[slots] < 0) & self._ok[slots]]
        want = want[: max(0, self.table_capacity - self._n_tables)]
        if not len(want):
            return
        start = self._n_tables
        if start + len(want) > len(self._combs):
            # New arrays, never resized in place: calls in flight keep reading the old ones.
            cap = min(self.table_capacity, max(2 * len(self._combs), start + len(want)))
            for name in ("_combs", "_odds"):
                old = getattr(self, name)
                grown = np.empty((cap,) + old.shape[1:], dtype=np.uint64)
                grown[:start] = old[:start]
                setattr(self, name, grown)
        end = start + len(want)
        build_key_tables(self._points[want], self._combs[start:end], self._odds[start:end])
        self._table_of[want] = np.arange(start, end)
        self._n_tables += len(want)

    def _grow(self, size: int) -> None:
        if size <= len(self._ok):
            return
        cap = max(size, 2 * len(self._ok))
        for name in ("_points", "_ok", "_seen", "_table_of", "_recent_rows", "_recent_bad"):
            old = getattr(self, name)
            new = np.empty((cap,) + old.shape[1:], dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)


KEY_CACHE = KeyCache()

# Share of invalid rows among recent rows (decaying average over calls): when it is high,
# chunks start with single checks instead of a full batch that would mostly be bisected.
_recent_bad_share = 0.0
_SHARE_MEMORY_ROWS = 1 << 16


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view: Numba compiles one machine-code version per argument type, and
    writability is part of the type, so inputs are always passed read-only (one compile,
    whether the caller's bytes came from `np.frombuffer` or a fresh array)."""
    view = np.ascontiguousarray(a).view()
    view.flags.writeable = False
    return view


_SMALL_CALL_ROWS = 256  # below this, a dict finds the distinct keys faster than np.unique's sort


def _distinct_keys(pks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[bytes] | None]:
    """(distinct keys (u, 32), row -> distinct index (n,) int64, counts (u,), the distinct keys
    as bytes or None). Small calls (a service's micro-batches) spend more time in np.unique's
    setup than in the check itself, so they use a dict."""
    n = len(pks)
    if n >= _SMALL_CALL_ROWS:
        distinct, key_index, counts = np.unique(pks.view("V32").ravel(), return_inverse=True, return_counts=True)
        return distinct.view(np.uint8).reshape(-1, 32), key_index.astype(np.int64).ravel(), counts, None
    first: dict[bytes, int] = {}
    key_index = np.empty(n, np.int64)
    for i, name in enumerate(pks.tobytes()[j:j + 32] for j in range(0, 32 * n, 32)):  # once per row, small n only
        key_index[i] = first.setdefault(name, len(first))
    names = list(first)
    counts = np.bincount(key_index, minlength=len(names))
    return np.frombuffer(b"".join(names), np.uint8).reshape(-1, 32), key_index, counts, names


def _random_coefficients(n: int) -> np.ndarray:
    """(n, 2) uint64: one uniformly random 128-bit z_i per row, from the OS CSPRNG."""
    return np.frombuffer(os.urandom(16 * n), dtype=np.uint64).reshape(n, 2).copy()


def verify_columns(cols, *, threads: int, batch: bool) -> np.ndarray:
    """ZIP-215 verdict per row of an `engine.verification.api.VerifyColumns` (see module docstring)."""
    n = cols.n
    out = np.zeros(n, dtype=np.bool_)
    if n == 0:
        return out
    msg_data, msg_offsets = _readonly(cols.msg_data), _readonly(cols.msg_offsets)
    sigs, pks = _readonly(cols.sigs), _readonly(cols.pks)
    distinct, key_index, counts, names = _distinct_keys(pks)
    plan = BatchPlan(bool(batch), MAX_BATCH_ROWS, bool(batch and _recent_bad_share > SINGLE_MODE_SHARE))
    keys, slots = KEY_CACHE.lookup(distinct, counts, names)
    row_ok = np.array(cols.well_formed, dtype=np.bool_, copy=True)
    z = _random_coefficients(n)

    def run(lo: int, hi: int) -> None:
        # msg_offsets stay absolute: the kernel reads msg_data at [offsets[i], offsets[i+1]).
        rows = SignedRows(msg_data, msg_offsets[lo:hi + 1], sigs[lo:hi], pks[lo:hi],
                          key_index[lo:hi])
        verify_chunk(rows, keys, z[lo:hi], plan, row_ok[lo:hi], out[lo:hi])

    n_chunks = max(1, min(threads, n // MIN_ROWS_PER_THREAD))
    if n_chunks == 1:
        run(0, n)
    else:
        bounds = np.linspace(0, n, n_chunks + 1).astype(np.int64)
        with ThreadPoolExecutor(max_workers=n_chunks) as pool:
            list(pool.map(run, bounds[:-1], bounds[1:]))
    failed = row_ok & ~out
    KEY_CACHE.record(slots, np.bincount(key_index, weights=row_ok, minlength=len(slots)),
                     np.bincount(key_index, weights=failed, minlength=len(slots)))
    trusted = row_ok & ~keys.suspect[key_index]
    _remember_bad_share(trusted, out)
    return out


def forget_bad_share() -> None:
    """Reset the remembered share of invalid rows (benchmarks isolate their cases with it)."""
    global _recent_bad_share
    _recent_bad_share = 0.0


def _remember_bad_share(checked: np.ndarray, valid: np.ndarray) -> None:
    # Concurrent calls may race on this update; it only steers a heuristic, never a verdict.
    global _recent_bad_share
    n_checked = int(np.count_nonzero(checked))
    if n_checked:
        share = int(np.count_nonzero(checked & ~valid)) / n_checked
        weight = min(1.0, n_checked / _SHARE_MEMORY_ROWS)
        _recent_bad_share += weight * (share - _recent_bad_share)
