"""What a Parquet file declares, read without decompressing anything: the footer (row groups,
column chunks) and every page header, parsed from Thrift's compact protocol here because
neither Polars nor pyarrow exposes page headers, and a page header's ``uncompressed_page_size``
is what a reader allocates before it decompresses the page.

Only the fields the decode limits need are kept (engine.tables.decode_limits). Every read is
bounds-checked: a truncated or inconsistent file is a :class:`MetadataError`, never an
IndexError, a huge loop or deep recursion (the bytes come from clients).

Example::

    meta = read_parquet_meta(raw)            # bytes, or an mmap of a file
    meta.rows, [p.uncompressed for p in meta.pages]
"""
from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator

__all__ = ["ColumnChunk", "MetadataError", "Page", "ParquetMeta", "read_parquet_meta"]

_MAGIC = b"PAR1"
_MAX_DEPTH = 16  # Parquet's own structs nest 4 deep; a deeper footer is not a real one
# Thrift compact protocol type ids
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(13)
# page types (parquet.thrift PageType)
DATA_PAGE, INDEX_PAGE, DICTIONARY_PAGE, DATA_PAGE_V2 = 0, 1, 2, 3


class MetadataError(ValueError):
    """The metadata is truncated or inconsistent; the message says where."""


@dataclasses.dataclass(frozen=True)
class Page:
    """One page header: where it is, its type, what it decompresses to, how many values it holds."""

    chunk: int  # index into ParquetMeta.chunks
    offset: int
    kind: int
    uncompressed: int
    compressed: int
    values: int


@dataclasses.dataclass(frozen=True)
class ColumnChunk:
    """One column of one row group, as the footer declares it."""

    column: str
    row_group: int
    values: int
    uncompressed: int
    compressed: int
    start: int  # the first page: the dictionary page when there is one


@dataclasses.dataclass(frozen=True)
class ParquetMeta:
    rows: int                        # the footer's num_rows
    row_group_rows: tuple[int, ...]  # num_rows of each row group
    chunks: tuple[ColumnChunk, ...]
    pages: tuple[Page, ...]
    footer_bytes: int


class _Compact:
    """A reader of Thrift's compact protocol over ``buf[pos:end]``: structs become
    ``{field id: value}``, lists Python lists, binary ``bytes``; every read is bounded by ``end``."""

    def __init__(self, buf, pos: int, end: int) -> None:
        self.buf, self.pos, self.end = buf, pos, end

    def _byte(self) -> int:
        if self.pos >= self.end:
            raise MetadataError(f"truncated Thrift data at byte {self.pos}")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self._byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise MetadataError(f"varint longer than 10 bytes at byte {self.pos}")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise MetadataError(f"a length of {n} overruns the metadata at byte {self.pos}")
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def value(self, kind: int, depth: int):
        if kind in (_TRUE, _FALSE):  # only inside lists: a field's bool is in its header
            return self._byte() == _TRUE
        if kind == _BYTE:
            return self._take(1)[0]
        if kind in (_I16, _I32, _I64):
            return self.zigzag()
        if kind == _DOUBLE:
            return struct.unpack("<d", self._take(8))[0]
        if kind == _BINARY:
            return self._take(self.varint())
        if kind in (_LIST, _SET):
            head = self._byte()
            size, elem = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            if size > self.end - self.pos:  # every element takes at least one byte
                raise MetadataError(f"a list of {size} elements overruns the metadata at byte {self.pos}")
            return [self.value(elem, depth + 1) for _ in range(size)]
        if kind == _MAP:
            size = self.varint()
            if size == 0:
                return {}
            if 2 * size > self.end - self.pos:
                raise MetadataError(f"a map of {size} entries overruns the metadata at byte {self.pos}")
            types = self._byte()
            return {self._key(self.value(types >> 4, depth + 1)): self.value(types & 0x0F, depth + 1)
                    for _ in range(size)}
        if kind == _STRUCT:
            return self.struct(depth + 1)
        raise MetadataError(f"unknown Thrift type {kind} at byte {self.pos}")

    @staticmethod
    def _key(k):
        return tuple(k) if isinstance(k, list) else (repr(k) if isinstance(k, dict) else k)

    def struct(self, depth: int = 0) -> dict[int, object]:
        if depth > _MAX_DEPTH:
            raise MetadataError(f"Thrift structs nested deeper than {_MAX_DEPTH} at byte {self.pos}")
        fields: dict[int, object] = {}
        last = 0
        while True:
            head = self._byte()
            kind = head & 0x0F
            if kind == _STOP:
                return fields
            delta = head >> 4
            fid = last + delta if delta else self.zigzag()
            fields[fid] = (kind == _TRUE) if kind in (_TRUE, _FALSE) else self.value(kind, depth)
            last = fid


def _int(fields: dict, fid: int, what: str, default: int | None = None) -> int:
    v = fields.get(fid, default)
    if not isinstance(v, int) or isinstance(v, bool):
        raise MetadataError(f"{what}: missing or not an integer")
    return v


def _column_name(meta: dict) -> str:
    path = meta.get(3)
    if isinstance(path, list) and all(isinstance(p, bytes) for p in path):
        return ".".join(p.decode("utf-8", "replace") for p in path)[:120]
    return "?"


def _pages(buf, index: int, chunk: ColumnChunk, limit: int) -> Iterator[Page]:
    """The page headers of one column chunk, from its first page to its declared end."""
    pos, end = chunk.start, chunk.start + chunk.compressed
    if not 4 <= pos <= end <= limit:
        raise MetadataError(f"column {chunk.column}: pages at bytes {pos}..{end} lie outside the data")
    while pos < end:
        reader = _Compact(buf, pos, end)
        header = reader.struct()
        kind = _int(header, 1, f"column {chunk.column}: page type")
        uncompressed = _int(header, 2, f"column {chunk.column}: uncompressed_page_size")
        compressed = _int(header, 3, f"column {chunk.column}: compressed_page_size")
        if uncompressed < 0 or compressed < 0:
            raise MetadataError(f"column {chunk.column}: negative page size at byte {pos}")
        sub = {DATA_PAGE: 5, DICTIONARY_PAGE: 7, DATA_PAGE_V2: 8}.get(kind)
        values = 0
        if sub is not None:
            inner = header.get(sub)
            if not isinstance(inner, dict):
                raise MetadataError(f"column {chunk.column}: page at byte {pos} lacks its header")
            values = _int(inner, 1, f"column {chunk.column}: page num_values")
            if values < 0:
                raise MetadataError(f"column {chunk.column}: negative num_values at byte {pos}")
        yield Page(index, pos, kind, uncompressed, compressed, values)
        pos = reader.pos + compressed
    if pos != end:
        raise MetadataError(f"column {chunk.column}: the last page overruns the column chunk")


def read_parquet_meta(buf) -> ParquetMeta:
    """Footer and page headers of a Parquet file held in ``buf`` (bytes, memoryview or mmap).

    Example: ``read_parquet_meta(open("a.parquet", "rb").read()).rows``.
    """
    size = len(buf)
    if size < 12 or bytes(buf[:4]) != _MAGIC or bytes(buf[size - 4:]) != _MAGIC:
        raise MetadataError("not a Parquet file (magic bytes missing)")
    footer_len = struct.unpack("<I", bytes(buf[size - 8:size - 4]))[0]
    footer_start = size - 8 - footer_len
    if footer_start < 4:
        raise MetadataError(f"footer length {footer_len} overruns the file")
    fm = _Compact(buf, footer_start, size - 8).struct()
    rows = _int(fm, 3, "num_rows")
    groups = fm.get(4, [])
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise MetadataError("row_groups: not a list of row groups")
    chunks, group_rows = [], []
    for gi, group in enumerate(groups):
        group_rows.append(_int(group, 3, f"row group {gi}: num_rows"))
        columns = group.get(1, [])
        if not isinstance(columns, list) or not all(isinstance(c, dict) for c in columns):
            raise MetadataError(f"row group {gi}: columns is not a list")
        for column in columns:
            if 1 in column:
                raise MetadataError(f"row group {gi}: a column chunk refers to another file")
            meta = column.get(3)
            if not isinstance(meta, dict):
                raise MetadataError(f"row group {gi}: a column chunk has no metadata")
            name = _column_name(meta)
            what = f"column {name} (row group {gi})"
            data_at = _int(meta, 9, f"{what}: data_page_offset")
            dict_at = meta.get(11)
            start = dict_at if isinstance(dict_at, int) and 4 <= dict_at < data_at else data_at
            chunk = ColumnChunk(name, gi, _int(meta, 5, f"{what}: num_values"),
                                _int(meta, 6, f"{what}: total_uncompressed_size"),
                                _int(meta, 7, f"{what}: total_compressed_size"), start)
            if min(chunk.values, chunk.uncompressed, chunk.compressed) < 0:
                raise MetadataError(f"{what}: negative size or count")
            chunks.append(chunk)
    pages = tuple(p for i, c in enumerate(chunks) for p in _pages(buf, i, c, footer_start))
    return ParquetMeta(rows, tuple(group_rows), tuple(chunks), pages, footer_len)
