"""Attestation uploads: the bytes of a request (a JSON list of hex rows, an Arrow IPC stream or a
Parquet file) -> :class:`~engine.tables.attestations.AttestationColumns`.

Errors are domain errors (engine.model.errors), which the service maps to status codes:
``UnreadableUpload`` for a body that is not JSON or not a readable Arrow/Parquet upload,
``UnsupportedMediaType`` for another content type, ``UploadTooLarge`` for an Arrow/Parquet
upload whose metadata declares more rows, values or decompressed bytes than its size allows (a
decompression bomb, refused before anything is decompressed: engine.tables.decode_limits), and
``CodecError`` for a JSON row with bad hex or a wrong length. An Arrow/Parquet row with a wrong
width or a body that does not decode is only marked not well formed: one bad row must not sink
a large upload.

Example::

    cols = parse_upload("application/json", b'[{"body": "0x..", "signature": "..", "public_key": ".."}]')
"""
from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import polars as pl

from engine.model.attestation import binary_to_array, well_formed_bodies
from engine.model.errors import CodecError, UnreadableUpload, UnsupportedMediaType, first_line
from engine.tables.attestations import ROW_COLUMNS, AttestationColumns, fixed_width_column
from engine.tables.decode_limits import MIN_BYTES_PER_ROW, check_arrow_stream, check_parquet

__all__ = ["MEDIA_TYPES", "MIN_BYTES_PER_ROW", "parse_upload"]

# media type -> (what it is, the check of its metadata before decoding, the reader)
MEDIA_TYPES = {"application/vnd.apache.arrow.stream": ("Arrow IPC stream", check_arrow_stream, pl.read_ipc_stream),
               "application/vnd.apache.parquet": ("Parquet file", check_parquet, pl.read_parquet)}


def _json_rows(raw: bytes) -> dict[str, np.ndarray]:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the parser's stack
        raise UnreadableUpload(f"body: invalid JSON ({exc})") from None
    rows = doc.get("attestations") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise CodecError("body: expected a JSON list of attestations")
    cols: dict[str, list[Any]] = {name: [] for name in ROW_COLUMNS}
    for i, row in enumerate(rows):  # JSON has no columns: one pass to pick the fields, then columns
        if not isinstance(row, dict):
            raise CodecError(f"[{i}]: expected an object, got {type(row).__name__}")
        extra = set(row) - {"body", "body_hex", "signature", "public_key"}
        if extra:
            raise CodecError(f"[{i}].{min(extra)}: unknown field")
        if ("body" in row) == ("body_hex" in row):
            raise CodecError(f"[{i}].body: give exactly one of body or body_hex")
        for name in ROW_COLUMNS:
            value = row.get(name, row.get("body_hex")) if name == "body" else row.get(name)
            if not isinstance(value, str) or not value.isascii():  # isascii: no lone surrogates reach Polars
                field = name if name != "body" or "body" in row else "body_hex"
                raise CodecError(f"[{i}].{field}: expected a hex string, got {type(value).__name__} {value!r:.40}")
            cols[name].append(value)
    out = {}
    for name, width in ROW_COLUMNS.items():  # hex decoding as Polars expressions over the column
        s = pl.Series(name, cols[name], dtype=pl.String).str.strip_prefix("0x").str.strip_prefix("0X")
        bad = ~s.str.contains(f"^[0-9a-fA-F]{{{2 * width}}}$")
        if bad.any():
            row = int(bad.arg_max())
            raise CodecError(f"[{row}].{name}: bad hex or not {width} bytes: {cols[name][row][:40]!r}")
        out[name] = binary_to_array(s.str.decode("hex"), width, name) if len(s) else np.zeros((0, width), np.uint8)
    return out


def parse_upload(content_type: str, raw: bytes) -> AttestationColumns:
    """Columns from a JSON list (hex), an Arrow IPC stream or a Parquet file.

    Example: ``parse_upload("application/json", b'[{"body": "0x..", "signature": "..", "public_key": ".."}]')``.
    """
    media = content_type.split(";")[0].strip().lower()
    if media in ("", "application/json"):
        c = _json_rows(raw)
        ok = np.ones(len(c["body"]), bool)
    elif media in MEDIA_TYPES:
        what, check, read = MEDIA_TYPES[media]
        check(raw)  # rows, values and decompressed bytes as declared: a bomb never reaches the reader
        try:
            df = read(io.BytesIO(raw))
        except Exception as exc:  # Polars raises several unrelated types for a corrupt upload
            raise UnreadableUpload(f"body: not a readable {what} ({first_line(exc, 120)})") from None
        c, ok = {}, np.ones(len(df), bool)
        for name, width in ROW_COLUMNS.items():
            c[name], good = fixed_width_column(df, name, width)
            ok &= good
    else:
        raise UnsupportedMediaType(f"content-type: {media!r} not accepted (application/json, {', '.join(MEDIA_TYPES)})")
    return AttestationColumns(c["body"], c["signature"], c["public_key"], ok, ok & well_formed_bodies(c["body"]))
