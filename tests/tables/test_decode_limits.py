"""Decode limits: the three decompression bombs are refused from their metadata alone, honest uploads
of every encoding pass, and damaged metadata is a clean 'unreadable', never another exception."""
from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.model.errors import InputError, UnreadableUpload, UploadTooLarge
from engine.tables.decode_limits import (
    CELL_BYTES,
    MIN_ROWS,
    ROW_BYTES,
    SLACK_BYTES,
    budget,
    check_arrow_stream,
    check_parquet,
    check_parquet_file,
    max_rows,
)
from engine.tables.parquet_meta import read_parquet_meta
from tests.support.upload_bombs import NAMES, arrow_bytes, bomb, parquet_bytes, zigzag_varint


@pytest.fixture(scope="module")
def table(small_dataset) -> pl.DataFrame:
    out, _ = small_dataset
    return pl.read_parquet(out / "attestations.parquet")  # every column of ATTESTATION_SCHEMA


def _check(raw: bytes, media: str) -> int:
    return (check_parquet if media.endswith("parquet") else check_arrow_stream)(raw)


@pytest.mark.parametrize("name", NAMES)
def test_the_bombs_are_small_and_refused_naming_the_limit(name) -> None:
    raw, media = bomb(name)
    assert len(raw) < 64 * 1024
    with pytest.raises(UploadTooLarge) as exc:
        _check(raw, media)
    msg = str(exc.value)
    assert msg.startswith("body: ") and "limit" in msg and "\n" not in msg
    assert (f"more than {MIN_ROWS:,}" in msg) if name == "rows-1m.arrows" else (f"limit of {budget(1):,}" in msg)


def test_the_parquet_bomb_really_holds_a_gibibyte() -> None:
    """pyarrow, not our reader, says what the bomb would decompress to: the test above refuses a real bomb."""
    raw, _ = bomb("value-1gib.parquet")
    meta = pq.read_metadata(pa.BufferReader(raw))
    assert meta.num_rows == 1 and meta.row_group(0).column(0).total_uncompressed_size >= 1 << 30


def test_a_footer_that_lies_is_caught_by_the_page_header() -> None:
    raw, _ = bomb("value-1gib.parquet")
    body = read_parquet_meta(raw).chunks[0]
    assert body.column == "body" and body.uncompressed >= 1 << 30
    honest = zigzag_varint(body.uncompressed)
    footer_at = len(raw) - 8 - int.from_bytes(raw[-8:-4], "little")
    at = raw.index(honest, footer_at)
    lying = raw[:at] + zigzag_varint(1000, len(honest)) + raw[at + len(honest):]
    meta = read_parquet_meta(lying)
    assert meta.chunks[0].uncompressed == 1000  # the footer now claims 1,000 bytes
    with pytest.raises(UploadTooLarge, match=r"page at byte 4 \(column body\) would decompress to 1,073,741,8"):
        check_parquet(lying)


def test_more_values_than_rows_is_refused() -> None:
    nested = pl.DataFrame({"x": [[None] * 100_000]})  # one row, 100K values: a run-length trick
    with pytest.raises(UploadTooLarge, match="declares 100,000 values in a row group of 1 rows"):
        check_parquet(parquet_bytes(nested, compression="zstd"))
    with pytest.raises(UploadTooLarge, match="a field of 100,000 values in a batch of 1 rows"):
        check_arrow_stream(arrow_bytes(nested, compression="zstd"))


@pytest.mark.parametrize("compression", ["uncompressed", "zstd", "lz4", "snappy", "gzip"])
def test_honest_parquet_passes_with_room(table, compression) -> None:
    raw = parquet_bytes(table, compression=compression)
    assert check_parquet(raw) == table.height
    meta = read_parquet_meta(raw)
    decoded = sum(p.uncompressed for p in meta.pages) + CELL_BYTES * sum(c.values for c in meta.chunks)
    assert decoded < table.height * ROW_BYTES * 0.75  # an honest row is well inside the layout's budget


@pytest.mark.parametrize("compression", ["uncompressed", "zstd", "lz4"])
@pytest.mark.parametrize("compat", ["oldest", "newest"])
def test_honest_arrow_passes(table, compression, compat) -> None:
    level = getattr(pl.CompatLevel, compat)()
    raw = arrow_bytes(table, compression=compression, compat_level=level)
    assert check_arrow_stream(raw) == table.height
    several = pl.concat([table.slice(i, 500) for i in range(0, table.height, 500)], rechunk=False)
    assert check_arrow_stream(arrow_bytes(several, compression=compression, compat_level=level)) == table.height


def test_row_limit_follows_the_size() -> None:
    assert max_rows(0) == MIN_ROWS and max_rows(48 * 5000) == 5000 and max_rows(48 * 5000, 24) == 10_000
    assert budget(3) == 3 * ROW_BYTES + SLACK_BYTES
    df = pl.DataFrame({c: pl.Series([None] * 5000, dtype=pl.Binary) for c in ("body", "signature", "public_key")})
    raw = parquet_bytes(df)
    assert len(raw) < 48 * 5000
    with pytest.raises(UploadTooLarge, match=f"declares 5,000 rows, more than {MIN_ROWS:,}"):
        check_parquet(raw)
    assert check_parquet(parquet_bytes(df.head(MIN_ROWS))) == MIN_ROWS  # the floor: small uploads pass


def test_files_are_checked_through_mmap(tmp_path) -> None:
    raw, _ = bomb("value-1gib.parquet")
    path = tmp_path / "attestations.parquet"
    path.write_bytes(raw)
    with pytest.raises(InputError, match=f"^{path}: Parquet file .* would decompress to"):
        check_parquet_file(path, InputError)
    (tmp_path / "empty.parquet").write_bytes(b"")
    with pytest.raises(InputError, match="empty.parquet: cannot read"):
        check_parquet_file(tmp_path / "empty.parquet", InputError)
    path.write_bytes(raw[:-20] + raw[-8:])  # footer damaged
    with pytest.raises(InputError, match="corrupt Parquet file"):
        check_parquet_file(path, InputError)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_metadata_is_unreadable_never_a_crash(table, data) -> None:
    for raw, check in ((_SMALL_PARQUET, check_parquet), (_SMALL_ARROW, check_arrow_stream)):
        edits = data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), min_size=1, max_size=4))
        damaged = bytearray(raw)
        for at, value in edits:
            damaged[at] = value
        cut = data.draw(st.integers(0, len(raw)))
        for candidate in (bytes(damaged), bytes(damaged[:cut])):
            try:
                check(candidate)
            except (UnreadableUpload, UploadTooLarge):
                pass


_FRAME = pl.DataFrame({"body": [bytes(110)] * 3, "signature": [bytes(64)] * 3, "public_key": [bytes(32)] * 3})
_SMALL_PARQUET = parquet_bytes(_FRAME, compression="zstd")
_SMALL_ARROW = arrow_bytes(_FRAME, compression="zstd")
