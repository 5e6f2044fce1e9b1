"""`bizra run` survives crashes (engine/pipeline/checkpoint.py, engine/pipeline/chunks.py):

- a real `bizra run` subprocess killed with SIGKILL at several points resumes from OUT/.work
  and writes byte-identical Parquet outputs (and the same report, timings aside);
- a checkpoint of other inputs or parameters is refused with one clear line, --restart starts over;
- a damaged chunk file is redone, not trusted;
- chunks prove they belong: chunks left without their manifest, or made under
  another manifest, are deleted, never reused, and a cleanup cut short leaves nothing that looks
  like a checkpoint.

Dask runs (byte-identical too) are in test_cluster.py; both share conftest.py's dataset.
"""
from __future__ import annotations

import json
import shutil
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
from engine.pipeline.checkpoint import Checkpoint, manifest_digest
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


def _crash_after(monkeypatch, chunks: int) -> None:
    """ChunkResult.save raises KeyboardInterrupt (a crash) once ``chunks`` chunks are saved."""
    saved: list[Path] = []
    real_save = ChunkResult.save

    def save_then_stop(self: ChunkResult, path: Path, *args) -> None:
        real_save(self, path, *args)
        saved.append(path)
        if len(saved) == chunks:
            raise KeyboardInterrupt

    monkeypatch.setattr(ChunkResult, "save", save_then_stop)


def test_chunks_left_without_their_manifest_are_never_reused(dataset: Path, other_dataset: Path,
                                                             other_reference: Path, tmp_path: Path,
                                                             monkeypatch) -> None:
    """The manifest is gone (a kill during the old cleanup), 30 chunks of
    ``dataset`` remain, and the next run is on other data of the same shape."""
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        _crash_after(m, 30)
        with pytest.raises(KeyboardInterrupt):
            run_job(dataset, out, threads=1, chunk_rows=CHUNK, quiet=True)
    assert chunk_files(out) == 30
    (out / ".work" / "manifest.json").unlink()
    r = run_job(other_dataset, out, threads=1, chunk_rows=CHUNK, quiet=True)
    assert r.report["checkpoint"]["resumed_chunks"] == 0
    same_outputs(out, other_reference)  # byte-identical to a clean run on the other data


def test_a_chunk_made_under_another_manifest_is_deleted(tmp_path: Path) -> None:
    manifest = {"inputs": {"attestations": "a" * 64}, "rows": 2, "bizra": "x", "params": {"chunk_rows": 2}}
    first = Checkpoint(tmp_path / "one", manifest, restart=False)
    first.save(0, ChunkResult(np.array([0, 1], np.uint8), np.array([True, False]), np.zeros(0, np.int64),
                              np.zeros(0, np.int64), np.zeros((0, 32), np.uint8), np.zeros((0, 32), np.uint8)))
    assert first.load_rows(0) is not None
    other = Checkpoint(tmp_path / "two", {**manifest, "rows": 3}, restart=False)
    other.chunk_path(0).write_bytes(first.chunk_path(0).read_bytes())  # same name, another manifest
    assert other.load_rows(0) is None and not other.chunk_path(0).exists()
    assert other.digest == manifest_digest(json.loads((other.dir / "manifest.json").read_text()))


def test_a_cleanup_cut_short_leaves_no_checkpoint(dataset: Path, reference: Path, other_dataset: Path,
                                                  other_reference: Path, tmp_path: Path, monkeypatch) -> None:
    """.work is renamed away (manifest and chunks in one step) before it is deleted: a crash in
    the middle of the deletion leaves .work.old, which the next run deletes and never reads."""
    out = tmp_path / "out"
    real_rmtree = shutil.rmtree

    def crash_in_rmtree(path, *a, **kw):
        if Path(path).name == ".work.old":
            (Path(path) / "manifest.json").unlink()  # part of it deleted
            raise KeyboardInterrupt
        real_rmtree(path, *a, **kw)

    with monkeypatch.context() as m:
        m.setattr(shutil, "rmtree", crash_in_rmtree)
        with pytest.raises(KeyboardInterrupt):
            run_job(dataset, out, threads=1, chunk_rows=CHUNK, quiet=True)
    same_outputs(out, reference)  # the outputs were promoted before the cleanup
    left = out / ".work.old"
    assert not (out / ".work").exists() and not (left / "manifest.json").exists() and list(left.glob("chunk-*.npz"))
    r = run_job(other_dataset, out, threads=1, chunk_rows=CHUNK, quiet=True)
    assert r.report["checkpoint"]["resumed_chunks"] == 0 and not (out / ".work.old").exists()
    same_outputs(out, other_reference)


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










