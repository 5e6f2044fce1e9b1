"""Attestation body codec (docs/design.md, "Attestations"): one body, whole columns, Polars, Parquet, JSON.

The body is a packed little-endian record of BODY_SIZE = 110 bytes.  BODY_LAYOUT below is the
single source of truth for the offsets; BODY_DTYPE is the same table as a NumPy structured
dtype, so a column of bodies decodes with one ``np.frombuffer`` and encodes with one
structured assignment (no per-row Python).

    offset  size  field            type
         0     8  domain tag       b"BIZRAPOI"
         8     2  version          u16 (= 1)
        10     4  chain_id         u32
        14     4  validator_index  u32
        18     8  epoch            u64
        26    32  target           32 bytes (block hash)
        58    32  evidence_root    32 bytes (SHA-256 of the evidence)
        90     4  poi_score        u32, 0..1_000_000 (parts per million)
        94     8  timestamp_us     u64
       102     8  nonce            u64

The signed message is exactly the encoded body; an attestation's id is SHA-256(body).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from engine.model.errors import CodecError

__all__ = [
    "ATTESTATION_SCHEMA",
    "BODY_DTYPE",
    "BODY_LAYOUT",
    "BODY_SIZE",
    "DOMAIN_TAG",
    "FIELD_NAMES",
    "MAX_POI_SCORE",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "VERSION",
    "AttestationBody",
    "attestation_from_json",
    "attestation_ids",
    "attestation_to_json",
    "attestations_frame",
    "binary_column",
    "binary_to_array",
    "decode_bodies",
    "encode_bodies",
    "fields_match_body",
    "frame_from_json",
    "frame_to_json",
    "hex_to_bytes",
    "well_formed_bodies",
]

DOMAIN_TAG = b"BIZRAPOI"
VERSION = 1
BODY_SIZE = 110
SIGNATURE_SIZE = 64
PUBLIC_KEY_SIZE = 32
HASH_SIZE = 32
MAX_POI_SCORE = 1_000_000
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")

# (field, offset, numpy type); the one table the dtype, the Polars schema and the docs follow.
BODY_LAYOUT: tuple[tuple[str, int, str], ...] = (
    ("domain", 0, "8u1"),
    ("version", 8, "<u2"),
    ("chain_id", 10, "<u4"),
    ("validator_index", 14, "<u4"),
    ("epoch", 18, "<u8"),
    ("target", 26, "32u1"),
    ("evidence_root", 58, "32u1"),
    ("poi_score", 90, "<u4"),
    ("timestamp_us", 94, "<u8"),
    ("nonce", 102, "<u8"),
)
BODY_DTYPE = np.dtype(
    {
        "names": [f for f, _, _ in BODY_LAYOUT],
        "formats": [t for _, _, t in BODY_LAYOUT],
        "offsets": [o for _, o, _ in BODY_LAYOUT],
        "itemsize": BODY_SIZE,
    }
)
if BODY_DTYPE.itemsize != BODY_SIZE:  # the layout table and the dtype must agree (never skipped, unlike an assert)
    raise RuntimeError(f"BODY_DTYPE is {BODY_DTYPE.itemsize} bytes, the body {BODY_SIZE}")
# Decoded fields as columns (the domain tag is a constant, checked, never a column).
FIELD_NAMES: tuple[str, ...] = tuple(f for f, _, _ in BODY_LAYOUT if f != "domain")
_BYTES_FIELDS = ("target", "evidence_root")
_POLARS_INT = {"<u2": pl.UInt16, "<u4": pl.UInt32, "<u8": pl.UInt64}

# Column name -> Polars dtype of an attestations table; binary widths in BINARY_WIDTHS.
ATTESTATION_SCHEMA: dict[str, pl.DataType] = {
    "body": pl.Binary(),
    "signature": pl.Binary(),
    "public_key": pl.Binary(),
    **{f: (pl.Binary() if t == "32u1" else _POLARS_INT[t]()) for f, _, t in BODY_LAYOUT if f != "domain"},
}
BINARY_WIDTHS: dict[str, int] = {
    "body": BODY_SIZE,
    "signature": SIGNATURE_SIZE,
    "public_key": PUBLIC_KEY_SIZE,
    "target": HASH_SIZE,
    "evidence_root": HASH_SIZE,
}


@dataclasses.dataclass(frozen=True)
class AttestationBody:
    """One decoded body.

    Example: ``AttestationBody(chain_id=1, validator_index=7, epoch=3, target=b"\\x01" * 32,
    evidence_root=hashlib.sha256(b"report").digest(), poi_score=250_000,
    timestamp_us=1_700_000_000_000_000, nonce=42).encode()`` -> 110 bytes.
    """

    chain_id: int
    validator_index: int
    epoch: int
    target: bytes
    evidence_root: bytes
    poi_score: int
    timestamp_us: int
    nonce: int
    version: int = VERSION

    def encode(self) -> bytes:
        """The exact 110 signed bytes."""
        cols = {f: [getattr(self, f)] for f in FIELD_NAMES}
        cols["target"] = [hex_to_bytes(self.target, "target", HASH_SIZE)]
        cols["evidence_root"] = [hex_to_bytes(self.evidence_root, "evidence_root", HASH_SIZE)]
        return encode_bodies(cols).tobytes()

    @classmethod
    def decode(cls, body: bytes | str) -> AttestationBody:
        """Decode 110 bytes (or their hex); ``AttestationBody.decode(body).encode() == body``."""
        raw = hex_to_bytes(body, "body", BODY_SIZE)
        cols = decode_bodies(np.frombuffer(raw, np.uint8).reshape(1, BODY_SIZE))
        values = {f: (bytes(cols[f][0]) if f in _BYTES_FIELDS else int(cols[f][0])) for f in FIELD_NAMES}
        return cls(**values)

    def id(self) -> bytes:
        """SHA-256 of the encoded body (never of the signature: signatures are malleable)."""
        return hashlib.sha256(self.encode()).digest()


def hex_to_bytes(value: bytes | str, field: str, size: int | None = None) -> bytes:
    """Bytes from bytes or a hex string ("0x" prefix accepted), checking the size.

    Example: ``hex_to_bytes("0x00ff", "nonce") == b"\\x00\\xff"``.
    """
    if isinstance(value, str):
        text = value[2:] if value[:2] in ("0x", "0X") else value
        if not _HEX.fullmatch(text):  # bytes.fromhex alone would accept embedded whitespace
            raise CodecError(f"{field}: bad hex string {value[:80]!r}")
        value = bytes.fromhex(text)
    elif isinstance(value, (bytearray, memoryview, np.ndarray)):
        value = bytes(value)
    if not isinstance(value, bytes):
        raise CodecError(f"{field}: expected bytes or hex string, got {type(value).__name__}")
    if size is not None and len(value) != size:
        raise CodecError(f"{field}: expected {size} bytes, got {len(value)}")
    return value


def _as_matrix(value: Any, field: str, width: int) -> np.ndarray:
    """(n, width) uint8 from a uint8 array, or a list of bytes (one join, then a reshape)."""
    if isinstance(value, pl.Series):
        return binary_to_array(value, width, field)
    if isinstance(value, np.ndarray) and value.dtype == np.uint8:
        arr = value.reshape(1, -1) if value.ndim == 1 and value.size == width else value
    else:
        items = list(value)
        if any(not isinstance(v, (bytes, bytearray)) or len(v) != width for v in items):
            bad = next(v for v in items if not isinstance(v, (bytes, bytearray)) or len(v) != width)
            got = len(bad) if isinstance(bad, (bytes, bytearray)) else type(bad).__name__
            raise CodecError(f"{field}: expected {width} bytes per row, got {got}")
        arr = np.frombuffer(b"".join(items), np.uint8).reshape(len(items), width)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise CodecError(f"{field}: expected shape (n, {width}), got {arr.shape}")
    return arr


def _int_column(value: Any, field: str, typ: str, n: int) -> np.ndarray:
    """An integer column of NumPy type ``typ``, range-checked; CodecError naming the field."""
    info = np.iinfo(np.dtype(typ))
    if np.ndim(value) == 0:
        _int_column([value], field, typ, 1)  # validate the scalar once, then broadcast it
        return np.full(n, value, dtype=typ)
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu":
        arr = value
        lo, hi = (int(arr.min()), int(arr.max())) if len(arr) else (0, 0)
    else:
        items = list(value)
        if any(not isinstance(v, (int, np.integer)) or isinstance(v, bool) for v in items):
            bad = next(v for v in items if not isinstance(v, (int, np.integer)) or isinstance(v, bool))
            raise CodecError(f"{field}: expected integers, got {bad!r}")
        lo, hi = (int(min(items)), int(max(items))) if items else (0, 0)
        arr = items
    if lo < 0 or hi > info.max:
        raise CodecError(f"{field}: {lo if lo < 0 else hi} out of range 0..{info.max}")
    return np.asarray(arr, dtype=typ)


def encode_bodies(columns: Mapping[str, Any]) -> np.ndarray:
    """Encode columns of fields into an (n, 110) uint8 array (vectorized).

    ``version`` may be omitted (defaults to 1).  Example:
    ``encode_bodies({"chain_id": [1], "validator_index": [0], "epoch": [0], "target": [b"\\0" * 32],
    "evidence_root": [b"\\0" * 32], "poi_score": [0], "timestamp_us": [0], "nonce": [0]}).shape
    == (1, 110)``.
    """
    missing = [f for f in FIELD_NAMES if f not in columns and f != "version"]
    if missing:
        raise CodecError(f"{missing[0]}: missing field")
    n = len(columns["epoch"])
    out = np.zeros(n, dtype=BODY_DTYPE)
    out["domain"] = np.frombuffer(DOMAIN_TAG, np.uint8)
    for field, _, typ in BODY_LAYOUT[1:]:
        if field in _BYTES_FIELDS:
            value = _as_matrix(columns[field], field, HASH_SIZE)
        else:
            value = _int_column(columns.get(field, VERSION) if field == "version" else columns[field], field, typ, n)
        if len(value) != n:
            raise CodecError(f"{field}: {len(value)} rows, expected {n}")
        out[field] = value
    _check_fields(out)
    return out.view(np.uint8).reshape(n, BODY_SIZE)


def _field_problems(rec: np.ndarray) -> list[tuple[str, np.ndarray, str]]:
    """(field, bad-row mask, message template) for every rule a decoded body must meet."""
    domain_ok = (rec["domain"] == np.frombuffer(DOMAIN_TAG, np.uint8)).all(axis=1)
    return [
        ("domain tag", ~domain_ok, "unknown domain tag {value} (expected b'BIZRAPOI')"),
        ("version", rec["version"] != VERSION, "unknown version {value} (expected 1)"),
        ("poi_score", rec["poi_score"] > MAX_POI_SCORE, "{value} > 1000000"),
    ]


def _check_fields(rec: np.ndarray) -> None:
    for field, bad, template in _field_problems(rec):
        rows = np.flatnonzero(bad)
        if rows.size:
            i = int(rows[0])
            value = bytes(rec["domain"][i]) if field == "domain tag" else int(rec[field][i])
            where = f" (row {i}, {rows.size} bad rows)" if len(rec) > 1 else ""
            raise CodecError(f"{field}: {template.format(value=value)}{where}")


def _records(bodies: Any) -> np.ndarray:
    arr = _as_matrix(bodies, "body", BODY_SIZE)
    return np.ascontiguousarray(arr).view(BODY_DTYPE).reshape(len(arr))


def well_formed_bodies(bodies: Any) -> np.ndarray:
    """bool[n]: which bodies decode (domain tag, version, poi_score range); never raises on rows.

    Example: ``well_formed_bodies(np.zeros((2, 110), np.uint8)).tolist() == [False, False]``.
    """
    rec = _records(bodies)
    ok = np.ones(len(rec), dtype=bool)
    for _, bad, _ in _field_problems(rec):
        ok &= ~bad
    return ok


def decode_bodies(bodies: Any, *, strict: bool = True) -> dict[str, np.ndarray]:
    """Decode an (n, 110) uint8 array (or a list of 110-byte bodies) into field columns.

    ``target``/``evidence_root`` come back as (n, 32) uint8, integers with their exact dtypes.
    With ``strict`` (default) a bad row raises CodecError naming the field.  Example:
    ``decode_bodies(encode_bodies(cols))["epoch"]``.
    """
    rec = _records(bodies)
    if strict:
        _check_fields(rec)
    return {f: rec[f].copy() for f in FIELD_NAMES}


def attestation_ids(bodies: Any) -> np.ndarray:
    """(n, 32) uint8: SHA-256 of each body.

    Example: ``attestation_ids([body])[0].tobytes() == hashlib.sha256(body).digest()``.
    """
    arr = np.ascontiguousarray(_as_matrix(bodies, "body", BODY_SIZE))
    raw = arr.tobytes()
    # hashlib has no batch API; one C call per row over a shared buffer is the cheapest option.
    digests = b"".join(hashlib.sha256(raw[i : i + BODY_SIZE]).digest() for i in range(0, len(raw), BODY_SIZE))
    return np.frombuffer(digests, np.uint8).reshape(len(arr), HASH_SIZE)


# ---- Polars binary columns ---------------------------------------------------------------


def binary_column(name: str, arr: np.ndarray) -> pl.Series:
    """A Polars Binary Series from an (n, k) uint8 array, without a per-row loop.

    NumPy's fixed-width ``S`` type drops trailing zero bytes, so each row gets a non-zero
    sentinel byte that is sliced off again inside Polars.  Example:
    ``binary_column("public_key", np.zeros((2, 32), np.uint8)).bin.size().to_list() == [32, 32]``.
    """
    arr = np.asarray(arr, dtype=np.uint8)
    n, k = arr.shape
    padded = np.empty((n, k + 1), np.uint8)
    padded[:, :k] = arr
    padded[:, k] = 1
    series = pl.Series(name, padded.view(f"S{k + 1}").reshape(n), dtype=pl.Binary)
    return series.bin.slice(0, k)


def binary_to_array(series: pl.Series, width: int, name: str | None = None) -> np.ndarray:
    """(n, width) uint8 from a Polars Binary Series; CodecError naming the column if widths differ.

    Example: ``binary_to_array(binary_column("x", a), 32)`` returns ``a``.
    """
    name = name or series.name
    if series.dtype != pl.Binary:
        raise CodecError(f"{name}: expected Binary column, got {series.dtype}")
    if series.null_count():
        row = int(series.is_null().arg_max())
        raise CodecError(f"{name}: null value (row {row})")
    sizes = series.bin.size()
    bad = sizes != width
    if bad.any():
        row = int(bad.arg_max())
        raise CodecError(f"{name}: expected {width} bytes, got {sizes[row]} (row {row}, {int(bad.sum())} bad rows)")
    if len(series) == 0:
        return np.zeros((0, width), np.uint8)
    arr = series.bin.reinterpret(dtype=pl.Array(pl.UInt8, width)).to_numpy()
    return np.ascontiguousarray(arr, dtype=np.uint8)


def attestations_frame(bodies: Any, signatures: Any, public_keys: Any, *, strict: bool = True) -> pl.DataFrame:
    """The columnar attestation table: body, signature, public_key and the decoded fields.

    With ``strict=False`` bodies that do not decode are kept, their columns read as raw bytes.
    Example: ``attestations_frame(bodies, sigs, pks).write_parquet("attestations.parquet")``.
    """
    body_arr = _as_matrix(bodies, "body", BODY_SIZE)
    sig_arr = _as_matrix(signatures, "signature", SIGNATURE_SIZE)
    pk_arr = _as_matrix(public_keys, "public_key", PUBLIC_KEY_SIZE)
    if not len(body_arr) == len(sig_arr) == len(pk_arr):
        raise CodecError(f"signature: {len(sig_arr)} rows, public_key: {len(pk_arr)}, body: {len(body_arr)}")
    fields = decode_bodies(body_arr, strict=strict)
    cols = [
        binary_column("body", body_arr),
        binary_column("signature", sig_arr),
        binary_column("public_key", pk_arr),
    ]
    for f in FIELD_NAMES:
        if f in _BYTES_FIELDS:
            cols.append(binary_column(f, fields[f]))
        else:
            cols.append(pl.Series(f, fields[f], dtype=ATTESTATION_SCHEMA[f]))
    return pl.DataFrame(cols)


def fields_match_body(df: pl.DataFrame) -> np.ndarray:
    """bool[n]: the body decodes and every decoded-field column present in ``df`` equals it.

    The row check of a job (a mismatch is a malformed row, not an error).  Example:
    ``fields_match_body(pl.read_parquet("attestations.parquet")).all()``.
    """
    body = binary_to_array(df["body"], BODY_SIZE)
    decoded = decode_bodies(body, strict=False)
    ok = well_formed_bodies(body)
    for f in FIELD_NAMES:
        if f not in df.columns:
            continue
        if f in _BYTES_FIELDS:
            col = df[f]
            same = np.zeros(len(df), dtype=bool)
            right_width = (col.bin.size() == HASH_SIZE).fill_null(False).to_numpy()
            if right_width.any():
                same[right_width] = (binary_to_array(col.filter(right_width), HASH_SIZE) == decoded[f][right_width]).all(axis=1)
        else:
            if not df[f].dtype.is_integer():
                same = np.zeros(len(df), dtype=bool)
            else:  # Polars compares mixed integer types exactly (no float round trip)
                same = (df[f] == pl.Series(decoded[f])).fill_null(False).to_numpy()
        ok &= same
    return ok


# ---- JSON (hex strings) ------------------------------------------------------------------


def attestation_to_json(body: bytes, signature: bytes, public_key: bytes) -> dict[str, Any]:
    """One attestation as a JSON object: hex body/signature/public_key plus decoded fields.

    Example: ``attestation_to_json(body, sig, pk)["epoch"]``.
    """
    decoded = AttestationBody.decode(bytes(body))
    out: dict[str, Any] = {
        "id": "0x" + decoded.id().hex(),
        "body": "0x" + bytes(body).hex(),
        "signature": "0x" + bytes(signature).hex(),
        "public_key": "0x" + bytes(public_key).hex(),
    }
    for f in FIELD_NAMES:
        value = getattr(decoded, f)
        out[f] = "0x" + value.hex() if isinstance(value, bytes) else value
    return out


def attestation_from_json(obj: Mapping[str, Any]) -> tuple[bytes, bytes, bytes]:
    """(body, signature, public_key) from a JSON object.

    Either ``body`` (hex) is given, or the fields to encode it from; decoded fields given next to
    ``body`` must agree with it.  Example: ``attestation_from_json(attestation_to_json(b, s, k))``.
    """
    if not isinstance(obj, Mapping):
        raise CodecError(f"attestation: expected a JSON object, got {type(obj).__name__}")
    for key in ("signature", "public_key"):
        if key not in obj:
            raise CodecError(f"{key}: missing field")
    signature = hex_to_bytes(obj["signature"], "signature", SIGNATURE_SIZE)
    public_key = hex_to_bytes(obj["public_key"], "public_key", PUBLIC_KEY_SIZE)
    if "body" in obj:
        body = hex_to_bytes(obj["body"], "body", BODY_SIZE)
        decoded = AttestationBody.decode(body)
        for f in FIELD_NAMES:
            if f in obj:
                given = obj[f]
                if f in _BYTES_FIELDS:
                    given = hex_to_bytes(given, f, HASH_SIZE)
                if given != getattr(decoded, f):
                    raise CodecError(f"{f}: {obj[f]!r} does not match the body")
    else:
        missing = [f for f in FIELD_NAMES if f not in obj and f != "version"]
        if missing:
            raise CodecError(f"{missing[0]}: missing field (and no body)")
        values = {f: obj[f] for f in FIELD_NAMES if f in obj}
        for f, v in values.items():
            if f not in _BYTES_FIELDS and (not isinstance(v, int) or isinstance(v, bool)):
                raise CodecError(f"{f}: expected an integer, got {v!r}")
        body = AttestationBody(**values).encode()
    return body, signature, public_key


def frame_to_json(df: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows of an attestation table as JSON objects with "0x" hex for binary columns.

    Example: ``json.dumps(frame_to_json(df))``.
    """
    exprs = [
        (pl.lit("0x") + pl.col(c).bin.encode("hex")).alias(c) if dt == pl.Binary else pl.col(c)
        for c, dt in df.schema.items()
    ]
    return df.select(exprs).to_dicts()


def frame_from_json(records: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """An attestation table from JSON objects holding hex ``body``, ``signature``, ``public_key``.

    Hex decoding runs as Polars expressions over the whole column.  Example:
    ``frame_from_json(frame_to_json(df)).equals(df)``.
    """
    cols = {}
    for name, width in (("body", BODY_SIZE), ("signature", SIGNATURE_SIZE), ("public_key", PUBLIC_KEY_SIZE)):
        try:
            values = [r[name] for r in records]
        except KeyError:
            raise CodecError(f"{name}: missing field") from None
        except TypeError:
            raise CodecError("attestation: expected a list of JSON objects") from None
        s = pl.Series(name, values)
        if len(s) and s.dtype != pl.String:
            raise CodecError(f"{name}: expected hex strings, got {s.dtype}")
        s = s.cast(pl.String).str.strip_prefix("0x").str.strip_prefix("0X")
        bad = ~s.str.contains(f"^[0-9a-fA-F]{{{2 * width}}}$")
        if bad.any():
            row = int(bad.arg_max())
            raise CodecError(f"{name}: bad hex or not {width} bytes (row {row}): {str(values[row])[:80]!r}")
        cols[name] = binary_to_array(s.str.decode("hex"), width, name)
    return attestations_frame(cols["body"], cols["signature"], cols["public_key"])
