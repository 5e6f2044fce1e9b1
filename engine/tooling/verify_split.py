"""Where one Numba batch verification spends its time, and same-run throughput helpers.

Shared by scripts/bench_verify.py, the asv suite (asv_benchmarks/bench_verify.py) and
notebooks/verify_throughput.ipynb, which import it from the installed package. The split calls
the same kernels, on the same inputs, as ``scripts/bench_verify.py --profile``: decompression of R,
SHA-512(R || A || M), the whole per-row prepare (S check + decompression + hash + mod L),
and the batch equation (random scalars + multi-scalar multiplication + cofactor [8]).
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from engine.verification import numba_backend
from engine.verification.sodium_backend import verify_columns as sodium_columns

SPLIT_STEPS = ("decompress_r", "sha512", "prepare", "batch_equation")


def best_seconds(fn: Callable[[], object], repeat: int, before: Callable[[], object] | None = None) -> float:
    """Best wall time of ``repeat`` calls; ``before`` runs untimed ahead of each call."""
    best = float("inf")
    for _ in range(repeat):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def numba_rate(cols, *, threads: int = 1, repeat: int = 3, cold_keys: bool = False) -> float:
    """Rows/s of the Numba batch verifier; ``cold_keys``: every call starts with an empty key
    cache (keys never seen), otherwise the keys are cached by an untimed first call."""
    numba_backend.forget_bad_share()
    run = lambda: numba_backend.verify_columns(cols, threads=threads, batch=True)  # noqa: E731
    if not run().all():
        raise AssertionError("numba rejected an honest signature")
    before = numba_backend.KEY_CACHE._clear if cold_keys else None
    return cols.n / best_seconds(run, repeat, before)


def sodium_rate(cols, *, repeat: int = 3) -> float:
    """Rows/s of plain libsodium (crypto_sign_verify_detached), one thread: the baseline."""
    run = lambda: sodium_columns(cols, threads=1, batch=False)  # noqa: E731
    if not run().all():
        raise AssertionError("libsodium rejected an honest signature")
    return cols.n / best_seconds(run, repeat)


def split_seconds(cols, *, repeat: int = 3) -> dict[str, float]:
    """Best seconds of each step in SPLIT_STEPS over the whole column, keys cached, 1 thread."""
    from kernels.ed25519_verify import SignedRows, batch_verify_rows, new_prepared, prepare_rows
    from kernels.sha512 import sha512_ram_columns
    from kernels.verify_x8 import decompress_rows_x8

    n, pks = cols.n, cols.pks
    distinct, key_index, counts = np.unique(pks.view("V32").ravel(), return_inverse=True, return_counts=True)
    distinct = distinct.view(np.uint8).reshape(-1, 32)
    numba_backend.KEY_CACHE.lookup(distinct, counts)  # seen twice: the key tables exist
    keys, _ = numba_backend.KEY_CACHE.lookup(distinct, counts)
    rows = SignedRows(cols.msg_data, cols.msg_offsets, cols.sigs, pks, key_index.astype(np.int64).ravel())
    prep = new_prepared(cols.well_formed.copy())
    digests = np.empty((n, 64), np.uint8)
    every_row = np.arange(n, dtype=np.int64)
    out = np.zeros(n, bool)
    z = numba_backend._random_coefficients(n)
    steps = {
        "decompress_r": lambda: decompress_rows_x8(cols.sigs, every_row, prep.r_points, np.empty(n, bool)),
        "sha512": lambda: sha512_ram_columns(cols.sigs, pks, cols.msg_data, cols.msg_offsets, digests),
        "prepare": lambda: prepare_rows(rows, keys, prep),  # honest rows: row_ok stays all True
        "batch_equation": lambda: batch_verify_rows(every_row, z, rows, keys, prep, out),
    }
    split = {}
    for name in SPLIT_STEPS:  # prepare fills r, k, s before the batch equation reads them
        split[name] = best_seconds(steps[name], repeat)
    if not out.all():
        raise AssertionError("the batch equation rejected an honest column")
    return split


# ---- validators x bad rows (scripts/bench_verify.py --grid and bench_verify.BadRows) ----------

GRID_VALIDATORS = (1_000, 10_000, 100_000)
GRID_CASES = (("clean", 0.0), ("scattered", 0.005), ("scattered", 0.02), ("concentrated", 0.02))


def warm_validator_set(columns, n_validators: int) -> None:
    """A fresh key cache that has seen these columns, as in a job that has been running."""
    from engine.synthetic import with_bad_rows

    numba_backend.KEY_CACHE = numba_backend.KeyCache()
    numba_backend.forget_bad_share()
    for column in columns:
        numba_backend.verify_columns(with_bad_rows(column, "clean", 0, n_validators, seed=0)[0],
                                     threads=1, batch=True)


def stream_rates(columns, n_validators: int, mode: str, share: float, *, streamed: bool = True,
                 seed: int = 0) -> tuple[float, float]:
    """(numba rows/s, libsodium rows/s), one thread each, on the columns after the first.

    The adaptive state starts empty; the first column is verified untimed (the verifier learns
    the bad share and the suspect keys, as from earlier chunks of a stream). streamed: the
    timed columns are the other ones, each new to the verifier; otherwise the first column is
    timed again that many times (one column measured after a warm-up call). Verdicts are
    checked against the truth on both sides."""
    from engine.synthetic import with_bad_rows

    numba_backend.forget_bad_share()
    numba_backend.KEY_CACHE.forget_suspects()
    stream = [with_bad_rows(col, mode, share, n_validators, seed=seed + j)
              for j, col in enumerate(columns)]
    if not streamed:
        stream = stream[:1] * len(stream)
    numba_backend.verify_columns(stream[0][0], threads=1, batch=True)
    ours = theirs = 0.0
    rows = 0
    for cols, truth in stream[1:]:
        t = time.perf_counter()
        got = numba_backend.verify_columns(cols, threads=1, batch=True)
        ours += time.perf_counter() - t
        if not (got == truth).all():
            raise AssertionError("numba: wrong verdicts")
        t = time.perf_counter()
        got = sodium_columns(cols, threads=1, batch=False)
        theirs += time.perf_counter() - t
        if not (got == truth).all():
            raise AssertionError("libsodium: wrong verdicts")
        rows += cols.n
    return rows / ours, rows / theirs
