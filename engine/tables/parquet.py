"""Parquet files of a dataset: the magic-byte sniff, the checked read, the atomic write.

Every reader of a dataset file goes through :func:`require_parquet` first, so a missing file, a
directory, a text file or a truncated download is one ``InputError`` naming the path, never a
Polars traceback. :func:`read_table` then checks what the file declares against its size
before decoding it (engine.tables.decode_limits: a compression bomb is one ``InputError``) and
the columns a table must have (names, dtypes, no nulls, fixed binary widths). Writers use :func:`write_parquet_atomic`: a temp name beside the
target, renamed into place only on success.

Example::

    df = read_table("blocks.parquet", BLOCKS_SCHEMA)
    write_parquet_atomic(df, "copy.parquet")
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl
from polars.io.plugins import register_io_source

from engine.model.attestation import BINARY_WIDTHS
from engine.model.errors import InputError, OutputError, first_line
from engine.tables.decode_limits import MIN_TABLE_ROW_BYTES, check_parquet_file

__all__ = ["BLOCKS_SCHEMA", "VALIDATORS_SCHEMA", "WIDTHS", "os_reason", "read_table", "require_parquet",
           "sink_frames_atomic", "write_parquet_atomic"]

VALIDATORS_SCHEMA: dict[str, pl.DataType] = {"index": pl.UInt32(), "public_key": pl.Binary(), "weight": pl.Int64()}
BLOCKS_SCHEMA: dict[str, pl.DataType] = {"hash": pl.Binary(), "parent": pl.Binary(), "height": pl.UInt64()}
# Fixed byte width of every binary column a dataset table may hold.
WIDTHS: dict[str, int] = {**BINARY_WIDTHS, "hash": 32, "parent": 32}
_MAGIC = b"PAR1"
_MIN_SIZE = 12  # header magic + footer length + footer magic


def require_parquet(path: str | os.PathLike[str], error: type[InputError] = InputError) -> Path:
    """``path`` if it is a readable file that starts and ends with Parquet's magic bytes, else
    ``error("<path>: <problem>")``. Only 8 bytes are read: the footer is checked by Polars later.

    Example: ``require_parquet("data/attestations.parquet")``.
    """
    path = Path(path)
    if not path.exists():
        raise error(f"{path}: no such file")
    if path.is_dir():
        raise error(f"{path}: is a directory, expected a Parquet file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(max(size - 4, 0))
            tail = f.read(4)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    if head != _MAGIC or tail != _MAGIC or size < _MIN_SIZE:
        raise error(f"{path}: not a Parquet file (corrupt or truncated)")
    return path


def write_parquet_atomic(df: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` to a temp name next to ``path`` and rename it into place on success; a
    failed write (a full disk, a read-only filesystem) leaves no temp file and is one
    ``OutputError("<path>: <reason>")``.

    Example: ``write_parquet_atomic(df, "out/verified.parquet")``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        df.write_parquet(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, (OSError, pl.exceptions.PolarsError)):
            raise OutputError(f"{path}: cannot write: {os_reason(exc)}") from None
        raise
    return path


def sink_frames_atomic(frames: Iterable[pl.DataFrame], schema: pl.Schema, path: str | os.PathLike[str], *,
                       row_group_size: int) -> Path:
    """Stream ``frames`` (all of ``schema``) into one Parquet file, atomically as
    :func:`write_parquet_atomic`, holding about one row group at a time rather than the table.

    Polars' streaming sink cuts row groups at every ``row_group_size`` rows whatever the frame
    sizes, so the file's bytes depend on the rows only, not on how they were chunked; and with
    the size a ``write_parquet`` of the whole table would have chosen, the bytes are that
    file's. An exception raised by ``frames`` comes out as itself, not wrapped by Polars.
    Example: ``sink_frames_atomic(chunks(), frame.schema, "data/attestations.parquet", row_group_size=100_000)``.
    """
    path = Path(path)
    failed: list[BaseException] = []

    def source(with_columns: list[str] | None, predicate: object, n_rows: int | None,
               batch_size: int | None) -> Iterator[pl.DataFrame]:
        try:
            for frame in frames:
                yield frame if with_columns is None else frame.select(with_columns)
        except BaseException as exc:
            failed.append(exc)
            raise

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        register_io_source(source, schema=schema).sink_parquet(tmp, row_group_size=row_group_size)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if failed:
            raise failed[0] from None
        if isinstance(exc, (OSError, pl.exceptions.PolarsError)):
            raise OutputError(f"{path}: cannot write: {os_reason(exc)}") from None
        raise
    return path


def os_reason(exc: BaseException) -> str:
    """The OS's words for a failed write: ``strerror`` of an OSError, else the first line of a
    Polars error (which wraps the OS error in its text). Example: ``"No space left on device"``."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    code = re.search(r"\(os error (\d+)\)", str(exc))
    return os.strerror(int(code.group(1))) if code else first_line(exc)


def read_table(path: str | os.PathLike[str], required: dict[str, pl.DataType],
               min_row_bytes: int = MIN_TABLE_ROW_BYTES) -> pl.DataFrame:
    """Read a Parquet file, checking first that its metadata declares no more rows and bytes
    than its size allows (``min_row_bytes``: the fewest bytes an honest row takes), then that
    ``required`` columns exist with their dtypes and that binary columns have their fixed
    widths; InputError("<path>: <problem>") otherwise.

    Example: ``read_table("blocks.parquet", BLOCKS_SCHEMA)``.
    """
    path = require_parquet(path)
    check_parquet_file(path, InputError, min_row_bytes)
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # polars raises several unrelated types for corrupt files
        raise InputError(f"{path}: corrupt Parquet file ({first_line(exc)})") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    for name, dtype in required.items():
        if df.schema[name] != dtype:
            raise InputError(f"{path}: column {name} has type {df.schema[name]}, expected {dtype}")
        if df[name].null_count():
            raise InputError(f"{path}: column {name} has {df[name].null_count()} null values")
        if dtype == pl.Binary and name in WIDTHS:
            sizes = df[name].bin.size()
            bad = sizes != WIDTHS[name]
            if bad.any():
                row = int(bad.arg_max())
                raise InputError(
                    f"{path}: column {name}: expected {WIDTHS[name]} bytes, got {sizes[row]} "
                    f"(row {row}, {int(bad.sum())} bad rows)"
                )
    return df
