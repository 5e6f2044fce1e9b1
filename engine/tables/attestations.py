"""The attestations table: ``attestations.parquet`` read and checked, and the fixed-width
attestation columns every consumer of attestation rows works on.

    attestations.parquet  body binary(110), signature binary(64), public_key binary(32),
                          plus, optionally, the decoded body fields (ATTESTATION_SCHEMA)

A row problem (a wrong width, a null, a body that does not decode, a decoded column that
disagrees with the body) never fails a whole table: :func:`attestation_columns` zero-fills such
rows and marks them not well formed, and the row check calls them ``malformed``. What fails the
table is what no row could survive: a file that is not Parquet, a missing or mistyped column,
or a column whose every row has one wrong width (:func:`check_attestations_file`).

Example::

    rows = check_attestations_file("data/attestations.parquet")
    cols = attestation_columns(pl.read_parquet("data/attestations.parquet"))
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import polars as pl

from engine.model.attestation import (
    ATTESTATION_SCHEMA,
    BINARY_WIDTHS,
    BODY_SIZE,
    FIELD_NAMES,
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    binary_column,
    binary_to_array,
    fields_match_body,
)
from engine.model.errors import CodecError, InputError, first_line
from engine.tables.decode_limits import MIN_BYTES_PER_ROW, check_parquet_file
from engine.tables.parquet import read_table, require_parquet

__all__ = ["ROW_COLUMNS", "AttestationColumns", "attestation_columns", "check_attestations_file",
           "fixed_width_column", "read_attestations"]

# The columns a row needs: everything else can be decoded from the body.
ROW_COLUMNS: dict[str, int] = {"body": BODY_SIZE, "signature": SIGNATURE_SIZE, "public_key": PUBLIC_KEY_SIZE}
_WIDTH_PROBE_ROWS = 65536


@dataclasses.dataclass(frozen=True)
class AttestationColumns:
    """Attestation rows as fixed-width arrays, zero where a row's value had the wrong width.

    ``widths_ok``: body, signature and public key all had their width; ``well_formed``: that,
    and the body decodes (and agrees with any decoded-field columns given next to it).
    """

    body: np.ndarray         # (n, 110) uint8
    signature: np.ndarray    # (n, 64) uint8
    public_key: np.ndarray   # (n, 32) uint8
    widths_ok: np.ndarray    # bool[n]
    well_formed: np.ndarray  # bool[n]

    def __len__(self) -> int:
        return len(self.widths_ok)


def fixed_width_column(df: pl.DataFrame, name: str, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, width) uint8 with zeros where a row is null or not ``width`` bytes, and the ok mask;
    CodecError when the column is missing or not binary."""
    if name not in df.columns:
        raise CodecError(f"{name}: missing column")
    col = df[name]
    if col.dtype != pl.Binary:
        raise CodecError(f"{name}: expected a binary column, got {col.dtype}")
    ok = (col.bin.size() == width).fill_null(False).to_numpy()
    if ok.all():
        return binary_to_array(col, width, name), ok
    arr = np.zeros((len(col), width), np.uint8)
    if ok.any():
        arr[ok] = binary_to_array(col.filter(pl.Series(ok)), width, name)
    return arr, ok


def attestation_columns(df: pl.DataFrame) -> AttestationColumns:
    """The rows of an attestation frame; decoded-field columns present in ``df`` must agree with
    the body for a row to be well formed (a frame of only the three row columns just decodes).

    Example: ``attestation_columns(pl.read_parquet("attestations.parquet")).well_formed.all()``.
    """
    (body, body_ok), (sig, sig_ok), (pk, pk_ok) = (fixed_width_column(df, name, w) for name, w in ROW_COLUMNS.items())
    widths_ok = body_ok & sig_ok & pk_ok
    checked = pl.DataFrame([binary_column("body", body), *(df[c] for c in df.columns if c in FIELD_NAMES)])
    return AttestationColumns(body, sig, pk, widths_ok, widths_ok & fields_match_body(checked))


def read_attestations(path: str | os.PathLike[str], *, fields: bool = False) -> pl.DataFrame:
    """An attestations table; ``fields=True`` also requires the decoded body field columns.

    Example: ``read_attestations("data/attestations.parquet")["body"]``.
    """
    names = list(ATTESTATION_SCHEMA) if fields else list(ROW_COLUMNS)
    return read_table(path, {c: ATTESTATION_SCHEMA[c] for c in names}, MIN_BYTES_PER_ROW)


def check_attestations_file(path: str | os.PathLike[str], error: type[InputError] = InputError) -> int:
    """Schema, binary widths and footer of an attestations file, without decoding it; returns
    its row count. What the metadata declares is checked against the file's size first
    (engine.tables.decode_limits: a compression bomb is ``error``). A page that turns out
    unreadable later is the reader's to report.

    Example: ``check_attestations_file("data/attestations.parquet") == 200_000``.
    """
    path = require_parquet(path, error)
    check_parquet_file(path, error, MIN_BYTES_PER_ROW)
    try:
        schema = pl.read_parquet_schema(path)
    except Exception as exc:  # polars raises several unrelated types for corrupt footers
        raise error(f"{path}: corrupt Parquet file ({first_line(exc)})") from None
    missing = [c for c in ROW_COLUMNS if c not in schema]
    if missing:
        raise error(f"{path}: missing column(s) {', '.join(missing)}")
    present = [c for c in ATTESTATION_SCHEMA if c in schema]  # decoded-field columns are optional
    binary = [c for c in present if c in BINARY_WIDTHS]
    for c in present:
        right = schema[c] == pl.Binary if c in binary else schema[c].is_integer()
        if not right:
            expected = "Binary" if c in binary else "an integer type"
            raise error(f"{path}: column {c} has type {schema[c]}, expected {expected}")
    try:
        rows = int(pl.scan_parquet(path).select(pl.len()).collect().item())  # from the footer
        # A column whose every row has one wrong width is a schema error, not a row problem.
        # The first rows decide whether to look: only then is the whole column read.
        for scope in (pl.scan_parquet(path).head(_WIDTH_PROBE_ROWS), pl.scan_parquet(path)):
            stats = _width_stats(scope, binary)
            wrong = [c for c in binary if stats[c][0] is not None and stats[c][0] == stats[c][1] != BINARY_WIDTHS[c]]
            if not wrong:
                break
    except Exception as exc:  # polars raises several unrelated types for damaged pages
        raise error(f"{path}: corrupt Parquet file ({first_line(exc)})") from None
    if wrong:
        c = wrong[0]
        raise error(f"{path}: column {c}: expected {BINARY_WIDTHS[c]} bytes, every row has {stats[c][0]}")
    return rows


def _width_stats(scope: pl.LazyFrame, columns: list[str]) -> dict[str, tuple[int | None, int | None]]:
    """(min, max) byte length of each binary column over ``scope``."""
    row = scope.select(*[pl.col(c).bin.size().min().alias(f"{c}.min") for c in columns],
                       *[pl.col(c).bin.size().max().alias(f"{c}.max") for c in columns]).collect().row(0, named=True)
    return {c: (row[f"{c}.min"], row[f"{c}.max"]) for c in columns}
