"""Limits on what a Parquet file or Arrow IPC stream may decode to, checked from its metadata
before anything is decompressed: a compression bomb (a 33 KB upload holding one zstd-compressed
1 GiB value, or 1M rows in 3 KB) is refused by what it declares, never discovered by decoding it.

The limits follow from the size of the bytes and the fixed layout of a row:

- **rows**: at most ``max(MIN_ROWS, size // min_row_bytes)`` (record and dictionary batches
  together for Arrow). An attestation row carries a 64-byte signature of its own that no
  encoding shrinks, so an honest upload needs well over ``MIN_BYTES_PER_ROW`` (48) bytes a row;
  validator and block rows carry a random 32-byte key or hash (``MIN_TABLE_ROW_BYTES``);
- **decoded bytes**: every buffer (an Arrow buffer, a Parquet page) at most the budget of the
  rows it holds, and all of them together at most the budget of every row, where the budget of
  ``n`` rows is ``n * ROW_BYTES + SLACK_BYTES`` and each value also costs ``CELL_BYTES``
  (offsets, views and validity the decoder builds, which a run-length or all-null page does not
  spell out). The widest honest row, every column of an attestation table with 16-byte views,
  decodes to about 600 bytes;
- **nesting**: no field node (Arrow) or column chunk (Parquet) holds more values than its rows,
  and no page more values than its column chunk: attestation, validator and block tables are
  flat, so more values than rows can only be an expansion trick.

A refusal is ``too_large`` (``UploadTooLarge``, HTTP 413, by default) naming the limit;
metadata that does not parse is ``unreadable`` (``UnreadableUpload``, 400). Files on disk are
read through ``mmap``: only the footer and the page headers are touched.

Example::

    check_upload("application/vnd.apache.parquet", raw)        # before pl.read_parquet(raw)
    check_parquet_file(Path("data/attestations.parquet"), InputError)
"""
from __future__ import annotations

import mmap
import os
from pathlib import Path

from engine.model.errors import BizraError, UnreadableUpload, UploadTooLarge
from engine.tables.arrow_meta import read_arrow_stream_meta
from engine.tables.parquet_meta import DICTIONARY_PAGE, MetadataError, read_parquet_meta

__all__ = ["CELL_BYTES", "MIN_BYTES_PER_ROW", "MIN_ROWS", "MIN_TABLE_ROW_BYTES", "ROW_BYTES", "SLACK_BYTES",
           "budget", "check_arrow_stream", "check_parquet", "check_parquet_file", "max_rows"]

MIN_BYTES_PER_ROW = 48      # attestation rows: a 64-byte signature each, with room for overhead
MIN_TABLE_ROW_BYTES = 24    # validator and block rows: a random 32-byte key or hash each
MIN_ROWS = 1024             # small uploads may hold this many rows whatever their size
ROW_BYTES = 1024            # decoded bytes a row may cost (an honest attestation row: about 600)
CELL_BYTES = 16             # charged per value on top of its bytes
SLACK_BYTES = 1 << 16       # schema, dictionaries, padding


def max_rows(size: int, min_row_bytes: int = MIN_BYTES_PER_ROW) -> int:
    """The most rows ``size`` bytes may declare. Example: ``max_rows(48_000) == 1024``."""
    return max(MIN_ROWS, size // min_row_bytes)


def budget(rows: int) -> int:
    """The most bytes ``rows`` rows may decode to. Example: ``budget(1) == 1024 + 65536``."""
    return rows * ROW_BYTES + SLACK_BYTES


class _Checker:
    def __init__(self, what: str, kind: str, size: int, min_row_bytes: int, too_large: type[BizraError]) -> None:
        self.what, self.kind, self.size, self.too_large = what, kind, size, too_large
        self.max_rows = max_rows(size, min_row_bytes)
        self.min_row_bytes = min_row_bytes

    def rows(self, rows: int) -> None:
        if rows > self.max_rows:
            raise self.too_large(
                f"{self.what}: {self.kind} declares {rows:,} rows, more than {self.max_rows:,} for its {self.size:,} "
                f"bytes (limit: one row per {self.min_row_bytes} bytes, at least {MIN_ROWS:,} rows)")

    def part(self, where: str, nbytes: int, values: int, rows: int) -> None:
        limit = budget(rows)
        if nbytes + CELL_BYTES * values > limit:
            raise self.too_large(
                f"{self.what}: {self.kind} {where} would decompress to {nbytes:,} bytes ({values:,} values), over "
                f"the limit of {limit:,} for {rows:,} rows ({ROW_BYTES:,} bytes a row + {SLACK_BYTES:,}; each "
                f"value counts {CELL_BYTES} bytes more)")


def check_parquet(buf, *, what: str = "body", min_row_bytes: int = MIN_BYTES_PER_ROW,
                  too_large: type[BizraError] = UploadTooLarge, unreadable: type[BizraError] = UnreadableUpload,
                  damaged: str = "not a readable Parquet file") -> int:
    """Refuse a Parquet file (bytes or mmap) whose metadata declares more than its size allows;
    returns its row count. Example: ``check_parquet(raw) == 50``."""
    c = _Checker(what, "Parquet file", len(buf), min_row_bytes, too_large)
    try:
        meta = read_parquet_meta(buf)
    except MetadataError as exc:
        raise unreadable(f"{what}: {damaged} ({exc})") from None
    rows = max(meta.rows, sum(meta.row_group_rows))
    c.rows(rows)
    for chunk in meta.chunks:
        group_rows = meta.row_group_rows[chunk.row_group]
        if chunk.values > group_rows:
            raise too_large(f"{what}: Parquet column {chunk.column} declares {chunk.values:,} values in a row group "
                            f"of {group_rows:,} rows (limit: one value a row, tables are flat)")
    c.part("(footer)", sum(ch.uncompressed for ch in meta.chunks), sum(ch.values for ch in meta.chunks), rows)
    in_chunk = [0] * len(meta.chunks)
    total_bytes = total_values = 0
    for page in meta.pages:
        chunk = meta.chunks[page.chunk]
        if page.kind != DICTIONARY_PAGE:
            in_chunk[page.chunk] += page.values
            if in_chunk[page.chunk] > chunk.values:
                raise too_large(f"{what}: Parquet column {chunk.column} holds pages of {in_chunk[page.chunk]:,} values, "
                                f"more than the {chunk.values:,} its footer declares")
        if page.values > meta.row_group_rows[chunk.row_group]:
            raise too_large(f"{what}: Parquet column {chunk.column}: a page at byte {page.offset:,} declares "
                            f"{page.values:,} values, more than the {meta.row_group_rows[chunk.row_group]:,} rows "
                            "of its row group (limit: one value a row)")
        c.part(f"page at byte {page.offset:,} (column {chunk.column})", page.uncompressed, page.values,
               max(page.values, 1))
        total_bytes += page.uncompressed
        total_values += page.values
    c.part("(all pages)", total_bytes, total_values, rows)
    return rows


def check_arrow_stream(raw: bytes, *, what: str = "body", min_row_bytes: int = MIN_BYTES_PER_ROW,
                       too_large: type[BizraError] = UploadTooLarge,
                       unreadable: type[BizraError] = UnreadableUpload) -> int:
    """Refuse an Arrow IPC stream whose metadata declares more than its size allows; returns
    its row count (record batches). Example: ``check_arrow_stream(raw) == 50``."""
    c = _Checker(what, "Arrow IPC stream", len(raw), min_row_bytes, too_large)
    try:
        batches = read_arrow_stream_meta(raw)
    except MetadataError as exc:
        raise unreadable(f"{what}: not a readable Arrow IPC stream ({exc})") from None
    c.rows(sum(b.rows for b in batches))
    total_bytes = total_values = 0
    for b in batches:
        where = f"{'dictionary' if b.dictionary else 'record'} batch (message {b.message})"
        if any(n > b.rows for n in b.node_lengths):
            raise too_large(f"{what}: Arrow IPC stream {where} declares a field of {max(b.node_lengths):,} values "
                            f"in a batch of {b.rows:,} rows (limit: one value a row, tables are flat)")
        for buf in b.buffers:
            c.part(f"{where} buffer at {buf.offset:,}", buf.uncompressed, 0, b.rows)
        nbytes, values = sum(buf.uncompressed for buf in b.buffers), sum(b.node_lengths)
        c.part(where, nbytes, values, b.rows)
        total_bytes += nbytes
        total_values += values
    rows = sum(b.rows for b in batches)
    c.part("(all batches)", total_bytes, total_values, rows)
    return sum(b.rows for b in batches if not b.dictionary)


def check_parquet_file(path: str | os.PathLike[str], error: type[BizraError],
                       min_row_bytes: int = MIN_BYTES_PER_ROW) -> int:
    """check_parquet on a file, read through mmap; ``error("<path>: ...")`` for a refusal or
    damaged metadata. Returns the row count. Example: ``check_parquet_file("a.parquet", InputError)``."""
    path = Path(path)
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return check_parquet(m, what=str(path), min_row_bytes=min_row_bytes, too_large=error, unreadable=error,
                                 damaged="corrupt Parquet file")
    except (OSError, ValueError) as exc:  # ValueError: mmap of an empty file
        if isinstance(exc, BizraError):
            raise
        raise error(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
