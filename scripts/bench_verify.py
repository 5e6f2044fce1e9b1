"""Verify throughput of the Numba backend vs 1-thread libsodium on the same signatures.

    .venv/bin/python scripts/bench_verify.py            # the README's table
    .venv/bin/python scripts/bench_verify.py --quick    # smaller columns
    .venv/bin/python scripts/bench_verify.py --bad-share 0.001 0.003 0.02   # columns with bad rows
    .venv/bin/python scripts/bench_verify.py --profile        # where a batch spends its time
    .venv/bin/python scripts/bench_verify.py --msm-crossover  # Straus vs Pippenger by size
    .venv/bin/python scripts/bench_verify.py --scaling        # 1 vs 2 threads, best of 3
    .venv/bin/python scripts/bench_verify.py --grid           # validators x bad rows, streamed

Every ratio is measured in this run against plain libsodium (crypto_sign_verify_detached,
one thread) on the same signatures, so it does not depend on how busy the machine is.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from engine.verification import numba_backend
from engine.synthetic import signed_columns as make_signatures
from engine.synthetic import validator_columns
from engine.verification.api import use_heap_scratch
from engine.verification.sodium_backend import verify_columns as sodium_verify_columns

from engine.tooling.verify_split import (
    GRID_CASES, GRID_VALIDATORS, split_seconds, stream_rates, warm_validator_set,
)


def best_rate(fn, n_rows: int, repeat: int, expect=None) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        ok = fn()
        best = min(best, time.perf_counter() - t)
        assert (ok == expect).all() if expect is not None else ok.all(), "wrong verdicts"
    return n_rows / best


def corrupt(cols, share: float, seed: int = 7):
    """A copy of cols with one bit of S flipped in a random `share` of rows; and the truth."""
    rng = np.random.default_rng(seed)
    bad = rng.random(cols.n) < share
    sigs = cols.sigs.copy()
    sigs[bad, 40] ^= 1
    return dataclasses.replace(cols, sigs=sigs), ~bad


def numba_rate(cols, *, threads=1, batch=True, repeat=3, cold_keys=False, expect=None):
    def run():
        if cold_keys:
            numba_backend.KEY_CACHE._clear()
        return numba_backend.verify_columns(cols, threads=threads, batch=batch)
    # Each case starts with no memory of earlier cases' bad rows; its warm-up call then
    # teaches the verifier this column's share, as a stream of such columns would.
    numba_backend.forget_bad_share()
    run()  # warm the key cache (and the JIT on the first call)
    return best_rate(run, cols.n, repeat, expect)


def sodium_rate(cols, repeat=3, expect=None):
    return best_rate(lambda: sodium_verify_columns(cols, threads=1, batch=False), cols.n, repeat,
                     expect)


def profile(column: int) -> None:
    """Time split of one batch: decompression of R, SHA-512, the whole prepare, the MSM (the
    same measurement as the asv Split benchmark and the verify_throughput notebook)."""
    cols = make_signatures(column, 1000)
    labels = {"decompress_r": "decompress R", "sha512": "SHA-512(R||A||M)",
              "prepare": "prepare (S check, decompress, hash, mod L)",
              "batch_equation": "batch equation (scalars + MSM + [8])"}
    print(f"profile: column of {cols.n} signatures from 1000 cached keys, 1 thread")
    for name, best in split_seconds(cols, repeat=3).items():
        print(f"  {labels[name]:45s} {best * 1e3:8.2f} ms {best / cols.n * 1e6:6.2f} us/row")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def msm_crossover() -> None:
    """Straus vs Pippenger on batch-shaped inputs (n short 128-bit terms, n long terms + B)."""
    from kernels.ed25519_verify import decompress_rows
    from kernels.msm import msm_pippenger, msm_straus, pippenger_window
    from kernels.scalar25519 import L_INT

    rng = np.random.default_rng(3)
    print(f"{'rows':>5s} {'terms':>6s} {'straus ms':>10s} {'pippenger ms':>13s}")
    for n in (4, 8, 16, 24, 32, 48, 64, 96, 128):
        cols = make_signatures(n, n, seed=n)
        pts = np.empty((n, 4, 5), np.uint64)
        good = np.empty(n, bool)
        decompress_rows(np.ascontiguousarray(cols.pks), pts, good)
        short = np.zeros((n, 4), np.uint64)
        short[:, :2] = rng.integers(0, 2**63, size=(n, 2), dtype=np.uint64)
        long_ = np.array([[(v >> (64 * j)) & (2**64 - 1) for j in range(4)]
                          for v in (int.from_bytes(rng.bytes(32), "little") % L_INT
                                    for _ in range(n + 1))], np.uint64)
        long_pts = np.concatenate([pts[:1], pts])
        c = pippenger_window(n, n + 1)
        none = (np.zeros(4, np.uint64), np.empty((0, 64, 3, 5), np.uint64),
                np.empty(0, np.int64), np.empty((0, 4), np.uint64))
        st = min(_timed(lambda: msm_straus(pts, short, long_pts, long_, *none)) for _ in range(5))
        pp = min(_timed(lambda: msm_pippenger(pts, short, long_pts, long_, *none, c))
                 for _ in range(5))
        print(f"{n:5d} {2 * n + 1:6d} {st * 1e3:10.3f} {pp * 1e3:13.3f}")


def scaling() -> None:
    """Throughput with 1 and with 2 threads on columns from 1,000 cached keys."""
    for n in (16384, 32768):
        cols = make_signatures(n, 1000)
        one = numba_rate(cols, threads=1)
        two = numba_rate(cols, threads=2)
        print(f"column {n}: 1 thread {one:,.0f}/s, 2 threads {two:,.0f}/s, scaling {two / one:.2f}x")


def grid(rows: int, calls: int, validators=GRID_VALIDATORS, streamed: bool = True) -> None:
    """Validators x bad rows, one thread (engine.tooling.verify_split.stream_rates). For each
    validator count a fresh key cache is warmed by two columns (a job that has been running);
    then each case gets one untimed column and `calls` timed ones (streamed: each new to the
    verifier; otherwise the untimed column again). The bad validators of "concentrated" are
    the same in every column."""
    print(f"{'validators':>10s} {'case':>18s} {'numba/s':>9s} {'sodium/s':>9s} {'ratio':>6s} "
          f"{'tables':>7s}")
    for n_validators in validators:
        columns = validator_columns(n_validators, 2 + len(GRID_CASES) * (1 + calls), rows,
                                    seed=n_validators)
        warm_validator_set(columns[:2], n_validators)
        for c, (mode, share) in enumerate(GRID_CASES):
            at = 2 + c * (1 + calls)
            ours, theirs = stream_rates(columns[at:at + 1 + calls], n_validators, mode, share,
                                        streamed=streamed, seed=100 * c)
            label = f"{mode} {share:.1%}" if share else mode
            print(f"{n_validators:10d} {label:>18s} {ours:9.0f} {theirs:9.0f} {ours / theirs:6.2f} "
                  f"{numba_backend.KEY_CACHE.n_tables:7d}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--profile", action="store_true", help="only the time split of one batch")
    ap.add_argument("--msm-crossover", action="store_true", help="only Straus vs Pippenger by size")
    ap.add_argument("--scaling", action="store_true", help="only 1 vs 2 threads")
    ap.add_argument("--grid", action="store_true",
                    help="only validators (1K, 10K, 100K) x bad rows, streamed columns")
    ap.add_argument("--calls", type=int, default=3, help="timed columns per grid case")
    ap.add_argument("--same-column", action="store_true",
                    help="grid: time the warm-up column again instead of new ones")
    ap.add_argument("--bad-share", type=float, nargs="*", default=[],
                    help="also measure the headline column with this share of bad signatures")
    args = ap.parse_args()
    use_heap_scratch()  # this process is ours: verify threads keep their scratch on the heap, as under `bizra`
    column = 4096 if args.quick else 16384
    if args.profile:
        return profile(column)
    if args.msm_crossover:
        return msm_crossover()
    if args.scaling:
        return scaling()
    if args.grid:
        return grid(column, args.calls, streamed=not args.same_column)
    t = time.perf_counter()
    numba_backend.verify_columns(make_signatures(8, 8), threads=1, batch=True)
    print(f"first call (JIT load or compile): {time.perf_counter() - t:.2f} s")

    rows = []
    headline = make_signatures(column, 1000)
    base = sodium_rate(headline)
    rows.append((f"column {column}, 1000 keys cached, 1 thread", numba_rate(headline), base))
    rows.append((f"column {column}, 1000 keys cached, 2 threads", numba_rate(headline, threads=2), base))
    rows.append((f"column {column}, single verify (POI_BATCH_VERIFY=0)", numba_rate(headline, batch=False), base))
    for share in args.bad_share:
        cols, truth = corrupt(headline, share)
        base_bad = sodium_rate(cols, expect=truth)
        rows.append((f"column {column}, {share:.1%} bad, batch", numba_rate(cols, expect=truth), base_bad))
        rows.append((f"column {column}, {share:.1%} bad, single", numba_rate(cols, batch=False, expect=truth),
                     base_bad))
    fresh = make_signatures(column, column)
    base_fresh = sodium_rate(fresh)
    rows.append((f"column {column}, all keys distinct, never seen", numba_rate(fresh, cold_keys=True), base_fresh))
    for size in (1, 8, 64, 256, 1024, 4096):
        batch = make_signatures(size, size, seed=size)
        reps = max(3, 2000 // size)
        rows.append((f"batch {size}, distinct keys, cached",
                     numba_rate(batch, repeat=reps), sodium_rate(batch, repeat=reps)))
    print(f"{'case':58s} {'numba/s':>10s} {'sodium/s':>10s} {'ratio':>6s}")
    for name, ours, theirs in rows:
        print(f"{name:58s} {ours:10.0f} {theirs:10.0f} {ours / theirs:6.2f}")


if __name__ == "__main__":
    main()
