"""``bizra run`` end to end on a fixed generated dataset (asv).

The dataset (50K attestations from 1K validators over 2K blocks, default anomaly rates) is
generated once per asv run by ``setup_cache`` into asv's cache directory. ``track_rows_per_s``
is the job's own figure (report.json ``rows_per_s``: input rows over wall time, one-time
Numba compilation excluded).
"""
from __future__ import annotations

import os

from engine.synthetic import generate_dataset
from engine.pipeline.job import run_job
from engine.verification.api import warm_up

VALIDATORS, BLOCKS, ATTESTATIONS, SEED = 1000, 2000, 50_000, 7


class RunJob:
    timeout = 300
    number = 1
    repeat = (1, 5, 20.0)
    warmup_time = 0

    def setup_cache(self) -> str:
        generate_dataset("data", validators=VALIDATORS, blocks=BLOCKS, attestations=ATTESTATIONS, seed=SEED,
                         fork_rate=0.05, progress=False)
        return os.path.abspath("data")

    def setup(self, data: str) -> None:
        warm_up()

    def time_run(self, data: str) -> None:
        run_job(data, "out", quiet=True)

    def track_rows_per_s(self, data: str) -> float:
        report = run_job(data, "out", quiet=True)
        if report.rows != ATTESTATIONS:
            raise AssertionError(f"job wrote {report.rows} rows, expected {ATTESTATIONS}")
        return report.rows_per_s

    track_rows_per_s.unit = "rows/s"
