"""The in-process job runner: out names, conflicts, cancel, a failed job that leaves the runner running."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine.model.errors import InputError
from engine.pipeline.job import run_job
from engine.pipeline.out_lock import hold
from engine.service.jobs_runner import JobConflict, JobRunner, JobSpec


def _wait(runner: JobRunner, job_id: str) -> dict[str, Any]:
    for _ in range(600):  # bounded: 30 s
        snap = runner.snapshot(job_id)
        assert snap is not None
        if snap["state"] in ("succeeded", "failed", "cancelled"):
            return snap
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_job_runner_out_names_conflicts_and_cancel(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    started, release = threading.Event(), threading.Event()
    outs: list[Path] = []

    def fake(data: Path, out: Path, **kw: Any) -> Any:  # a job of 100 chunks, cancellable between them
        outs.append(out)
        for done in range(1, 101):
            started.set()
            release.wait(10)
            kw["progress"](done, 100)
        raise InputError("finished without a cancel")

    runner = JobRunner(tmp_path, tmp_path / "jobs", run=fake)
    try:
        first = runner.submit(JobSpec(data="ds", out="nightly-1"))
        assert first.out_dir == (tmp_path / "jobs" / "nightly-1").resolve()
        with pytest.raises(JobConflict, match="'nightly-1' is in use by job"):
            runner.submit(JobSpec(data="ds", out="nightly-1"))
        for bad in ("../x", ".hidden", "a/b", "", "x" * 129, "-flag"):
            with pytest.raises(InputError, match="out: .* is not a plain name"):
                runner.submit(JobSpec(data="ds", out=bad))
        queued = runner.submit(JobSpec(data="ds"))
        assert queued.out_dir.name == queued.id
        assert runner.cancel(queued.id).state == "cancelled"  # queued: cancelled at once, never run
        assert started.wait(10)
        runner.cancel(first.id)
        release.set()
        snap = _wait(runner, first.id)
        assert snap["state"] == "cancelled" and "submit the same out again to resume" in snap["error"]
        assert snap["progress"]["rows_done"] == 1  # stopped after the chunk in flight, not at the end
        with pytest.raises(JobConflict, match="already cancelled"):
            runner.cancel(first.id)
        assert runner.cancel("nope") is None
        again = runner.submit(JobSpec(data="ds", out="nightly-1"))  # the name is free once the job ended
        runner.cancel(again.id)
        assert _wait(runner, again.id)["state"] == "cancelled"
        assert outs[0] == first.out_dir and queued.out_dir not in outs  # the cancelled queued job never ran
    finally:
        release.set()
        runner.close()


def test_job_runner_reports_a_failed_job_and_keeps_running(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    seen = []

    def fake(data: Path, out: Path, **kw: Any) -> Any:
        seen.append(kw["chunk_rows"])
        kw["progress"](5, 10)
        raise InputError(f"{data}/validators.parquet: no such file")

    runner = JobRunner(tmp_path, tmp_path / "jobs", run=fake)
    try:
        snap = _wait(runner, runner.submit(JobSpec(data="empty", chunk_rows=7)).id)
        assert snap["state"] == "failed" and "validators.parquet: no such file" in snap["error"]
        assert snap["progress"]["rows_done"] == 5 and seen == [7]
        assert _wait(runner, runner.submit(JobSpec(data="empty")).id)["state"] == "failed"  # still serving
        with pytest.raises(InputError, match="outside"):
            runner.submit(JobSpec(data="empty/../.."))
    finally:
        runner.close()




def test_an_out_held_by_another_run_is_a_conflict_and_a_job_meeting_it_fails_clean(small_dataset) -> None:
    """The HTTP job runner takes the same OUT lock as `bizra run`: a submission whose
    out is locked is a 409, and a job that meets the lock when it starts fails with one line."""
    data, _ = small_dataset
    jobs = data.parent / "jobs-locked"
    runner = JobRunner(data.parent, jobs)
    try:
        with hold(jobs / "busy"):
            with pytest.raises(JobConflict, match=r"'busy' is in use by another bizra run \(pid \d+\)"):
                runner.submit(JobSpec(data=data.name, out="busy"))
    finally:
        runner.close()

    def locked_meanwhile(data_dir: Path, out: Path, **kw: Any) -> Any:  # another writer got there first
        with hold(out):
            return run_job(data_dir, out, **kw)

    runner = JobRunner(data.parent, jobs, run=locked_meanwhile)
    try:
        snap = _wait(runner, runner.submit(JobSpec(data=data.name, out="late")).id)
    finally:
        runner.close()
    assert snap["state"] == "failed" and "in use by another bizra run (pid" in snap["error"], snap
    assert "\n" not in snap["error"] and not (jobs / "late" / ".work").exists()
