"""kernels/sha512.py against hashlib: edge lengths around the 112/128-byte padding boundaries,
random lengths and contents, hypothesis, and the R || A || M variant.

Benchmark (not a test): `PYTHONPATH=. .venv/bin/python tests/test_sha512.py` prints ns per
174-byte R || A || M message (2 compressions) for sha512_ram_columns and for a hashlib loop.
"""

import hashlib
import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.sha512 import sha512_columns, sha512_ram_columns, sha512_ram_row, sha512_row
from tests.support.nojit import examples

EDGE_LENGTHS = [0, 1, 55, 111, 112, 113, 127, 128, 129, 239, 240, 241, 255, 256, 257, 1000, 4097]


def _u8(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype=np.uint8).copy()


def _row(data: bytes, pad_before: int = 0, pad_after: int = 0) -> bytes:
    buf = _u8(b"\xaa" * pad_before + data + b"\x55" * pad_after)
    out = np.zeros(64, np.uint8)
    sha512_row(buf, pad_before, pad_before + len(data), out)
    return out.tobytes()


def _columns(msgs: list[bytes]) -> np.ndarray:
    data = _u8(b"".join(msgs)) if msgs else np.zeros(0, np.uint8)
    offsets = np.zeros(len(msgs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(m) for m in msgs])
    out = np.zeros((len(msgs), 64), np.uint8)
    sha512_columns(data, offsets, out)
    return out


def _ram_columns(sigs: list[bytes], pks: list[bytes], msgs: list[bytes]) -> np.ndarray:
    data = _u8(b"".join(msgs)) if msgs else np.zeros(0, np.uint8)
    offsets = np.zeros(len(msgs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(m) for m in msgs])
    s = np.frombuffer(b"".join(sigs), np.uint8).reshape(len(sigs), 64).copy()
    p = np.frombuffer(b"".join(pks), np.uint8).reshape(len(pks), 32).copy()
    out = np.zeros((len(msgs), 64), np.uint8)
    sha512_ram_columns(s, p, data, offsets, out)
    return out


def test_known_answers():
    # FIPS 180-4 examples.
    assert _row(b"abc").hex().startswith("ddaf35a193617aba")
    assert _row(b"").hex().startswith("cf83e1357eefb8bd")
    assert _row(b"abc") == hashlib.sha512(b"abc").digest()


def test_edge_lengths_row():
    rng = np.random.default_rng(1)
    for n in EDGE_LENGTHS:
        for trial in range(3):
            data = rng.bytes(n)
            want = hashlib.sha512(data).digest()
            assert _row(data) == want, n
            assert _row(data, pad_before=7 + trial, pad_after=3) == want, n


def test_all_lengths_0_to_400():
    rng = np.random.default_rng(2)
    msgs = [rng.bytes(n) for n in range(401)]
    out = _columns(msgs)
    for i, m in enumerate(msgs):
        assert out[i].tobytes() == hashlib.sha512(m).digest(), i


def test_columns_random_lengths():
    rng = np.random.default_rng(3)
    lengths = list(EDGE_LENGTHS) + list(rng.integers(0, 3000, 300))
    msgs = [rng.bytes(int(n)) for n in lengths]
    out = _columns(msgs)
    for i, m in enumerate(msgs):
        assert out[i].tobytes() == hashlib.sha512(m).digest(), len(m)


def test_columns_empty_column():
    assert _columns([]).shape == (0, 64)


def test_constant_contents():
    # All-zero and all-0xff inputs exercise the word loads and the carries of the additions.
    for n in EDGE_LENGTHS:
        for fill in (b"\x00", b"\xff", b"\x80"):
            data = fill * n
            assert _row(data) == hashlib.sha512(data).digest(), (n, fill)


def test_ram_row_and_columns_edge_lengths():
    # R || A is 64 bytes, so the block boundaries in M sit at 64, 48 (112 - 64), 175, ...
    rng = np.random.default_rng(4)
    mlens = sorted(set(EDGE_LENGTHS + [47, 48, 49, 63, 64, 65, 110, 175, 176, 177, 191, 192, 193]))
    sigs, pks, msgs = [], [], []
    for n in mlens:
        sig, pk, msg = rng.bytes(64), rng.bytes(32), rng.bytes(n)
        want = hashlib.sha512(sig[:32] + pk + msg).digest()
        out = np.zeros(64, np.uint8)
        buf = _u8(b"\x01\x02\x03" + msg + b"\x04")
        sha512_ram_row(_u8(sig), _u8(pk), buf, 3, 3 + n, out)
        assert out.tobytes() == want, n
        sigs.append(sig)
        pks.append(pk)
        msgs.append(msg)
    out = _ram_columns(sigs, pks, msgs)
    for i in range(len(msgs)):
        assert out[i].tobytes() == hashlib.sha512(sigs[i][:32] + pks[i] + msgs[i]).digest()


def test_ram_columns_random():
    rng = np.random.default_rng(5)
    n = 500
    sigs = [rng.bytes(64) for _ in range(n)]
    pks = [rng.bytes(32) for _ in range(n)]
    msgs = [rng.bytes(int(k)) for k in rng.integers(0, 600, n)]
    out = _ram_columns(sigs, pks, msgs)
    for i in range(n):
        assert out[i].tobytes() == hashlib.sha512(sigs[i][:32] + pks[i] + msgs[i]).digest()


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=700), st.integers(0, 20), st.integers(0, 20))
def test_hypothesis_row(data, before, after):
    assert _row(data, before, after) == hashlib.sha512(data).digest()


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(min_size=64, max_size=64), st.binary(min_size=32, max_size=32), st.binary(max_size=700))
def test_hypothesis_ram(sig, pk, msg):
    out = np.zeros(64, np.uint8)
    sha512_ram_row(_u8(sig), _u8(pk), _u8(msg), 0, len(msg), out)
    assert out.tobytes() == hashlib.sha512(sig[:32] + pk + msg).digest()


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_hypothesis_columns(msgs):
    out = _columns(msgs)
    for i, m in enumerate(msgs):
        assert out[i].tobytes() == hashlib.sha512(m).digest()


def _benchmark(n: int = 100_000, mlen: int = 110, repeats: int = 5) -> None:
    """Print ns per R || A || M message (32 + 32 + mlen bytes) for Numba and for hashlib."""
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 256, (n, 64), dtype=np.uint8)
    pks = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    data = rng.integers(0, 256, n * mlen, dtype=np.uint8)
    offsets = np.arange(0, n * mlen + 1, mlen, dtype=np.int64)
    out = np.empty((n, 64), np.uint8)
    sha512_ram_columns(sigs[:2], pks[:2], data, offsets[:3], out[:2])  # compile / load cache
    best_nb = min(_timed(lambda: sha512_ram_columns(sigs, pks, data, offsets, out)) for _ in range(repeats))
    rows = [sigs[i, :32].tobytes() + pks[i].tobytes() + data[i * mlen : (i + 1) * mlen].tobytes() for i in range(n)]
    sha = hashlib.sha512
    best_hl = min(_timed(lambda: [sha(r).digest() for r in rows]) for _ in range(repeats))
    assert all(out[i].tobytes() == sha(rows[i]).digest() for i in range(0, n, 997))
    print(f"{64 + mlen}-byte R||A||M, {n} rows, best of {repeats}:")
    print(f"  numba sha512_ram_columns: {best_nb / n * 1e9:7.1f} ns/msg")
    print(f"  hashlib loop (prebuilt):  {best_hl / n * 1e9:7.1f} ns/msg")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    _benchmark()
