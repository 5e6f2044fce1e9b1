"""Sign and libsodium-verify throughput: sign_many / verify_many with 1 and 2 threads against one
thread of plain PyNaCl (``SigningKey.sign`` / ``VerifyKey.verify`` per row) on the same bodies.

Variants are interleaved and repeated and the median is reported, with ratios against the
baseline measured in the same run: the machines are shared and noisy (docs/design.md,
"Tests and benchmarks").

    .venv/bin/python scripts/bench_sign_verify.py --rows 20000 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nacl.signing import SigningKey, VerifyKey  # noqa: E402

from engine.synthetic import signed_attestations  # noqa: E402
from engine.verification.api import verify_many  # noqa: E402
from engine.verification.keys import keypairs_from_seeds, sign_many  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=1_000, help="distinct signers")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)

    rows_ = signed_attestations(args.rows, args.keys, seed=0, label="bench-sign-verify")
    bodies, idx, seeds = rows_.bodies, rows_.owner, rows_.seeds
    pks = keypairs_from_seeds(seeds)[0]
    signing_keys = [SigningKey(bytes(s)) for s in seeds]
    verify_keys = [VerifyKey(bytes(p)) for p in pks]
    rows = [bytes(b) for b in bodies]
    ref_sigs = sign_many(bodies, seeds, key_index=idx, threads=1)
    sig_rows = [bytes(s) for s in ref_sigs]
    row_pks = pks[idx]
    key_of = idx.tolist()

    def plain_sign() -> None:
        for i, body in enumerate(rows):
            signing_keys[key_of[i]].sign(body)

    def plain_verify() -> None:
        for i, body in enumerate(rows):
            verify_keys[key_of[i]].verify(body, sig_rows[i])

    variants: dict[str, Callable[[], object]] = {"sign: plain PyNaCl, 1 thread (baseline)": plain_sign}
    for t in args.threads:
        variants[f"sign: sign_many, {t} thread(s)"] = lambda t=t: sign_many(bodies, seeds, key_index=idx, threads=t)
    variants["verify: plain PyNaCl, 1 thread (baseline)"] = plain_verify
    for t in args.threads:
        variants[f"verify: verify_many libsodium, {t} thread(s)"] = (
            lambda t=t: verify_many(bodies, ref_sigs, row_pks, threads=t, backend="libsodium"))

    # Correctness before speed: threaded output equals the 1-thread output and verifies.
    assert all(np.array_equal(sign_many(bodies, seeds, key_index=idx, threads=t), ref_sigs) for t in args.threads)
    assert all(verify_many(bodies, ref_sigs, row_pks, threads=t, backend="libsodium").all() for t in args.threads)

    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"rows={args.rows} keys={args.keys} repeats={args.repeats} cpus={os.cpu_count()} load1={load:.2f}")
    # cpu/wall shows how many cores a variant actually got: on a shared machine another
    # process can hold a core, and then no thread count can beat ~1x.
    print(f"{'variant':<46} {'median rows/s':>14} {'best rows/s':>12} {'vs baseline':>12} {'cpu/wall':>9}")
    baseline = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        kind = name.split(":")[0]
        baseline.setdefault(kind, med)
        usage = sum(cpu[name]) / sum(ts)
        print(f"{name:<46} {args.rows / med:>14,.0f} {args.rows / min(ts):>12,.0f} {baseline[kind] / med:>11.2f}x"
              f" {usage:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
