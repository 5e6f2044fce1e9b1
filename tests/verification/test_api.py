"""The public verify API: column normalisation, malformed rows, configuration from the environment, the package's exports, and the process-wide heap-scratch setting."""
from __future__ import annotations


import numpy as np
import pytest
from nacl.signing import SigningKey

import engine
from engine.verification import sodium_backend
from engine.verification.api import resolve_backend, resolve_batch, resolve_threads, to_columns, verify_many, verify_one


def test_malformed_rows_are_false_never_exceptions() -> None:
    key = SigningKey(b"\x01" * 32)
    pk = bytes(key.verify_key)
    msgs = [b"", b"a", b"hello world" * 20, b"x", b"y", b"z"]
    sigs = [key.sign(m).signature for m in msgs]
    sigs[3] = sigs[3][:63]
    sigs[5] = b""
    pks = [pk, pk, pk, pk, pk[:31], pk]
    out = verify_many(msgs, sigs, pks, threads=2, backend="libsodium")
    assert out.tolist() == [True, True, True, False, False, False]
    cols = to_columns(msgs, sigs, pks)
    assert cols.msg_offsets.tolist() == [0, 0, 1, 221, 222, 223, 224]
    assert cols.well_formed.tolist() == [True, True, True, False, False, True & False]
    assert not verify_one(b"m", b"\0" * 65, pk, backend="libsodium")
    assert verify_many([], [], [], backend="libsodium").shape == (0,)
    wrong_width = verify_many(np.zeros((2, 5), np.uint8), np.zeros((2, 63), np.uint8), np.zeros((2, 32), np.uint8),
                              backend="libsodium")
    assert wrong_width.tolist() == [False, False]


def test_configuration_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_backend("libsodium") is sodium_backend
    monkeypatch.setenv("BIZRA_VERIFY_BACKEND", "libsodium")
    assert resolve_backend() is sodium_backend
    monkeypatch.setenv("BIZRA_VERIFY_BACKEND", "openssl")
    with pytest.raises(ValueError, match="BIZRA_VERIFY_BACKEND"):
        resolve_backend()
    with pytest.raises(ValueError, match="backend: unknown verify backend 'x'"):
        verify_many([b""], [b""], [b""], backend="x")
    monkeypatch.setenv("BIZRA_THREADS", "3")
    assert resolve_threads() == 3 and resolve_threads(1) == 1
    monkeypatch.setenv("BIZRA_THREADS", "many")
    with pytest.raises(ValueError, match="BIZRA_THREADS"):
        resolve_threads()
    monkeypatch.setenv("POI_BATCH_VERIFY", "0")
    assert resolve_batch() is False and resolve_batch(True) is True
    monkeypatch.setenv("POI_BATCH_VERIFY", "maybe")
    with pytest.raises(ValueError, match="POI_BATCH_VERIFY"):
        resolve_batch()


def test_engine_exports() -> None:
    assert engine.verify_one is verify_one and engine.verify_many is verify_many
    assert {"verify_one", "verify_many", "sign_many", "AttestationBody"} <= set(engine.__all__)


def test_ambiguous_array_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="messages"):
        verify_many(np.zeros(110, np.uint8), [b"\0" * 64], [b"\0" * 32], backend="libsodium")
    with pytest.raises(ValueError, match="signatures"):
        verify_many([b"m"], np.zeros(64, np.uint8), [b"\0" * 32], backend="libsodium")




_SPY = r"""
import ctypes, importlib, json, pkgutil, sys
calls = []

class Spy(ctypes.CDLL):
    # records mallopt / malloc_trim instead of calling them; everything else is the real library
    def __getattr__(self, name):
        if name in ("mallopt", "malloc_trim"):
            return lambda *args: calls.append([name, *args]) or 1
        return super().__getattr__(name)

ctypes.CDLL = Spy
import engine
for m in pkgutil.walk_packages(engine.__path__, "engine."):
    importlib.import_module(m.name)
from engine.verification import api
after_import = (list(calls), api.heap_scratch_in_use())
if sys.argv[1] == "use":
    api.use_heap_scratch()
    with api.memory_after_verify():
        pass
print(json.dumps({"after_import": after_import[0], "in_use_after_import": after_import[1], "all": calls,
                  "in_use": api.heap_scratch_in_use()}))
"""


def _spy(mode: str) -> dict:
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _SPY, mode], capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_engine_changes_no_malloc_setting() -> None:
    """Importing every module of the package calls no mallopt: the process belongs to its owner."""
    got = _spy("import")
    assert got["after_import"] == [] and got["all"] == [] and got["in_use_after_import"] is False


def test_the_owner_of_the_process_opts_in_and_memory_after_verify_follows() -> None:
    """The spy is real: use_heap_scratch makes the calls, and memory_after_verify hands the heap
    back and restores it only in a process that opted in."""
    got = _spy("use")
    assert got["after_import"] == [] and got["in_use"] is True
    mmap, trim = -3, -1  # glibc M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    assert got["all"][:2] == [["mallopt", mmap, 256 << 20], ["mallopt", trim, 512 << 20]]
    assert ["malloc_trim", 0] in got["all"]  # memory_after_verify: off (and trimmed), then on again
    assert got["all"][-2:] == [["mallopt", mmap, 256 << 20], ["mallopt", trim, 512 << 20]]


def test_memory_after_verify_is_a_no_op_without_opting_in(monkeypatch) -> None:
    from engine.verification import api, numba_backend

    monkeypatch.setattr(api, "_heap_scratch", False)
    calls = []
    monkeypatch.setattr(numba_backend, "set_heap_scratch", lambda on: calls.append(on))
    with api.memory_after_verify():
        pass
    assert calls == []
    monkeypatch.setattr(api, "_heap_scratch", True)
    with api.memory_after_verify():
        assert calls == [False]
    assert calls == [False, True]


@pytest.mark.parametrize("backend", ["numba", "libsodium"])
def test_ints_are_refused_never_zero_bytes(backend: str) -> None:
    """bytes(64) is 64 zero bytes, and an all-zero key and signature are ZIP-215-valid
    for any message, so verify_one(b"msg", 64, 32) used to answer True."""
    for args, name in (((b"msg", 64, 32), "signatures"), ((b"msg", bytes(64), 32), "public_keys"),
                       ((5, bytes(64), bytes(32)), "messages"), ((b"msg", np.int64(64), bytes(32)), "signatures"),
                       ((b"msg", True, bytes(32)), "signatures"), ((b"msg", "00" * 64, bytes(32)), "signatures")):
        with pytest.raises(TypeError, match=f"{name}: expected bytes, got"):
            verify_one(*args, backend=backend)
    assert verify_one(b"msg", bytes(64), bytes(32), backend="numba") is True  # what the ints used to become
    assert verify_one(b"msg", bytearray(64), memoryview(bytes(32)), backend="numba") is True  # bytes-like is fine
