"""Numba ZIP-215 verifier throughput vs 1-thread libsodium on the same signatures (asv).

``time_*`` are absolute; ``track_ratio_*`` report numba throughput / libsodium throughput
measured back to back in the same process (DESIGN section 8: these machines are shared,
so only same-run ratios are comparable across runs). Messages are 120 bytes.
"""
from __future__ import annotations

import time

from engine import verify_numba
from engine.verify_sodium import verify_columns as sodium_columns
from engine.bench_data import signed_columns as make_signatures

BATCH_SIZES = [1, 8, 64, 256, 1024, 4096]


def _rate(fn, n: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


class FixedBatch:
    """One batch of distinct (cached) keys: the curve of throughput vs batch size."""

    params = [BATCH_SIZES]
    param_names = ["batch"]
    timeout = 300

    def setup(self, size: int) -> None:
        self.cols = make_signatures(size, size, seed=size)
        verify_numba.verify_columns(self.cols, threads=1, batch=True)

    def time_numba(self, size: int) -> None:
        verify_numba.verify_columns(self.cols, threads=1, batch=True)

    def time_libsodium(self, size: int) -> None:
        sodium_columns(self.cols, threads=1, batch=False)

    def track_ratio_vs_libsodium(self, size: int) -> float:
        reps = max(3, 2000 // size)
        ours = _rate(lambda: verify_numba.verify_columns(self.cols, threads=1, batch=True), size, reps)
        base = _rate(lambda: sodium_columns(self.cols, threads=1, batch=False), size, reps)
        return ours / base

    track_ratio_vs_libsodium.unit = "x"


class Column:
    """The headline: a column of 16,384 signatures from 1,000 validators (keys cached)."""

    timeout = 600

    def setup(self) -> None:
        self.cols = make_signatures(16384, 1000)
        verify_numba.verify_columns(self.cols, threads=1, batch=True)

    def time_numba_1_thread(self) -> None:
        verify_numba.verify_columns(self.cols, threads=1, batch=True)

    def time_numba_2_threads(self) -> None:
        verify_numba.verify_columns(self.cols, threads=2, batch=True)

    def track_ratio_vs_libsodium(self) -> float:
        n = self.cols.n
        ours = _rate(lambda: verify_numba.verify_columns(self.cols, threads=1, batch=True), n)
        base = _rate(lambda: sodium_columns(self.cols, threads=1, batch=False), n)
        return ours / base

    track_ratio_vs_libsodium.unit = "x"

    def track_verifies_per_second_all_threads(self) -> float:
        return _rate(lambda: verify_numba.verify_columns(self.cols, threads=2, batch=True), self.cols.n)

    track_verifies_per_second_all_threads.unit = "verifies/s"
