"""Verify throughput of the Numba backend vs 1-thread libsodium on the same signatures.

    .venv/bin/python scripts/bench_verify.py            # the issue's table
    .venv/bin/python scripts/bench_verify.py --quick    # smaller columns
    .venv/bin/python scripts/bench_verify.py --bad-share 0.001 0.003 0.02   # columns with bad rows

Every ratio is measured in this run against plain libsodium (crypto_sign_verify_detached,
one thread) on the same signatures, so it does not depend on how busy the machine is.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from engine import verify_numba
from engine.bench_data import signed_columns as make_signatures
from engine.verify_sodium import verify_columns as sodium_verify_columns


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
            verify_numba.KEY_CACHE._clear()
        return verify_numba.verify_columns(cols, threads=threads, batch=batch)
    run()  # warm the key cache (and the JIT on the first call)
    return best_rate(run, cols.n, repeat, expect)


def sodium_rate(cols, repeat=3, expect=None):
    return best_rate(lambda: sodium_verify_columns(cols, threads=1, batch=False), cols.n, repeat,
                     expect)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bad-share", type=float, nargs="*", default=[],
                    help="also measure the headline column with this share of bad signatures")
    args = ap.parse_args()
    column = 4096 if args.quick else 16384
    t = time.perf_counter()
    verify_numba.verify_columns(make_signatures(8, 8), threads=1, batch=True)
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
