"""What an Arrow IPC stream declares, read without decompressing anything: each record or
dictionary batch's row count, field nodes and buffers, and for a compressed body every buffer's
uncompressed length (the 8-byte prefix the IPC format puts before each compressed buffer,
which is what a reader allocates). Neither Polars nor pyarrow exposes these before decoding,
so the flatbuffer messages are read here (format/Message.fbs of the Arrow project).

Every read is bounds-checked: a truncated or inconsistent stream is a :class:`MetadataError`,
never an IndexError or an unbounded loop (the bytes come from clients).

Example::

    for batch in read_arrow_stream_meta(raw):
        batch.rows, [b.uncompressed for b in batch.buffers]
"""
from __future__ import annotations

import dataclasses
import struct

from engine.tables.parquet_meta import MetadataError

__all__ = ["ArrowBatch", "ArrowBuffer", "read_arrow_stream_meta"]

_CONTINUATION = 0xFFFFFFFF
# MessageHeader union members (Message.fbs)
SCHEMA, DICTIONARY_BATCH, RECORD_BATCH = 1, 2, 3


@dataclasses.dataclass(frozen=True)
class ArrowBuffer:
    offset: int        # within the message body
    length: int        # bytes in the stream
    uncompressed: int  # bytes once decompressed (== length when the body is not compressed)


@dataclasses.dataclass(frozen=True)
class ArrowBatch:
    """One record batch (``dictionary=False``) or dictionary batch of the stream."""

    message: int                    # its position in the stream, 0 = first message
    dictionary: bool
    rows: int
    node_lengths: tuple[int, ...]   # the length of every field node (nested children included)
    buffers: tuple[ArrowBuffer, ...]
    compressed: bool


class _Table:
    """A flatbuffer table inside ``buf`` (bounds-checked accessors)."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self.vtable = pos - _unpack(buf, "<i", pos)
        self.vsize = _unpack(buf, "<H", self.vtable)

    def _field(self, slot: int) -> int | None:
        at = 4 + 2 * slot
        if at + 2 > self.vsize:
            return None
        rel = _unpack(self.buf, "<H", self.vtable + at)
        return None if rel == 0 else self.pos + rel

    def scalar(self, slot: int, fmt: str, default: int) -> int:
        p = self._field(slot)
        return default if p is None else _unpack(self.buf, fmt, p)

    def table(self, slot: int) -> _Table | None:
        p = self._field(slot)
        return None if p is None else _Table(self.buf, p + _unpack(self.buf, "<I", p))

    def structs(self, slot: int, fmt: str) -> list[tuple[int, ...]]:
        """A vector of fixed-size structs."""
        p = self._field(slot)
        if p is None:
            return []
        start = p + _unpack(self.buf, "<I", p)
        count = _unpack(self.buf, "<I", start)
        size = struct.calcsize(fmt)
        if start + 4 + count * size > len(self.buf):
            raise MetadataError(f"a vector of {count} entries overruns the message metadata")
        return [struct.unpack_from(fmt, self.buf, start + 4 + i * size) for i in range(count)]


def _unpack(buf: bytes, fmt: str, pos: int) -> int:
    if pos < 0:
        raise MetadataError("a flatbuffer offset points before the message")
    try:
        return struct.unpack_from(fmt, buf, pos)[0]
    except struct.error:
        raise MetadataError("a flatbuffer offset points past the message") from None


def _batch(index: int, header: _Table, dictionary: bool, body: memoryview) -> ArrowBatch:
    rows = header.scalar(0, "<q", 0)
    nodes = header.structs(1, "<qq")
    buffers = header.structs(2, "<qq")
    compression = header.table(3)
    what = f"message {index}"
    if rows < 0 or any(n < 0 or nulls < 0 or nulls > n for n, nulls in nodes):
        raise MetadataError(f"{what}: negative or inconsistent lengths")
    out = []
    for offset, length in buffers:
        if offset < 0 or length < 0 or offset + length > len(body):
            raise MetadataError(f"{what}: a buffer at {offset}+{length} lies outside the body of {len(body)} bytes")
        size = length
        if compression is not None and length:
            if length < 8:
                raise MetadataError(f"{what}: a compressed buffer of {length} bytes has no length prefix")
            prefix = struct.unpack_from("<q", body, offset)[0]
            size = length - 8 if prefix == -1 else prefix
            if size < 0:
                raise MetadataError(f"{what}: negative uncompressed length {prefix}")
        out.append(ArrowBuffer(offset, length, size))
    return ArrowBatch(index, dictionary, rows, tuple(n for n, _ in nodes), tuple(out), compression is not None)


def read_arrow_stream_meta(raw: bytes) -> list[ArrowBatch]:
    """Every batch of an Arrow IPC stream, as declared; MetadataError for a damaged stream.

    Example: ``sum(b.rows for b in read_arrow_stream_meta(raw) if not b.dictionary)``.
    """
    view = memoryview(raw)
    pos, index, batches = 0, 0, []
    while True:
        if pos + 4 > len(view):
            if pos == len(view) and index:  # a stream may end without its end-of-stream marker
                return batches
            raise MetadataError(f"stream truncated at byte {pos}")
        size = struct.unpack_from("<I", view, pos)[0]
        pos += 4
        if size == _CONTINUATION:
            if pos + 4 > len(view):
                raise MetadataError(f"stream truncated at byte {pos}")
            size = struct.unpack_from("<i", view, pos)[0]
            pos += 4
        if size == 0:
            return batches
        if size < 0 or size > len(view) - pos:
            raise MetadataError(f"message {index}: metadata of {size} bytes overruns the stream at byte {pos}")
        meta = bytes(view[pos:pos + size])
        pos += size
        message = _Table(meta, _unpack(meta, "<I", 0))
        kind = message.scalar(1, "<B", 0)
        body_len = message.scalar(3, "<q", 0)
        if body_len < 0 or body_len > len(view) - pos:
            raise MetadataError(f"message {index}: a body of {body_len} bytes overruns the stream at byte {pos}")
        body = view[pos:pos + body_len]
        pos += body_len
        header = message.table(2)
        if kind == RECORD_BATCH and header is not None:
            batches.append(_batch(index, header, False, body))
        elif kind == DICTIONARY_BATCH and header is not None:
            data = header.table(1)
            if data is None:
                raise MetadataError(f"message {index}: a dictionary batch without data")
            batches.append(_batch(index, data, True, body))
        elif kind != SCHEMA:
            raise MetadataError(f"message {index}: message type {kind} is not a schema or a batch")
        index += 1
