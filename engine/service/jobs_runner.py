"""In-process runner for batch jobs submitted over HTTP (``POST /api/v1/jobs``).

One worker thread runs :func:`engine.pipeline.job.run_job` for one job at a time (a job already uses all
BIZRA_THREADS for verification; two at once would only share the cores and double the memory).
Submissions wait in a bounded FIFO queue; a full queue is refused (the service answers 429)
rather than buffered without limit. Job records are kept in memory, the last ``keep`` finished
ones only, so a long-running node does not grow without bound.

Paths: a job reads a dataset directory *inside* the service's data directory (``data``:
a relative path, default the data directory itself) and writes to ``<jobs dir>/<out>/``,
where ``out`` is a plain name (default: the job id); a request can never name an absolute
path or leave those directories with ``..``. Two live jobs never share an ``out`` (409), and
neither does a job and a ``bizra run`` of another process: run_job holds ``<out>/.lock``
(engine.pipeline.out_lock) for the whole run, and a submission whose ``out`` is locked is a 409.
Because run_job checkpoints every chunk in ``<out>/.work``, submitting the same ``out`` again
after a cancel or a crashed node resumes the work instead of redoing it.

States: ``queued`` -> ``running`` -> ``succeeded`` | ``failed`` | ``cancelled`` (``error``
holds the one-line reason, as the CLI would print it). ``progress`` is run_job's
``(rows_done, rows_total)``. A running job is cancelled between two chunks.

Example::

    runner = JobRunner(data_root=Path("data"), jobs_root=Path("data/jobs"))
    job = runner.submit(JobSpec())
    runner.get(job.id).state      # "queued" / "running" / ...
    runner.close()
"""
from __future__ import annotations

import dataclasses
import logging
import queue
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.model.errors import BizraError, InputError
from engine.pipeline import out_lock
from engine.pipeline.job import JobReport, run_job

__all__ = ["Job", "JobCancelled", "JobConflict", "JobQueueFull", "JobRunner", "JobSpec"]

log = logging.getLogger("bizra.jobs")
RESULT_FILES = ("attestations.parquet", "blocks.parquet", "equivocations.parquet", "report.json")
FINISHED = ("succeeded", "failed", "cancelled")
_OUT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class JobQueueFull(BizraError):
    """The bounded queue is full; the client should retry later."""


class JobConflict(BizraError):
    """The request clashes with a job's state: its ``out`` is in use, or it already finished."""


class JobCancelled(BizraError):
    """Raised inside run_job (from its progress callback) to stop a cancelled job between chunks."""


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """What a client may choose: the dataset (relative to the data dir) and run_job parameters."""

    data: str = "."
    bps: int = 6667
    chunk_rows: int = 65536
    out: str | None = None  # a name under the jobs directory; None: the job id


@dataclasses.dataclass
class Job:
    """One submitted job; mutated only by the runner (under its lock)."""

    id: str
    spec: JobSpec
    data_dir: Path
    out_dir: Path
    state: str = "queued"
    submitted_at: float = dataclasses.field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    rows_done: int = 0
    rows_total: int | None = None
    error: str | None = None
    summary: dict[str, Any] | None = None
    cancel_requested: bool = False

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of ``GET /api/v1/jobs/{id}``."""
        done = self.state == "succeeded"
        return {
            "id": self.id, "state": self.state, "data": self.spec.data, "out": self.out_dir.name,
            "params": {"bps": self.spec.bps, "chunk_rows": self.spec.chunk_rows},
            "submitted_at": self.submitted_at, "started_at": self.started_at, "finished_at": self.finished_at,
            "progress": {"rows_done": self.rows_done, "rows_total": self.rows_total,
                         "fraction": (self.rows_done / self.rows_total) if self.rows_total else (1.0 if done else 0.0)},
            "error": self.error, "result": self.summary,
        }


def _inside(root: Path, relative: str, what: str) -> Path:
    """``root / relative`` resolved: an existing directory inside ``root``, else InputError."""
    if "\x00" in relative:  # the OS would refuse it with a ValueError, not an answer
        raise InputError(f"{what}: path contains a NUL byte")
    if Path(relative).is_absolute():
        raise InputError(f"{what}: must be a path relative to the data directory, got {relative!r}")
    try:
        path = (root / relative).resolve()
        is_dir = path.is_dir()
    except OSError as exc:  # a name too long, a symlink loop: the client's path, not our failure
        raise InputError(f"{what}: {relative[:80]!r}: {exc.strerror or exc}") from None
    if path != root and root not in path.parents:
        raise InputError(f"{what}: {relative[:80]!r} is outside the data directory")
    if not is_dir:
        raise InputError(f"{what}: {relative[:80]!r} is not a directory under the data directory")
    return path


class JobRunner:
    """A single worker thread running queued jobs one at a time.

    ``run``: the job function (run_job's signature; tests substitute a slow fake).
    """

    def __init__(self, data_root: Path, jobs_root: Path, *, max_queued: int = 4, keep: int = 100,
                 threads: int | None = None, run: Callable[..., JobReport] = run_job) -> None:
        self.data_root = Path(data_root).resolve()
        self.jobs_root = Path(jobs_root).resolve()
        self._threads = threads
        self._run = run
        self._keep = keep
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_queued)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._loop, name="bizra-jobs", daemon=True)
        self._worker.start()

    def submit(self, spec: JobSpec) -> Job:
        """Queue a job; InputError for a bad spec, JobQueueFull when the queue is full."""
        data_dir = _inside(self.data_root, spec.data, "data")
        if not 5000 < spec.bps <= 10000:
            raise InputError(f"bps: must satisfy 5000 < bps <= 10000, got {spec.bps}")
        if spec.chunk_rows < 1:
            raise InputError(f"chunk_rows: must be >= 1, got {spec.chunk_rows}")
        if spec.out is not None and not _OUT_NAME.fullmatch(spec.out):
            raise InputError(f"out: {spec.out[:80]!r} is not a plain name (letters, digits, '.', '_', '-'; "
                             "at most 128; not starting with '.' or '-')")
        job_id = uuid.uuid4().hex
        job = Job(job_id, spec, data_dir, self.jobs_root / (spec.out or job_id))
        with self._lock:
            busy = next((j for j in self._jobs.values() if j.out_dir == job.out_dir and j.state not in FINISHED), None)
            if busy is not None:
                raise JobConflict(f"out: {job.out_dir.name!r} is in use by job {busy.id} ({busy.state})")
            pid = out_lock.busy(job.out_dir)  # a `bizra run` outside this node writing there
            if pid is not None:
                raise JobConflict(f"out: {job.out_dir.name!r} is in use by another bizra run (pid {pid})")
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                raise JobQueueFull(f"jobs: queue full ({self._queue.maxsize} waiting); retry later") from None
            self._jobs[job_id] = job
            self._forget_old()
        log.info("job %s queued (data %s)", job_id, data_dir)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job, or None when unknown (or forgotten)."""
        with self._lock:
            return self._jobs.get(job_id)

    def snapshot(self, job_id: str) -> dict[str, Any] | None:
        """The job's JSON, read under the lock (the worker thread updates progress)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.to_json()

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job now, a running one between two chunks; None when unknown,
        JobConflict when it already finished."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state in FINISHED:
                raise JobConflict(f"job_id: job {job_id} already {job.state}")
            job.cancel_requested = True
            if job.state == "queued":  # the worker skips it when it comes out of the queue
                job.state, job.error, job.finished_at = "cancelled", "cancelled before it started", time.time()
        log.info("job %s: cancel requested", job_id)
        return job

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in FINISHED]
        for job in finished[: max(0, len(finished) - self._keep)]:
            del self._jobs[job.id]

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._execute(job)

    def _execute(self, job: Job) -> None:
        with self._lock:
            if job.state == "cancelled":
                return
            job.state, job.started_at = "running", time.time()

        def progress(done: int, total: int) -> None:
            with self._lock:
                job.rows_done, job.rows_total = done, total
                if job.cancel_requested:
                    raise JobCancelled("cancelled by request; finished chunks are kept in "
                                       f"{job.out_dir.name}/.work: submit the same out again to resume")

        try:
            report = self._run(job.data_dir, job.out_dir, threads=self._threads, bps=job.spec.bps,
                               chunk_rows=job.spec.chunk_rows, quiet=True, progress=progress)
        except JobCancelled as exc:
            self._finish(job, error=str(exc), state="cancelled")
            return
        except (BizraError, ValueError, OSError) as exc:  # expected: bad dataset, unwritable disk
            self._finish(job, error=" ".join(str(exc).split()))
            return
        except Exception as exc:  # a bug: keep the runner alive, log the trace, report one line
            log.exception("job %s crashed", job.id)
            self._finish(job, error=f"internal error: {type(exc).__name__}: {exc}")
            return
        summary = {
            "rows": report.rows, "counts": report.counts, "head": report.head,
            "finalized_tip": report.finalized_tip, "finalized_height": report.finalized_height,
            "rows_per_s": report.rows_per_s, "out_dir": str(report.out_dir),
            "files": {name: str(Path(report.out_dir) / name) for name in RESULT_FILES},
        }
        self._finish(job, summary=summary)

    def _finish(self, job: Job, *, error: str | None = None, summary: dict[str, Any] | None = None,
                state: str | None = None) -> None:
        with self._lock:
            job.state = state or ("failed" if error else "succeeded")
            job.error, job.summary, job.finished_at = error, summary, time.time()
            if summary is not None and job.rows_total is None:
                job.rows_done = job.rows_total = summary["rows"]
        log.info("job %s %s%s", job.id, job.state, f": {error}" if error else "")

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting work and let the worker exit after its current job (bounded wait)."""
        with self._lock:
            while True:  # drop queued jobs: they are in memory only and die with the process
                try:
                    dropped = self._queue.get_nowait()
                except queue.Empty:
                    break
                if dropped is not None and dropped.state == "queued":
                    dropped.state, dropped.error = "failed", "service shut down before the job started"
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._worker.join(timeout)
