"""Parquet files of a dataset: the magic-byte sniff, the checked read and the atomic write."""
from __future__ import annotations

import os

import polars as pl
import pytest

from engine.model.errors import InputError, JobInputError
from engine.tables.parquet import BLOCKS_SCHEMA, read_table, require_parquet, sink_frames_atomic, write_parquet_atomic


def _blocks(n: int = 2, width: int = 32) -> pl.DataFrame:
    return pl.DataFrame({"hash": [bytes([i + 1]) * width for i in range(n)], "parent": [bytes(width)] * n,
                         "height": pl.Series(range(n), dtype=pl.UInt64)})


def test_sniff_names_the_problem(tmp_path) -> None:
    good = write_parquet_atomic(_blocks(), tmp_path / "b.parquet")
    assert require_parquet(good) == good
    (tmp_path / "text.parquet").write_text("hello, not parquet")
    (tmp_path / "empty.parquet").write_bytes(b"")
    (tmp_path / "cut.parquet").write_bytes(good.read_bytes()[:40])
    (tmp_path / "dir.parquet").mkdir()
    cases = {"missing.parquet": "no such file", "text.parquet": "not a Parquet file", "empty.parquet": "not a Parquet file",
             "cut.parquet": "not a Parquet file", "dir.parquet": "is a directory"}
    for name, problem in cases.items():
        with pytest.raises(InputError, match=problem) as exc:
            require_parquet(tmp_path / name)
        assert str(exc.value).startswith(str(tmp_path / name))
    with pytest.raises(JobInputError):  # the caller chooses the error class
        require_parquet(tmp_path / "text.parquet", JobInputError)


def test_checked_read(tmp_path) -> None:
    assert read_table(write_parquet_atomic(_blocks(), tmp_path / "ok.parquet"), BLOCKS_SCHEMA).height == 2
    write_parquet_atomic(_blocks().drop("parent"), tmp_path / "missing.parquet")
    write_parquet_atomic(_blocks().with_columns(pl.col("height").cast(pl.Int32)), tmp_path / "type.parquet")
    write_parquet_atomic(_blocks(width=31), tmp_path / "width.parquet")
    write_parquet_atomic(_blocks().with_columns(pl.lit(None, pl.Binary).alias("hash")), tmp_path / "null.parquet")
    for name, problem in {"missing": r"missing column\(s\) parent", "type": "column height has type Int32",
                          "width": r"column hash: expected 32 bytes, got 31 \(row 0, 2 bad rows\)",
                          "null": "column hash has 2 null values"}.items():
        with pytest.raises(InputError, match=problem):
            read_table(tmp_path / f"{name}.parquet", BLOCKS_SCHEMA)


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path) -> None:
    target = tmp_path / "out.parquet"
    write_parquet_atomic(_blocks(), target)
    before = target.read_bytes()

    class Boom(Exception):
        pass

    class Frame:
        def write_parquet(self, path):
            open(path, "wb").write(b"partial")
            raise Boom

    with pytest.raises(Boom):
        write_parquet_atomic(Frame(), target)
    assert target.read_bytes() == before  # the old file is untouched
    assert sorted(os.listdir(tmp_path)) == ["out.parquet"]  # and no temp file is left


def test_sunk_frames_are_the_written_table_whatever_the_chunking(tmp_path) -> None:
    df = pl.DataFrame({"hash": [bytes([i % 251]) * 32 for i in range(2500)], "height": list(range(2500))},
                      schema={"hash": pl.Binary, "height": pl.UInt64})
    df.write_parquet(tmp_path / "whole.parquet", row_group_size=1000)
    for size in (1, 7, 999, 1000, 3000):
        target = tmp_path / f"sunk{size}.parquet"
        sink_frames_atomic((df.slice(lo, size) for lo in range(0, df.height, size)), df.schema, target,
                           row_group_size=1000)
        assert target.read_bytes() == (tmp_path / "whole.parquet").read_bytes(), size


def test_sink_failure_is_the_source_error_and_leaves_nothing(tmp_path) -> None:
    df = _blocks()
    target = tmp_path / "out.parquet"
    write_parquet_atomic(df, target)
    before = target.read_bytes()

    class Boom(Exception):
        pass

    def frames():
        yield df
        raise Boom("half way")

    with pytest.raises(Boom, match="half way"):
        sink_frames_atomic(frames(), df.schema, target, row_group_size=10)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.parquet"]
