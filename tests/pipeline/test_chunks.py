"""One chunk: the row checks over a slice of the attestations file, and the record it leaves."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.model.attestation import attestation_ids, binary_to_array
from engine.model.errors import JobInputError
from engine.pipeline.chunks import ChunkResult, ForeignChunk, check_frame, check_slice
from engine.pipeline.row_checks import VOTE
from engine.tables.validators import load_validator_table


def test_slice_equals_frame_and_votes_are_the_passing_rows(small_dataset) -> None:
    out, _ = small_dataset
    table = load_validator_table(out / "validators.parquet")
    r = check_slice(out / "attestations.parquet", 100, 400, table, threads=2)
    df = pl.read_parquet(out / "attestations.parquet").slice(100, 400)
    same = check_frame(df, table, threads=1)
    for name in ChunkResult._ARRAYS:
        assert np.array_equal(getattr(r, name), getattr(same, name)), name
    vote = r.code == VOTE
    assert 0 < vote.sum() < 400 and len(r.validator) == vote.sum()
    assert np.array_equal(r.id, attestation_ids(binary_to_array(df["body"], 110)[vote]))
    assert np.array_equal(r.epoch, df["epoch"].to_numpy()[vote].astype(np.int64))
    assert r.verified >= vote.sum() and r.read_s > 0


def test_record_round_trip(tmp_path) -> None:
    r = ChunkResult(np.array([0, 255], np.uint8), np.array([False, True]), np.array([3]), np.array([7]),
                    np.full((1, 32), 9, np.uint8), np.full((1, 32), 4, np.uint8), verified=2, verify_s=0.5, read_s=0.25)
    r.save(tmp_path / "c.npz")
    back = ChunkResult.load(tmp_path / "c.npz")
    assert all(np.array_equal(getattr(back, k), getattr(r, k)) for k in ChunkResult._ARRAYS)
    assert (back.verified, back.verify_s, back.read_s) == (2, 0.5, 0.25)
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # written under a temp name, then renamed


def test_an_unreadable_slice_is_a_job_input_error(tmp_path, small_dataset) -> None:
    out, _ = small_dataset
    (tmp_path / "a.parquet").write_bytes(b"PAR1 not really PAR1")
    with pytest.raises(JobInputError, match="corrupt Parquet file"):
        check_slice(tmp_path / "a.parquet", 0, 10, load_validator_table(out / "validators.parquet"))


def test_a_chunk_proves_its_manifest_and_a_failed_save_leaves_nothing(tmp_path, monkeypatch) -> None:
    r = ChunkResult(np.array([0], np.uint8), np.array([True]), np.zeros(0, np.int64), np.zeros(0, np.int64),
                    np.zeros((0, 32), np.uint8), np.zeros((0, 32), np.uint8))
    mine, other = bytes(range(32)), bytes(32)
    r.save(tmp_path / "c.npz", mine)
    assert ChunkResult.load(tmp_path / "c.npz", mine).code.tolist() == [0]
    with pytest.raises(ForeignChunk, match="another checkpoint manifest"):
        ChunkResult.load(tmp_path / "c.npz", other)
    r.save(tmp_path / "old.npz")  # no digest at all, like a chunk of checkpoint format 1
    with pytest.raises(ForeignChunk):
        ChunkResult.load(tmp_path / "old.npz", mine)

    def disk_full(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError, match="No space left"):
        r.save(tmp_path / "d.npz", mine)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz", "old.npz"]  # no temp file left
