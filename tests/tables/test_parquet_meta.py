"""The Parquet metadata reader against pyarrow's (the oracle) on files Polars writes, and its
refusals of damaged Thrift data."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import polars as pl
import pytest

from engine.tables.parquet_meta import DICTIONARY_PAGE, MetadataError, _Compact, read_parquet_meta
from tests.support.upload_bombs import parquet_bytes, zigzag_varint


@pytest.mark.parametrize("kw", [{}, {"compression": "snappy", "row_group_size": 700}, {"compression": "uncompressed"},
                                {"compression": "zstd", "data_page_size": 4096}])
def test_footer_and_pages_agree_with_pyarrow(small_dataset, kw) -> None:
    out, _ = small_dataset
    df = pl.read_parquet(out / "attestations.parquet")
    raw = parquet_bytes(df, **kw)
    meta, oracle = read_parquet_meta(raw), pq.read_metadata(pa.BufferReader(raw))
    assert meta.rows == oracle.num_rows == df.height and meta.footer_bytes == oracle.serialized_size
    assert meta.row_group_rows == tuple(oracle.row_group(i).num_rows for i in range(oracle.num_row_groups))
    want = [(c.path_in_schema, i, c.num_values, c.total_uncompressed_size, c.total_compressed_size)
            for i in range(oracle.num_row_groups) for c in map(oracle.row_group(i).column, range(oracle.num_columns))]
    assert [(c.column, c.row_group, c.values, c.uncompressed, c.compressed) for c in meta.chunks] == want
    for i, chunk in enumerate(meta.chunks):
        pages = [p for p in meta.pages if p.chunk == i]
        assert pages[0].offset == chunk.start
        assert sum(p.values for p in pages if p.kind != DICTIONARY_PAGE) == chunk.values
        assert sum(p.uncompressed for p in pages) <= chunk.uncompressed  # the rest is page headers


def test_thrift_reader_refuses_what_no_footer_holds() -> None:
    with pytest.raises(MetadataError, match="varint longer than 10 bytes"):
        _Compact(b"\x80" * 11, 0, 11).varint()
    with pytest.raises(MetadataError, match="a list of 1000 elements overruns"):
        _Compact(b"\x19\xf9\xe8\x07", 0, 4).struct()  # field 1: list, size 1000
    deep = b"\x1c" * 40  # struct in struct in struct ...
    with pytest.raises(MetadataError, match="nested deeper than 16"):
        _Compact(deep, 0, len(deep)).struct()
    with pytest.raises(MetadataError, match="truncated Thrift data"):
        _Compact(b"\x15", 0, 1).struct()
    assert _Compact(zigzag_varint(-5, 4), 0, 4).zigzag() == -5  # padded varints read as their value


def test_not_parquet_is_named() -> None:
    with pytest.raises(MetadataError, match="magic bytes"):
        read_parquet_meta(b"PAR1" + b"\0" * 20)
    with pytest.raises(MetadataError, match="footer length .* overruns"):
        read_parquet_meta(b"PAR1" + b"\0" * 4 + (10_000).to_bytes(4, "little") + b"PAR1")
