"""Attestation uploads: JSON, Arrow IPC and Parquet bodies decode to the same columns; the errors
are domain errors (the service maps them to 400, 413, 415 and 422), never HTTP objects."""
from __future__ import annotations

import io
import json

import numpy as np
import polars as pl
import pytest

from engine.model.errors import CodecError, UnreadableUpload, UnsupportedMediaType, UploadTooLarge
from engine.tables.uploads import MEDIA_TYPES, MIN_BYTES_PER_ROW, parse_upload
from tests.support.upload_bombs import NAMES, bomb


@pytest.fixture(scope="module")
def rows(small_dataset) -> pl.DataFrame:
    out, _ = small_dataset
    return pl.read_parquet(out / "attestations.parquet").select("body", "signature", "public_key").head(50)


def _parquet(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf)
    return buf.getvalue()


def _arrow(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_ipc_stream(buf)
    return buf.getvalue()


def test_three_encodings_same_columns(rows) -> None:
    doc = json.dumps([{k: "0x" + v.hex() for k, v in r.items()} for r in rows.iter_rows(named=True)]).encode()
    got = [parse_upload("application/json", doc), parse_upload("application/vnd.apache.arrow.stream", _arrow(rows)),
           parse_upload("application/vnd.apache.parquet; charset=binary", _parquet(rows))]
    for cols in got:
        assert len(cols) == rows.height and cols.well_formed.all()
        for name in ("body", "signature", "public_key"):
            assert np.array_equal(getattr(cols, name), getattr(got[0], name))


def test_domain_errors(rows) -> None:
    with pytest.raises(UnreadableUpload, match="body: invalid JSON"):
        parse_upload("application/json", b"{not json")
    with pytest.raises(UnreadableUpload, match="not a readable Arrow IPC stream"):
        parse_upload("application/vnd.apache.arrow.stream", b"garbage")
    with pytest.raises(UnsupportedMediaType, match="content-type: 'text/csv' not accepted"):
        parse_upload("text/csv", b"a,b")
    with pytest.raises(CodecError, match=r"\[0\]\.signature: bad hex or not 64 bytes"):
        parse_upload("application/json", json.dumps([{"body": "00" * 110, "signature": "zz", "public_key": "00" * 32}]).encode())


def test_a_bad_row_in_a_binary_upload_is_only_marked(rows) -> None:
    bad = rows.with_columns(pl.when(pl.Series(range(rows.height)) == 2).then(pl.col("body").bin.slice(0, 5))
                            .otherwise(pl.col("body")))
    cols = parse_upload("application/vnd.apache.parquet", _parquet(bad))
    assert cols.well_formed.tolist() == [i != 2 for i in range(rows.height)]


def test_parquet_declaring_more_rows_than_its_bytes_hold_is_refused_before_decoding() -> None:
    n = 200_000  # all-null rows compress to almost nothing
    df = pl.DataFrame({name: pl.Series([None] * n, dtype=pl.Binary) for name in ("body", "signature", "public_key")})
    raw = _parquet(df)
    assert n > len(raw) // MIN_BYTES_PER_ROW
    with pytest.raises(UploadTooLarge, match=f"declares {n:,} rows"):
        parse_upload("application/vnd.apache.parquet", raw)


@pytest.mark.parametrize("name", NAMES)
def test_bombs_are_refused_before_the_reader_runs(name, monkeypatch) -> None:
    raw, media = bomb(name)
    what, check, _ = MEDIA_TYPES[media]

    def must_not_decode(source):
        raise AssertionError(f"the {what} reader ran on a bomb")

    monkeypatch.setitem(MEDIA_TYPES, media, (what, check, must_not_decode))
    with pytest.raises(UploadTooLarge, match="limit"):
        parse_upload(media, raw)


def test_damaged_arrow_metadata_is_unreadable(rows) -> None:
    raw = _arrow(rows)
    with pytest.raises(UnreadableUpload, match="not a readable Arrow IPC stream"):
        parse_upload("application/vnd.apache.arrow.stream", raw[:len(raw) // 2])
