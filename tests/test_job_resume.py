"""`bizra run` survives crashes and scales out (engine/job_chunks.py, engine/job_dask.py):

- a real `bizra run` subprocess killed with SIGKILL at several points resumes from OUT/.work
  and writes byte-identical Parquet outputs (and the same report, timings aside);
- a checkpoint of other inputs or parameters is refused with one clear line, --restart starts over;
- a damaged chunk file is redone, not trusted;
- Dask: `local:2` and an existing scheduler (tcp://) give byte-identical outputs, also when a
  worker process is killed mid-job.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.dataset import generate_dataset
from engine.errors import BizraError
from engine.job import run_job
from engine.job_chunks import ChunkResult

PARQUET_OUTPUTS = ("attestations.parquet", "blocks.parquet", "equivocations.parquet")
TIMING_KEYS = ("seconds", "verify", "rows_per_s", "checkpoint", "params")
CHUNK = 100


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("resume-data")
    generate_dataset(out, validators=60, blocks=80, attestations=12_000, seed=11, threads=2, progress=False,
                     equivocation_rate=0.003, malformed_rate=0.005)
    return out


@pytest.fixture(scope="module")
def reference(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("resume-ref")
    run_job(dataset, out, threads=2, chunk_rows=CHUNK, quiet=True)
    return out


def _same_outputs(out: Path, ref: Path) -> dict:
    for name in PARQUET_OUTPUTS:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    got, want = (json.loads((d / "report.json").read_text()) for d in (out, ref))
    for key in TIMING_KEYS:
        got.pop(key), want.pop(key)
    assert got == want
    assert not (out / ".work").exists(), "the checkpoint is removed once the outputs are promoted"
    return json.loads((out / "report.json").read_text())


def _bizra_run(dataset: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "run", "--data", str(dataset), "--out", str(out),
            "--chunk-rows", str(CHUNK), "--threads", "1", "--quiet", *extra]


def _chunk_files(out: Path) -> int:
    return len(list((out / ".work").glob("chunk-*.npz"))) if (out / ".work").exists() else 0


@pytest.mark.parametrize("kill_after", [1, 40, 120])
def test_kill_9_then_resume_is_byte_identical(dataset: Path, reference: Path, tmp_path: Path, kill_after: int) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(_bizra_run(dataset, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _chunk_files(out) < kill_after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it was killed: {proc.stderr.read()!r}"
    finished = _chunk_files(out)
    assert finished >= kill_after and not (out / "report.json").exists()

    again = subprocess.run(_bizra_run(dataset, out), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    report = _same_outputs(out, reference)
    # every chunk that was on disk at the kill was reused, not recomputed
    assert report["checkpoint"] == {"chunks": 12_000 // CHUNK, "resumed_chunks": finished}


def test_changed_input_is_refused_until_restart(dataset: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(_bizra_run(dataset, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while _chunk_files(out) < 5 and proc.poll() is None:
        time.sleep(0.002)
    proc.kill()
    proc.wait(30)
    data = tmp_path / "data"
    data.mkdir()
    for name in ("validators.parquet", "blocks.parquet"):
        (data / name).write_bytes((dataset / name).read_bytes())
    att = pl.read_parquet(dataset / "attestations.parquet")
    att.head(len(att) - 1).write_parquet(data / "attestations.parquet")  # one row fewer: another input

    refused = subprocess.run(_bizra_run(data, out), capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "attestations changed" in refused.stderr and "--restart" in refused.stderr
    with pytest.raises(BizraError, match="chunk_rows=100 \\(now 50\\)"):
        run_job(dataset, out, threads=1, chunk_rows=50, quiet=True)

    assert subprocess.run(_bizra_run(data, out, "--restart"), capture_output=True, timeout=300).returncode == 0
    assert json.loads((out / "report.json").read_text())["checkpoint"]["resumed_chunks"] == 0
    assert len(pl.read_parquet(out / "attestations.parquet")) == len(att) - 1


def test_damaged_chunk_file_is_redone(dataset: Path, reference: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    saved: list[Path] = []
    real_save = ChunkResult.save

    def save_then_stop(self: ChunkResult, path: Path) -> None:  # a crash after the 3rd chunk
        real_save(self, path)
        saved.append(path)
        if len(saved) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(ChunkResult, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_job(dataset, out, threads=1, chunk_rows=CHUNK, quiet=True)
    monkeypatch.setattr(ChunkResult, "save", real_save)
    saved[1].write_bytes(saved[1].read_bytes()[:100])  # torn by a disk fault, not by a kill
    r = run_job(dataset, out, threads=1, chunk_rows=CHUNK, quiet=True)
    assert r.report["checkpoint"]["resumed_chunks"] == 2
    _same_outputs(out, reference)


def test_checkpoint_round_trip_keeps_every_array(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    r = ChunkResult(rng.integers(0, 256, 9, dtype=np.uint8), rng.random(9) < 0.5, np.arange(4, dtype=np.int64),
                    np.arange(4, dtype=np.int64) * 7, rng.integers(0, 256, (4, 32), dtype=np.uint8),
                    rng.integers(0, 256, (4, 32), dtype=np.uint8), verified=9, verify_s=0.25, read_s=0.5)
    r.save(tmp_path / "c.npz")
    back = ChunkResult.load(tmp_path / "c.npz")
    for name in ChunkResult._ARRAYS:
        a, b = getattr(r, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert (back.verified, back.verify_s, back.read_s) == (9, 0.25, 0.5)
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


# ---- Dask ----------------------------------------------------------------------------------


def test_dask_local_cluster_is_byte_identical(dataset: Path, reference: Path, tmp_path: Path) -> None:
    r = run_job(dataset, tmp_path / "out", chunk_rows=CHUNK, quiet=True, cluster="local:2")
    assert r.report["params"]["cluster"] == "local:2"
    _same_outputs(tmp_path / "out", reference)


def test_dask_killed_worker_still_byte_identical(dataset: Path, reference: Path, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(2, timeout=60)
        victim_pid = next(iter(client.run(os.getpid).values()))  # a worker process; its nanny restarts it
        errors: list[BaseException] = []

        def job() -> None:
            try:
                run_job(dataset, out, threads=1, chunk_rows=CHUNK, quiet=True, cluster=cluster.scheduler_address)
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)

        t = threading.Thread(target=job)
        t.start()
        deadline = time.monotonic() + 120
        while _chunk_files(out) < 10 and t.is_alive() and time.monotonic() < deadline:
            time.sleep(0.002)
        assert t.is_alive() and _chunk_files(out) < 12_000 // CHUNK, "the job ended before a worker could be killed"
        os.kill(victim_pid, signal.SIGKILL)
        t.join(300)
        assert not t.is_alive() and not errors, errors
    _same_outputs(out, reference)


def test_unreachable_scheduler_is_one_clear_error(dataset: Path, tmp_path: Path, monkeypatch) -> None:
    from engine import job_dask
    from engine.serve_process import free_port

    monkeypatch.setattr(job_dask, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(BizraError, match="cannot connect to the Dask scheduler"):
        run_job(dataset, tmp_path / "o", chunk_rows=CHUNK, quiet=True, cluster=f"tcp://127.0.0.1:{free_port()}")


def test_bad_cluster_spec_is_one_clear_error(dataset: Path, tmp_path: Path) -> None:
    for spec in ("local:0", "local:x", "http://host:1", "tcp://nohost"):
        with pytest.raises(BizraError, match="--cluster"):
            run_job(dataset, tmp_path / "o", quiet=True, cluster=spec)
    assert not (tmp_path / "o").exists()


def test_cluster_workers_size_their_own_threads_unless_told(dataset: Path, tmp_path: Path, monkeypatch) -> None:
    """--threads reaches the cluster as given; without it the workers pick (local:N: CPUs / N),
    not the driver's own thread count."""
    from engine import job_dask

    seen = []

    class Stop(Exception):
        pass

    def fake_open_cluster(spec, threads):
        seen.append(threads)
        raise Stop

    monkeypatch.setattr(job_dask, "open_cluster", fake_open_cluster)
    for given in (None, 3):
        with pytest.raises(Stop):
            run_job(dataset, tmp_path / f"o{given}", threads=given, chunk_rows=CHUNK, quiet=True, cluster="local:2")
    assert seen == [None, 3]
