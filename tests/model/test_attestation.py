"""Attestation codec: layout, round trips (hypothesis), and every rejection naming its field."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.model.attestation import (
    BODY_DTYPE,
    BODY_LAYOUT,
    BODY_SIZE,
    AttestationBody,
    attestation_from_json,
    attestation_ids,
    attestation_to_json,
    attestations_frame,
    binary_column,
    binary_to_array,
    decode_bodies,
    encode_bodies,
    frame_from_json,
    frame_to_json,
    hex_to_bytes,
    well_formed_bodies,
)
from engine.model.errors import CodecError

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
h32 = st.binary(min_size=32, max_size=32)
bodies_st = st.builds(
    AttestationBody, chain_id=u32, validator_index=u32, epoch=u64, target=h32, evidence_root=h32,
    poi_score=st.integers(0, 1_000_000), timestamp_us=u64, nonce=u64,
)


def slow_encode(b: AttestationBody) -> bytes:
    """The obvious twin of the vectorized encoder: struct.pack field by field."""
    return (b"BIZRAPOI" + struct.pack("<HIIQ", b.version, b.chain_id, b.validator_index, b.epoch) + b.target
            + b.evidence_root + struct.pack("<IQQ", b.poi_score, b.timestamp_us, b.nonce))


def columns_of(bodies: list[AttestationBody]) -> dict[str, object]:
    return {f: [getattr(b, f) for b in bodies] for f in ("version", "chain_id", "validator_index", "epoch",
                                                        "target", "evidence_root", "poi_score", "timestamp_us", "nonce")}


def test_layout_table_matches_the_documented_offsets() -> None:
    assert BODY_SIZE == 110 and BODY_DTYPE.itemsize == 110
    offsets = {name: off for name, off, _ in BODY_LAYOUT}
    assert offsets == {"domain": 0, "version": 8, "chain_id": 10, "validator_index": 14, "epoch": 18,
                       "target": 26, "evidence_root": 58, "poi_score": 90, "timestamp_us": 94, "nonce": 102}
    for name, off, _ in BODY_LAYOUT:
        assert BODY_DTYPE.fields[name][1] == off


@settings(max_examples=150, deadline=None)
@given(bodies_st)
def test_single_body_round_trip_and_matches_struct(body: AttestationBody) -> None:
    raw = body.encode()
    assert raw == slow_encode(body) and len(raw) == BODY_SIZE
    assert AttestationBody.decode(raw) == body
    assert AttestationBody.decode("0x" + raw.hex()) == body
    assert body.id() == hashlib.sha256(raw).digest()


@settings(max_examples=40, deadline=None)
@given(st.lists(bodies_st, min_size=0, max_size=20))
def test_columns_round_trip(bodies: list[AttestationBody]) -> None:
    arr = encode_bodies(columns_of(bodies))
    assert arr.shape == (len(bodies), BODY_SIZE)
    assert arr.tobytes() == b"".join(slow_encode(b) for b in bodies)
    cols = decode_bodies(arr)
    assert cols["epoch"].dtype == np.uint64 and cols["poi_score"].dtype == np.uint32
    assert cols["target"].shape == (len(bodies), 32)
    assert np.array_equal(encode_bodies(cols), arr)
    assert np.array_equal(attestation_ids(arr).reshape(-1, 32),
                          np.frombuffer(b"".join(b.id() for b in bodies), np.uint8).reshape(-1, 32))


@settings(max_examples=25, deadline=None)
@given(bodies=st.lists(bodies_st, min_size=1, max_size=12), data=st.data())
def test_frame_parquet_json_round_trip(tmp_path_factory, bodies: list[AttestationBody], data: st.DataObject) -> None:
    n = len(bodies)
    arr = encode_bodies(columns_of(bodies))
    # Trailing zero bytes are where a naive fixed-width bytes conversion would lose data.
    sigs = np.frombuffer(data.draw(st.binary(min_size=64 * n, max_size=64 * n)), np.uint8).reshape(n, 64).copy()
    sigs[0, -8:] = 0
    pks = np.frombuffer(data.draw(st.binary(min_size=32 * n, max_size=32 * n)), np.uint8).reshape(n, 32)
    df = attestations_frame(arr, sigs, pks)
    assert df.schema["epoch"] == pl.UInt64 and df.schema["body"] == pl.Binary
    path = tmp_path_factory.mktemp("pq") / "a.parquet"
    df.write_parquet(path)
    back = pl.read_parquet(path)
    assert back.equals(df)
    assert np.array_equal(binary_to_array(back["signature"], 64), sigs)
    assert np.array_equal(binary_to_array(back["body"], BODY_SIZE), arr)
    records = json.loads(json.dumps(frame_to_json(df)))
    assert frame_from_json(records).equals(df)
    one = attestation_to_json(arr[0].tobytes(), sigs[0].tobytes(), pks[0].tobytes())
    assert attestation_from_json(json.loads(json.dumps(one))) == (arr[0].tobytes(), sigs[0].tobytes(), pks[0].tobytes())
    fields_only = {k: v for k, v in one.items() if k not in ("body", "id")}
    assert attestation_from_json(fields_only)[0] == arr[0].tobytes()


def test_binary_column_keeps_zero_bytes() -> None:
    arr = np.zeros((3, 32), np.uint8)
    arr[1, 0] = 5
    s = binary_column("k", arr)
    assert s.to_list() == [bytes(r) for r in arr]
    assert np.array_equal(binary_to_array(s, 32), arr)


@pytest.fixture
def good_body() -> bytes:
    return AttestationBody(chain_id=1, validator_index=2, epoch=3, target=b"\x01" * 32, evidence_root=b"\x02" * 32,
                           poi_score=1_000_000, timestamp_us=5, nonce=6).encode()


@pytest.mark.parametrize("size", [0, 1, 109, 111, 220])
def test_rejects_wrong_size(size: int) -> None:
    with pytest.raises(CodecError, match="body: expected 110 bytes"):
        AttestationBody.decode(b"\x00" * size)


@pytest.mark.parametrize("text", ["zz", "0x0", "0xg1", "12 34"])
def test_rejects_bad_hex(text: str) -> None:
    with pytest.raises(CodecError, match="target: bad hex"):
        hex_to_bytes(text, "target")


def test_hex_prefix_accepted() -> None:
    assert hex_to_bytes("0x00ff", "x") == hex_to_bytes("00FF", "x") == b"\x00\xff"


def test_rejects_unknown_version(good_body: bytes) -> None:
    bad = bytearray(good_body)
    bad[8:10] = struct.pack("<H", 2)
    with pytest.raises(CodecError, match=r"^version: unknown version 2"):
        AttestationBody.decode(bytes(bad))


def test_rejects_unknown_domain_tag(good_body: bytes) -> None:
    bad = b"BIZRAPOX" + good_body[8:]
    with pytest.raises(CodecError, match="domain tag"):
        AttestationBody.decode(bad)


def test_rejects_poi_score_above_one_million(good_body: bytes) -> None:
    bad = bytearray(good_body)
    bad[90:94] = struct.pack("<I", 1_000_001)
    with pytest.raises(CodecError, match=r"^poi_score: 1000001 > 1000000$"):
        AttestationBody.decode(bytes(bad))
    with pytest.raises(CodecError, match="poi_score"):
        AttestationBody(chain_id=1, validator_index=2, epoch=3, target=b"\x01" * 32, evidence_root=b"\x02" * 32,
                        poi_score=1_000_001, timestamp_us=5, nonce=6).encode()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 9), st.integers(0, 255), st.integers(0, 50))
def test_column_decoder_names_field_and_row(pos: int, value: int, row: int) -> None:
    arr = np.tile(np.frombuffer(AttestationBody(0, 0, 0, b"\0" * 32, b"\0" * 32, 0, 0, 0).encode(), np.uint8), (51, 1))
    if arr[row, pos] == value:
        return
    arr[row, pos] = value
    with pytest.raises(CodecError, match=rf"^(domain tag|version): .*\(row {row}, 1 bad rows\)"):
        decode_bodies(arr)
    assert well_formed_bodies(arr).tolist() == [i != row for i in range(51)]
    assert len(decode_bodies(arr, strict=False)["epoch"]) == 51


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [("chain_id", [-1], "chain_id: -1 out of range"), ("epoch", [2**64], "epoch"),
     ("validator_index", [2**32], "validator_index: 4294967296 out of range"),
     ("poi_score", [1.5], "poi_score: expected integers"), ("nonce", np.array([0.5]), "nonce: expected integers"), ("target", [b"\0" * 31], "target: expected 32 bytes")],
)
def test_encode_rejects_out_of_range(field: str, value: list, pattern: str) -> None:
    cols = columns_of([AttestationBody(0, 0, 0, b"\0" * 32, b"\0" * 32, 0, 0, 0)])
    cols[field] = np.array(value, dtype=object) if field == "epoch" else value
    with pytest.raises(CodecError, match=pattern):
        encode_bodies(cols)


def test_binary_to_array_names_column_on_wrong_width() -> None:
    s = pl.Series("signature", [b"\0" * 64, b"\0" * 63], dtype=pl.Binary)
    with pytest.raises(CodecError, match=r"signature: expected 64 bytes, got 63 \(row 1"):
        binary_to_array(s, 64)
    with pytest.raises(CodecError, match="signature: expected Binary"):
        binary_to_array(pl.Series("signature", [1, 2]), 64)


def test_json_rejections(good_body: bytes) -> None:
    rec = {"body": good_body.hex(), "signature": "00" * 64, "public_key": "11" * 32}
    assert frame_from_json([rec]).height == 1
    with pytest.raises(CodecError, match="signature: bad hex"):
        frame_from_json([{**rec, "signature": "zz" * 64}])
    with pytest.raises(CodecError, match="public_key: missing"):
        frame_from_json([{"body": rec["body"], "signature": rec["signature"]}])
    with pytest.raises(CodecError, match="epoch: .* does not match the body"):
        attestation_from_json({**rec, "epoch": 4})
    bad = bytearray(good_body)
    bad[90:94] = struct.pack("<I", 2_000_000)
    with pytest.raises(CodecError, match="poi_score"):
        frame_from_json([{**rec, "body": "0x" + bytes(bad).hex()}])


def test_fields_match_body_flags_rows_not_files() -> None:
    from engine.model.attestation import fields_match_body

    cols = columns_of([AttestationBody(1, i, 10 + i, bytes([i]) * 32, b"\x02" * 32, i, i, i) for i in range(6)])
    arr = encode_bodies(cols)
    arr[4, 8] = 9  # unknown version: the body itself is malformed
    df = attestations_frame(arr, np.zeros((6, 64), np.uint8), np.zeros((6, 32), np.uint8), strict=False)
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(pl.lit(99, dtype=pl.UInt64)).otherwise(pl.col("epoch")).alias("epoch"),
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit(b"short")).otherwise(pl.col("target")).alias("target"),
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("nonce")).alias("nonce"),
        pl.col("poi_score").cast(pl.Int64),
    )
    assert fields_match_body(df).tolist() == [True, False, False, False, False, True]
    assert fields_match_body(df.select("body")).tolist() == [True, True, True, True, False, True]
