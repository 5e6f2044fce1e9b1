"""End-to-end throughput of ``run_job`` and its ratio to raw ``verify_many`` on the same signatures.

    .venv/bin/python scripts/bench_job.py                      # 200K rows, 1K validators, 5K blocks
    .venv/bin/python scripts/bench_job.py --rows 1000000 --threads 2

The dataset is generated once into --data (default /tmp/bizra-bench-job-ROWS) and reused. In one
run: a warm-up job (JIT load), then --rounds alternations of the timed job and verify_many over
every row's (body, signature, public_key) with the same threads and backend (best of each). The
ratio is job rows/s over verify_many rows/s (the goal: >= 0.8): both are measured in the
same run, so it does not depend on how busy the shared machine is.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl

from engine.model.attestation import binary_to_array
from engine.synthetic import generate_dataset
from engine.pipeline.job import run_job
from engine.verification.api import resolve_backend, resolve_threads, use_heap_scratch, verify_many


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--validators", type=int, default=1000)
    ap.add_argument("--blocks", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--chunk-rows", type=int, default=65536)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=2, help="alternate job and verify_many, keep the best of each")
    args = ap.parse_args()
    use_heap_scratch()  # this process is ours: as under `bizra run`
    data = args.data or Path(tempfile.gettempdir()) / f"bizra-bench-job-{args.rows}"
    threads = resolve_threads(args.threads)
    if not (data / "attestations.parquet").exists():
        t = time.perf_counter()
        generate_dataset(data, validators=args.validators, blocks=args.blocks, attestations=args.rows,
                         seed=1, threads=threads, progress=False)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t:.1f} s -> {data}")
    df = pl.read_parquet(data / "attestations.parquet", columns=["body", "signature", "public_key"])
    cols = [binary_to_array(df[c], w) for c, w in (("body", 110), ("signature", 64), ("public_key", 32))]
    del df
    job_s = verify_s = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        run_job(data, Path(tmp) / "warm", threads=threads, quiet=True)  # JIT load/compile of every kernel
        print(f"first run_job (includes JIT load/compile): {time.perf_counter() - t:.2f} s")
        for _ in range(args.rounds):  # alternate, so both see the same machine load
            t = time.perf_counter()
            r = run_job(data, Path(tmp) / "out", threads=threads, chunk_rows=args.chunk_rows, quiet=True)
            job_s = min(job_s, time.perf_counter() - t)
            t = time.perf_counter()
            ok = verify_many(*cols, threads=threads)
            verify_s = min(verify_s, time.perf_counter() - t)
    job_rate, raw_rate = r.rows / job_s, len(ok) / verify_s
    print(json.dumps({"seconds": r.report["seconds"], "counts": r.counts}, indent=1))
    print(f"backend {resolve_backend().__name__}, {threads} threads, chunk_rows {args.chunk_rows}")
    print(f"run_job      {r.rows:>10,} rows in {job_s:7.2f} s = {job_rate:10,.0f} rows/s")
    print(f"verify_many  {len(ok):>10,} rows in {verify_s:7.2f} s = {raw_rate:10,.0f} rows/s")
    print(f"ratio run_job / verify_many = {job_rate / raw_rate:.3f}")


if __name__ == "__main__":
    main()
