"""`bizra run` survives crashes (engine/pipeline/checkpoint.py, engine/pipeline/chunks.py):

- a real `bizra run` subprocess killed with SIGKILL at several points resumes from OUT/.work
  and writes byte-identical Parquet outputs (and the same report, timings aside);
- a checkpoint of other inputs or parameters is refused with one clear line, --restart starts over;
- a damaged chunk file is redone, not trusted.

Dask runs (byte-identical too) are in test_cluster.py; both share conftest.py's dataset.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.model.errors import BizraError
from engine.pipeline.job import run_job
from engine.pipeline.chunks import ChunkResult
from tests.pipeline.conftest import CHUNK
from tests.support.job_reference import chunk_files, same_outputs

def _bizra_run(dataset: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "run", "--data", str(dataset), "--out", str(out),
            "--chunk-rows", str(CHUNK), "--threads", "1", "--quiet", *extra]


@pytest.mark.parametrize("kill_after", [1, 40, 120])
def test_kill_9_then_resume_is_byte_identical(dataset: Path, reference: Path, tmp_path: Path, kill_after: int) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(_bizra_run(dataset, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while chunk_files(out) < kill_after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it was killed: {proc.stderr.read()!r}"
    finished = chunk_files(out)
    assert finished >= kill_after and not (out / "report.json").exists()

    again = subprocess.run(_bizra_run(dataset, out), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    report = same_outputs(out, reference)
    # every chunk that was on disk at the kill was reused, not recomputed
    assert report["checkpoint"] == {"chunks": 12_000 // CHUNK, "resumed_chunks": finished}


def test_changed_input_is_refused_until_restart(dataset: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(_bizra_run(dataset, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while chunk_files(out) < 5 and proc.poll() is None:
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

    def save_then_stop(self: ChunkResult, path: Path, *args) -> None:  # a crash after the 3rd chunk
        real_save(self, path, *args)
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
    same_outputs(out, reference)


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










