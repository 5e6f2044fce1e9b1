"""The Arrow IPC message reader: batches and rows as pyarrow reads them, the uncompressed
lengths of a compressed stream equal the buffers of the same stream written uncompressed, and
damaged framing is a MetadataError."""
from __future__ import annotations

import pyarrow as pa
import polars as pl
import pytest

from engine.tables.arrow_meta import read_arrow_stream_meta
from engine.tables.parquet_meta import MetadataError
from tests.support.upload_bombs import arrow_bytes


@pytest.fixture(scope="module")
def frame(small_dataset) -> pl.DataFrame:
    out, _ = small_dataset
    df = pl.read_parquet(out / "attestations.parquet")
    return pl.concat([df.slice(i, 700) for i in range(0, df.height, 700)], rechunk=False)  # several batches


@pytest.mark.parametrize("compat", ["oldest", "newest"])
def test_batches_as_pyarrow_reads_them(frame, compat) -> None:
    level = getattr(pl.CompatLevel, compat)()
    plain = arrow_bytes(frame, compat_level=level)
    batches = [b for b in read_arrow_stream_meta(plain) if not b.dictionary]
    oracle = list(pa.ipc.open_stream(plain))
    assert [b.rows for b in batches] == [b.num_rows for b in oracle] and sum(b.rows for b in batches) == frame.height
    for compression in ("zstd", "lz4"):
        packed = [b for b in read_arrow_stream_meta(arrow_bytes(frame, compression=compression, compat_level=level))
                  if not b.dictionary]
        assert all(b.compressed for b in packed) and not any(b.compressed for b in batches)
        for p, b in zip(packed, batches, strict=True):
            assert p.node_lengths == b.node_lengths
            for pb, bb in zip(p.buffers, b.buffers, strict=True):  # uncompressed: padded to 8 bytes
                assert pb.uncompressed <= bb.length < pb.uncompressed + 64


def test_damaged_framing() -> None:
    raw = arrow_bytes(pl.DataFrame({"a": [1, 2, 3]}))
    with pytest.raises(MetadataError, match="overruns the stream"):
        read_arrow_stream_meta(raw[:40])
    with pytest.raises(MetadataError, match="stream truncated"):
        read_arrow_stream_meta(b"\xff\xff\xff\xff\x01")
    with pytest.raises(MetadataError, match="overruns the stream"):
        read_arrow_stream_meta(b"ARROW1\0\0" + raw)  # the file format is not a stream
