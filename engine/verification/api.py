"""Public signature verification API and backend dispatch (docs/design.md, "Validity rule"
and "Configuration").

Inputs of any accepted shape are normalized once by :func:`to_columns` into flat arrays;
backends only ever see :class:`VerifyColumns`.  A backend is a module exposing
``verify_columns(cols, *, threads, batch) -> bool[n]``:

    "libsodium" -> engine.verification.sodium_backend   (rollback switch, benchmark baseline)
    "numba"     -> engine.verification.numba_backend    (ZIP-215 batch verifier; loaded lazily by name)

Configuration (read per call, so a running process can be switched by its environment):
``BIZRA_VERIFY_BACKEND`` (default "numba" when engine.verification.numba_backend is importable, else
"libsodium"), ``POI_BATCH_VERIFY`` (1 = batch verifier, 0 = one-by-one; default 1),
``BIZRA_THREADS`` (default: the usable CPUs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import os
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "BACKENDS",
    "backend_name",
    "backend_rates",
    "heap_scratch_in_use",
    "memory_after_verify",
    "VerifyColumns",
    "resolve_backend",
    "resolve_batch",
    "resolve_threads",
    "usable_cpus",
    "to_columns",
    "use_heap_scratch",
    "verify_many",
    "verify_one",
    "warm_up",
]

BACKENDS: dict[str, str] = {"libsodium": "engine.verification.sodium_backend", "numba": "engine.verification.numba_backend"}
SIGNATURE_SIZE = 64
PUBLIC_KEY_SIZE = 32


@dataclasses.dataclass(frozen=True)
class VerifyColumns:
    """Verification input in columnar form.

    ``msg_data`` holds all messages back to back; message i is
    ``msg_data[msg_offsets[i]:msg_offsets[i + 1]]``.  Rows whose signature is not 64 bytes or
    whose key is not 32 bytes have ``well_formed[i] = False`` and zeros in ``sigs``/``pks``.
    """

    msg_data: np.ndarray  # uint8[total]
    msg_offsets: np.ndarray  # int64[n + 1]
    sigs: np.ndarray  # uint8[n, 64]
    pks: np.ndarray  # uint8[n, 32]
    well_formed: np.ndarray  # bool[n]

    @property
    def n(self) -> int:
        return len(self.well_formed)


def _as_bytes(value: Any, name: str) -> bytes:
    """``value`` as bytes; an int (``bytes(64)`` would be 64 zero bytes, and an all-zero key and
    signature verify under ZIP-215) or a str is a TypeError, like any other non-bytes."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (int, np.integer, str)):
        raise TypeError(f"{name}: expected bytes, got {type(value).__name__}")
    return bytes(value)


def _fixed_width(values: Any, width: int, n: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(n, width) uint8 and a bool[n] saying which rows had exactly ``width`` bytes."""
    if isinstance(values, np.ndarray) and values.dtype == np.uint8 and values.ndim == 2:
        if len(values) != n:
            raise ValueError(f"{name}: {len(values)} rows, expected {n}")
        if values.shape[1] == width:
            return np.ascontiguousarray(values), np.ones(n, dtype=bool)
        return np.zeros((n, width), np.uint8), np.zeros(n, dtype=bool)
    if isinstance(values, np.ndarray) and values.dtype != object:
        raise ValueError(f"{name}: expected an (n, {width}) uint8 array or a list of bytes, got {values.dtype}{values.shape}")
    items = [_as_bytes(v, name) for v in values]
    if len(items) != n:
        raise ValueError(f"{name}: {len(items)} rows, expected {n}")
    lengths = np.fromiter((len(v) for v in items), dtype=np.int64, count=n)
    ok = lengths == width
    if ok.all():
        return np.frombuffer(b"".join(items), np.uint8).reshape(n, width).copy(), ok
    out = np.zeros((n, width), np.uint8)
    good = [v for v, g in zip(items, ok) if g]
    if good:
        out[ok] = np.frombuffer(b"".join(good), np.uint8).reshape(len(good), width)
    return out, ok


def to_columns(messages: Any, signatures: Any, public_keys: Any) -> VerifyColumns:
    """Normalize lists of bytes or (n, len) uint8 arrays into :class:`VerifyColumns`.

    Messages may be a list of variable-length bytes.  Example:
    ``to_columns([b"hi"], [sig], [pk]).msg_offsets.tolist() == [0, 2]``.
    """
    if isinstance(messages, np.ndarray) and messages.dtype == np.uint8 and messages.ndim == 2:
        n, width = messages.shape
        msg_data = np.ascontiguousarray(messages).reshape(-1)
        offsets = np.arange(n + 1, dtype=np.int64) * width
    elif isinstance(messages, np.ndarray) and messages.dtype != object:
        # Iterating a 1-D array would yield integers, and bytes(5) is five zero bytes.
        raise ValueError(f"messages: expected an (n, len) uint8 array or a list of bytes, got {messages.dtype}{messages.shape}")
    else:
        items = [_as_bytes(m, "messages") for m in messages]
        n = len(items)
        lengths = np.fromiter((len(m) for m in items), dtype=np.int64, count=n)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        msg_data = np.frombuffer(b"".join(items), np.uint8)
    sigs, sig_ok = _fixed_width(signatures, SIGNATURE_SIZE, n, "signatures")
    pks, pk_ok = _fixed_width(public_keys, PUBLIC_KEY_SIZE, n, "public_keys")
    return VerifyColumns(msg_data, offsets, sigs, pks, sig_ok & pk_ok)


def resolve_backend(backend: str | None = None) -> ModuleType:
    """The backend module for a name, or for BIZRA_VERIFY_BACKEND when ``backend`` is None.

    Example: ``resolve_backend("libsodium").__name__ == "engine.verification.sodium_backend"``.
    """
    if backend is None:
        backend = os.environ.get("BIZRA_VERIFY_BACKEND", "").strip().lower() or None
        source = "BIZRA_VERIFY_BACKEND"
    else:
        source = "backend"
    if backend is None:
        backend = "numba" if importlib.util.find_spec(BACKENDS["numba"]) is not None else "libsodium"
    if backend not in BACKENDS:
        raise ValueError(f"{source}: unknown verify backend {backend!r} (expected one of {', '.join(BACKENDS)})")
    return importlib.import_module(BACKENDS[backend])


_heap_scratch = False  # set by use_heap_scratch: this process asked for it


def use_heap_scratch() -> None:
    """Let the numba backend keep its multi-megabyte scratch arrays on the heap, process-wide.

    glibc serves large allocations with fresh mmaps whose first touch page-faults, and page
    faults of one process serialize on its memory-map lock: two verify threads measured 1.27x one
    thread in batch mode, 1.95x with the scratch on the heap (glibc ``mallopt`` thresholds, see
    engine.verification.numba_backend.set_heap_scratch). That is a setting of the whole process,
    so importing bizra never makes it: the code that owns the process does (the ``bizra``
    command line, ``bizra serve``, a batch job, the benchmarks). Idempotent; a no-op where the
    numba backend cannot load or the C library has no mallopt.
    """
    global _heap_scratch
    if importlib.util.find_spec(BACKENDS["numba"]) is None:
        return
    importlib.import_module(BACKENDS["numba"]).set_heap_scratch(True)
    _heap_scratch = True


def heap_scratch_in_use() -> bool:
    """Whether use_heap_scratch was called in this process (and not undone)."""
    return _heap_scratch


@contextlib.contextmanager
def memory_after_verify() -> Iterator[None]:
    """For memory-heavy work between verify calls (a job's BlockGraph stage and output): when the
    process uses heap scratch (use_heap_scratch), it is handed back to the OS for the duration,
    then restored for the next verify call; otherwise nothing changes."""
    if not _heap_scratch:
        yield
        return
    numba_backend = importlib.import_module(BACKENDS["numba"])
    numba_backend.set_heap_scratch(False)
    try:
        yield
    finally:
        numba_backend.set_heap_scratch(True)


def backend_name(backend: str | None = None) -> str:
    """The name (a BACKENDS key) of the backend ``resolve_backend`` picks: ``"numba"`` or ``"libsodium"``."""
    module = resolve_backend(backend).__name__
    return next(name for name, mod in BACKENDS.items() if mod == module)


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one, else the CPU count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolve_threads(threads: int | None = None) -> int:
    """``threads``, else BIZRA_THREADS, else the CPUs this process may run on (its affinity mask,
    which taskset and cpusets narrow; a CFS quota in a container does not, hence BIZRA_THREADS
    in the Kubernetes ConfigMap).  Example: ``resolve_threads(2) == 2``."""
    if threads is None:
        raw = os.environ.get("BIZRA_THREADS", "").strip()
        if raw:
            try:
                threads = int(raw)
            except ValueError:
                raise ValueError(f"BIZRA_THREADS: not an integer: {raw!r}") from None
            source = "BIZRA_THREADS"
        else:
            threads = usable_cpus()
            source = "the CPU count"
    else:
        source = "threads"
    if threads < 1:
        raise ValueError(f"{source}: must be >= 1, got {threads}")
    return int(threads)


def resolve_batch(batch: bool | None = None) -> bool:
    """``batch``, else POI_BATCH_VERIFY ("1" batch, "0" one-by-one; default 1)."""
    if batch is not None:
        return bool(batch)
    raw = os.environ.get("POI_BATCH_VERIFY", "1").strip().lower()
    if raw in ("1", "true", "yes", "on", ""):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"POI_BATCH_VERIFY: expected 0 or 1, got {raw!r}")


def verify_many(
    messages: Any,
    signatures: Any,
    public_keys: Any,
    *,
    threads: int | None = None,
    backend: str | None = None,
    batch: bool | None = None,
) -> np.ndarray:
    """bool[n]: whether signature i verifies message i under public key i.

    Malformed rows (signature not 64 bytes, key not 32 bytes) are False, never an exception.
    Example: ``verify_many(bodies, sigs, pks, threads=2, backend="libsodium")``.
    """
    cols = to_columns(messages, signatures, public_keys)
    module = resolve_backend(backend)
    if cols.n == 0:
        return np.zeros(0, dtype=bool)
    out = module.verify_columns(cols, threads=resolve_threads(threads), batch=resolve_batch(batch))
    return np.asarray(out, dtype=bool)


def backend_rates(messages: Any, signatures: Any, public_keys: Any, *,
                  threads: int = 1) -> dict[str, float]:
    """Rows/s of each backend (BACKENDS) on the same rows, measured back to back in this
    process, `threads` each; the verdicts must agree wherever libsodium accepts (its accept
    implies ZIP-215's). Example: ``backend_rates(bodies, sigs, pks)["numba"]``."""
    cols = to_columns(messages, signatures, public_keys)
    rates, verdicts = {}, {}
    for name in BACKENDS:
        module = resolve_backend(name)
        t = time.perf_counter()
        verdicts[name] = module.verify_columns(cols, threads=threads, batch=True)
        rates[name] = cols.n / max(time.perf_counter() - t, 1e-9)
    if (verdicts["libsodium"] & ~verdicts["numba"]).any():
        raise AssertionError("numba rejected a signature libsodium accepts")
    return rates


def warm_up(backend: str | None = None) -> float:
    """Compile (or load from the cache) the backend's kernels now; returns the seconds spent.

    Jobs and the service call it first, so one-time Numba compilation is reported apart
    from throughput. Example: ``warm_up("numba") >= 0.0``.
    """
    import nacl.signing

    t = time.perf_counter()
    key = nacl.signing.SigningKey(bytes(32))  # a fixed throwaway key: nothing secret here
    msgs = [b"bizra warm-up %d" % i for i in range(2)]
    sigs = [key.sign(m).signature for m in msgs]
    pks = [bytes(key.verify_key)] * 2
    for batch in (True, False):
        verify_many(msgs, sigs, pks, threads=1, backend=backend, batch=batch)
    return time.perf_counter() - t


def verify_one(message: bytes, signature: bytes, public_key: bytes, *, backend: str | None = None) -> bool:
    """Whether ``signature`` verifies ``message`` under ``public_key`` (each bytes-like; an int
    is a TypeError, never a run of zero bytes).

    Example: ``verify_one(body, sig, pk, backend="libsodium")``.
    """
    cols = to_columns([message], [signature], [public_key])
    return bool(resolve_backend(backend).verify_columns(cols, threads=1, batch=False)[0])
