"""Numba ZIP-215 verifier throughput vs 1-thread libsodium on the same signatures (asv).

``time_*`` are absolute; ``track_ratio_*`` report numba throughput / libsodium throughput
measured back to back in the same process, unit "x" (docs/design.md, "Tests and benchmarks":
these machines are shared, so only same-run ratios are comparable across runs). Messages are 120 bytes.

``keys`` of FixedBatch: every row of a batch has its own key, and

- ``cached``: the verifier has seen the keys before (a known validator set, the steady
  state: decompressed points and precomputed tables come from the key cache);
- ``distinct``: the keys are new to the verifier (the key cache is emptied before each
  call), so every key is decompressed and no precomputed table helps.
"""
from __future__ import annotations

import os

from engine.verification import numba_backend
from engine.synthetic import signed_columns as make_signatures
from engine.verification.api import use_heap_scratch
from engine.verification.sodium_backend import verify_columns as sodium_columns

from engine.synthetic import validator_columns

from engine.tooling.verify_split import (
    GRID_CASES, GRID_VALIDATORS, SPLIT_STEPS, numba_rate, sodium_rate, split_seconds,
    stream_rates, warm_validator_set,
)

# A benchmark process is ours: verify threads keep their scratch on the heap, as under `bizra`.
use_heap_scratch()

BATCH_SIZES = [1, 8, 64, 256, 1024, 4096]
KEYS = ["cached", "distinct"]


class FixedBatch:
    """One batch: the curve of throughput vs batch size, for cached and for new keys."""

    params = [BATCH_SIZES, KEYS]
    param_names = ["batch", "keys"]
    timeout = 300

    def setup(self, size: int, keys: str) -> None:
        self.cols = make_signatures(size, size, seed=size)
        numba_backend.forget_bad_share()
        numba_backend.verify_columns(self.cols, threads=1, batch=True)
        self.cold = keys == "distinct"

    def time_numba(self, size: int, keys: str) -> None:
        # For "distinct" this includes emptying the key cache (about 20 us of Python).
        if self.cold:
            numba_backend.KEY_CACHE._clear()
        numba_backend.verify_columns(self.cols, threads=1, batch=True)

    def time_libsodium(self, size: int, keys: str) -> None:
        sodium_columns(self.cols, threads=1, batch=False)

    def track_ratio_vs_libsodium(self, size: int, keys: str) -> float:
        reps = max(3, 2000 // size)
        ours = numba_rate(self.cols, repeat=reps, cold_keys=self.cold)
        return ours / sodium_rate(self.cols, repeat=reps)

    track_ratio_vs_libsodium.unit = "x"


class Column:
    """The headline: a column of 16,384 signatures from 1,000 validators (keys cached)."""

    params = ["1", "all"]
    param_names = ["threads"]
    timeout = 600

    def setup(self, threads: str) -> None:
        self.cols = make_signatures(16384, 1000)
        self.threads = (os.cpu_count() or 1) if threads == "all" else int(threads)
        numba_backend.forget_bad_share()
        numba_backend.verify_columns(self.cols, threads=self.threads, batch=True)

    def time_numba(self, threads: str) -> None:
        numba_backend.verify_columns(self.cols, threads=self.threads, batch=True)

    def track_verifies_per_second(self, threads: str) -> float:
        return numba_rate(self.cols, threads=self.threads)

    track_verifies_per_second.unit = "verifies/s"

    def track_ratio_vs_libsodium(self, threads: str) -> float:
        """Against libsodium on one thread, whatever ``threads`` is (the 1-core figure)."""
        return numba_rate(self.cols, threads=self.threads) / sodium_rate(self.cols)

    track_ratio_vs_libsodium.unit = "x"


class Split:
    """Per-row microseconds of each stage of one batch (4,096 rows, 1,000 cached keys)."""

    params = [list(SPLIT_STEPS)]
    param_names = ["step"]
    timeout = 300

    def setup(self, step: str) -> None:
        self.cols = make_signatures(4096, 1000)
        numba_backend.verify_columns(self.cols, threads=1, batch=True)

    def track_us_per_row(self, step: str) -> float:
        return split_seconds(self.cols)[step] / self.cols.n * 1e6

    track_us_per_row.unit = "us/row"


class BadRows:
    """Validators x bad rows: numba / libsodium, one thread each, on the same streamed columns
    of 4,096 rows (engine.tooling.verify_split.stream_rates; the issue's grid uses 16,384:
    scripts/bench_verify.py --grid). Cases: clean, 0.5% and 2% scattered bad signatures, 2% of
    the validators with every signature bad."""

    params = [list(GRID_VALIDATORS), [f"{mode} {share:g}" for mode, share in GRID_CASES]]
    param_names = ["validators", "case"]
    timeout = 600

    def setup(self, validators: int, case: str) -> None:
        self.columns = validator_columns(validators, 6, 4096, seed=validators)
        warm_validator_set(self.columns[:2], validators)
        mode, share = case.split()
        self.mode, self.share = mode, float(share)

    def track_ratio_vs_libsodium(self, validators: int, case: str) -> float:
        ours, theirs = stream_rates(self.columns[2:], validators, self.mode, self.share)
        return ours / theirs

    track_ratio_vs_libsodium.unit = "x"
