"""`bizra generate` against single-thread libsodium signing, measured in the same run.

Times one thread of libsodium (``crypto_sign_detached`` per row, the signing call the generator
itself makes) on ``--sample`` random 110-byte bodies from ``--validators`` keys, then runs
``bizra generate`` as a subprocess and reads its peak RSS (``ru_maxrss`` from ``wait4``) and CPU
time, then times libsodium again: the machines are shared, so the ratio uses the mean of the
two baselines and the load averages are printed beside it.

    .venv/bin/python scripts/bench_generate.py --rows 10000000 --validators 10000 --blocks 25000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.synthetic import DEFAULT_CHUNK_ROWS  # noqa: E402
from engine.verification import sodium_backend  # noqa: E402
from engine.verification.keys import derive_seeds, keypairs_from_seeds  # noqa: E402


def libsodium_rate(rows: int, keys: int, repeats: int = 3) -> tuple[float, float]:
    """(rows/s, CPU microseconds per row) of one thread signing ``rows`` bodies, best of
    ``repeats``. CPU time barely moves when other processes take the cores; wall time does."""
    rng = np.random.default_rng(0)
    _, secret = keypairs_from_seeds(derive_seeds(0, keys, label="bench-generate"))
    bodies = rng.integers(0, 256, (rows, 110), dtype=np.uint8)
    key_index = rng.integers(0, keys, rows)
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        t, c = time.perf_counter(), time.thread_time()
        sodium_backend.sign_rows(bodies, secret, key_index, threads=1)
        best, best_cpu = min(best, time.perf_counter() - t), min(best_cpu, time.thread_time() - c)
    return rows / best, best_cpu / rows * 1e6


def cores_available(threads: int) -> float:
    """How many cores the machine gives right now: SHA-256 over 64 MiB in ``threads`` threads
    (hashlib releases the GIL) against one thread. On a shared VM this is often well below
    ``os.cpu_count()``, and it bounds any ratio the generator can reach."""
    data = b"x" * (64 << 20)

    def work() -> None:
        for _ in range(4):
            hashlib.sha256(data).digest()

    def timed(n: int) -> float:
        pool = [threading.Thread(target=work) for _ in range(n)]
        t = time.perf_counter()
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        return time.perf_counter() - t

    one = min(timed(1) for _ in range(2))
    return threads * one / min(timed(threads) for _ in range(2))


def run_generate(out: Path, args: argparse.Namespace) -> dict[str, float]:
    bizra = Path(sys.executable).with_name("bizra")
    cmd = [str(bizra), "generate", "--out", str(out), "--validators", str(args.validators), "--blocks",
           str(args.blocks), "--attestations", str(args.rows), "--seed", "1", "--chunk-rows", str(args.chunk_rows),
           "--quiet"] + (["--threads", str(args.threads)] if args.threads else [])
    print("$", " ".join(cmd), flush=True)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    text = proc.stdout.read()
    proc.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bizra generate failed: {text}")
    print(text.strip())
    seconds = float(re.search(r" in ([0-9.]+)s", text).group(1))
    return {"seconds": seconds, "wall": wall, "peak_rss": usage.ru_maxrss * 1024,
            "cpu": usage.ru_utime + usage.ru_stime, "bytes": (out / "attestations.parquet").stat().st_size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--validators", type=int, default=10_000)
    parser.add_argument("--blocks", type=int, default=25_000)
    parser.add_argument("--threads", type=int, default=None, help="generator threads (default: all CPUs)")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--sample", type=int, default=100_000, help="rows of the libsodium baseline")
    parser.add_argument("--out", type=Path, default=None, help="keep the dataset here (default: a temp dir)")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    threads = args.threads or os.cpu_count() or 1
    cores_before = cores_available(threads)
    before, cpu_before = libsodium_rate(args.sample, args.validators)
    print(f"libsodium, 1 thread: {before:,.0f} signatures/s (before)", flush=True)
    tmp = None if args.out else Path(tempfile.mkdtemp(prefix="bench-generate-"))
    try:
        g = run_generate(args.out or tmp / "data", args)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    after, cpu_after = libsodium_rate(args.sample, args.validators)
    cores_after = cores_available(threads)
    load_after = os.getloadavg()
    print(f"libsodium, 1 thread: {after:,.0f} signatures/s (after)")
    base = (before + after) / 2
    rate = args.rows / g["seconds"]
    print(f"\n{args.rows:,} rows, {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after (1 min)")
    print(f"generate: {g['seconds']:.1f} s ({g['wall']:.1f} s wall with start-up), {rate:,.0f} rows/s, "
          f"{g['cpu'] / g['wall']:.2f} cores busy, {g['bytes'] / 1e9:.2f} GB written")
    print(f"ratio to 1-thread libsodium signing: {rate / base:.2f}x")
    print(f"cores the machine gave {threads} GIL-free hashing threads: {cores_before:.2f} before, "
          f"{cores_after:.2f} after (a shared VM gives less than its CPU count)")
    gen_cpu, sign_cpu = g["cpu"] / args.rows * 1e6, (cpu_before + cpu_after) / 2
    print(f"CPU per row: generate {gen_cpu:.1f} us, libsodium signing alone {sign_cpu:.1f} us "
          f"(generator overhead {gen_cpu / sign_cpu - 1:+.0%}); on {threads} cores of its own the generator "
          f"would reach at most {threads * sign_cpu / gen_cpu:.2f}x (a projection from CPU time, not a measurement)")
    print(f"peak RSS of bizra generate: {g['peak_rss'] / 2**30:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
