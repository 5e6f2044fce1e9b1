"""Three decompression bombs (tests/support/bombs/, see its README) and helpers to
build variants of honest uploads.

Example::

    raw, media = bomb("value-1gib.parquet")
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import polars as pl

BOMBS = Path(__file__).resolve().parent / "bombs"
MEDIA = {".parquet": "application/vnd.apache.parquet", ".arrows": "application/vnd.apache.arrow.stream"}
NAMES = ("value-1gib.parquet", "value-1gib.arrows", "rows-1m.arrows")


def bomb(name: str) -> tuple[bytes, str]:
    """The bytes of a bomb and its content type."""
    path = BOMBS / name
    return path.read_bytes(), MEDIA[path.suffix]


def parquet_bytes(df: pl.DataFrame, **kw) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf, **kw)
    return buf.getvalue()


def arrow_bytes(df: pl.DataFrame, **kw) -> bytes:
    buf = io.BytesIO()
    df.write_ipc_stream(buf, **kw)
    return buf.getvalue()


def zigzag_varint(value: int, length: int | None = None) -> bytes:
    """Thrift compact's encoding of an integer, padded with redundant continuation groups to
    ``length`` bytes when given (readers accept such padding)."""
    n = (value << 1) ^ (value >> 63)
    out = []
    while True:
        out.append(n & 0x7F)
        n >>= 7
        if not n:
            break
    while length is not None and len(out) < length:
        out.append(0)
    return bytes([b | 0x80 for b in out[:-1]] + [out[-1]])


def make_bombs(out: Path) -> None:
    """Write the three bombs into ``out`` (about 7 GB of memory for a moment)."""
    out.mkdir(parents=True, exist_ok=True)
    one = pl.DataFrame([pl.Series("body", [bytes(1 << 30)], dtype=pl.Binary),
                        pl.Series("signature", [bytes(64)]), pl.Series("public_key", [bytes(32)])])
    (out / "value-1gib.parquet").write_bytes(parquet_bytes(one, compression="zstd", statistics=False))
    (out / "value-1gib.arrows").write_bytes(arrow_bytes(one, compression="zstd"))
    del one
    nulls = pl.DataFrame({c: pl.Series([None] * 1_000_000, dtype=pl.Binary) for c in ("body", "signature", "public_key")})
    (out / "rows-1m.arrows").write_bytes(arrow_bytes(nulls, compression="zstd"))


if __name__ == "__main__":
    make_bombs(Path(sys.argv[1]) if len(sys.argv) > 1 else BOMBS)
