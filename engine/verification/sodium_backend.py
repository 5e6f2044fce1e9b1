"""libsodium (PyNaCl's bundled library) signing and verification over columns.

The rollback backend (``BIZRA_VERIFY_BACKEND=libsodium``) and the benchmark baseline.
libsodium is stricter than the engine's ZIP-215 rule (cofactorless, rejects small-order and
non-canonical points), which is why it is an oracle for honest and randomly corrupted
signatures only (docs/design.md, "Validity rule").

PyNaCl's cffi module does not expose ``crypto_sign_verify_detached`` / ``crypto_sign_detached``,
but its extension exports them, so we ``dlopen`` that same shared object (already loaded and
initialised by PyNaCl) in cffi ABI mode.  cffi releases the GIL around each call, so a
ThreadPoolExecutor over contiguous chunks scales with cores.
"""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING

import cffi
import nacl._sodium
import nacl.bindings
import numpy as np

if TYPE_CHECKING:
    from engine.verification.api import VerifyColumns

__all__ = ["sign_into", "sign_rows", "verify_columns", "verify_columns_plain"]

_ffi = cffi.FFI()
_ffi.cdef(
    """
    int crypto_sign_verify_detached(const unsigned char *sig, const unsigned char *m,
                                    unsigned long long mlen, const unsigned char *pk);
    int crypto_sign_detached(unsigned char *sig, unsigned long long *siglen_p,
                             const unsigned char *m, unsigned long long mlen,
                             const unsigned char *sk);
    """
)
nacl.bindings.sodium_init()
_lib = _ffi.dlopen(nacl._sodium.__file__)


def _chunks(n: int, threads: int) -> list[tuple[int, int]]:
    threads = max(1, min(int(threads), n))
    edges = np.linspace(0, n, threads + 1).astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _verify_range(cols: VerifyColumns, out: np.ndarray, lo: int, hi: int) -> None:
    verify = _lib.crypto_sign_verify_detached
    msg = _ffi.from_buffer(cols.msg_data)
    sig = _ffi.from_buffer(cols.sigs)
    pk = _ffi.from_buffer(cols.pks)
    offsets = cols.msg_offsets.tolist()
    ok = cols.well_formed.tolist()
    for i in range(lo, hi):
        if ok[i]:
            start = offsets[i]
            out[i] = verify(sig + 64 * i, msg + start, offsets[i + 1] - start, pk + 32 * i) == 0


def verify_columns_plain(cols: VerifyColumns) -> np.ndarray:
    """One thread, one libsodium call per row: the benchmark baseline.

    Example: ``verify_columns_plain(to_columns(msgs, sigs, pks))``.
    """
    out = np.zeros(cols.n, dtype=bool)
    _verify_range(cols, out, 0, cols.n)
    return out


def verify_columns(cols: VerifyColumns, *, threads: int = 1, batch: bool = True) -> np.ndarray:
    """bool[n]: libsodium ``crypto_sign_verify_detached`` per row, rows split over threads.

    ``batch`` is accepted for interface symmetry; libsodium has no batch verifier, so every row
    is checked on its own.  Example: ``verify_columns(cols, threads=2)``.
    """
    del batch
    out = np.zeros(cols.n, dtype=bool)
    ranges = _chunks(cols.n, threads)
    if len(ranges) <= 1:
        _verify_range(cols, out, 0, cols.n)
        return out
    with concurrent.futures.ThreadPoolExecutor(len(ranges), thread_name_prefix="bizra-verify") as pool:
        for f in [pool.submit(_verify_range, cols, out, lo, hi) for lo, hi in ranges]:
            f.result()
    return out


def sign_into(msgs: np.ndarray, secret: np.ndarray, key_index: np.ndarray, out: np.ndarray, rows: range) -> None:
    """Sign ``rows`` of fixed-width ``msgs`` (n, w) into ``out`` (n, 64) with the 64-byte libsodium
    secret keys ``secret[key_index[i]]``; the GIL is released around each libsodium call, so
    threads signing disjoint ranges of one ``out`` run in parallel.

    Example: ``sign_into(bodies, sk, key_index, sigs, range(0, len(bodies) // 2))``.
    """
    sign = _lib.crypto_sign_detached
    width = msgs.shape[1]
    msg = _ffi.from_buffer(msgs)
    sk = _ffi.from_buffer(secret)
    sig = _ffi.from_buffer(out)
    idx = key_index[rows.start:rows.stop].tolist()
    for i, k in zip(rows, idx):
        if sign(sig + 64 * i, _ffi.NULL, msg + width * i, width, sk + 64 * k) != 0:
            raise RuntimeError("crypto_sign_detached failed")


def sign_rows(msgs: np.ndarray, secret: np.ndarray, key_index: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """(n, 64) uint8 signatures of fixed-width messages ``msgs`` (n, w) with libsodium.

    ``secret`` holds libsodium 64-byte secret keys (seed || public key), one per distinct
    signer, and ``key_index[i]`` picks row i's key.  Example:
    ``sign_rows(bodies, sk[None, :], np.zeros(len(bodies), np.int64), threads=2)``.
    """
    msgs = np.ascontiguousarray(msgs, dtype=np.uint8)
    secret = np.ascontiguousarray(secret, dtype=np.uint8)
    key_index = np.asarray(key_index, dtype=np.int64)
    n = len(msgs)
    out = np.zeros((n, 64), dtype=np.uint8)
    ranges = _chunks(n, threads)
    if len(ranges) <= 1:
        sign_into(msgs, secret, key_index, out, range(n))
        return out
    with concurrent.futures.ThreadPoolExecutor(len(ranges), thread_name_prefix="bizra-sign") as pool:
        for f in [pool.submit(sign_into, msgs, secret, key_index, out, range(lo, hi)) for lo, hi in ranges]:
            f.result()
    return out
