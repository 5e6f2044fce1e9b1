"""A real ``bizra serve`` process on loopback, started and stopped from Python: the gates'
end-to-end finality check and the tests that need a live server use it.

Example::

    rpc = free_port()
    proc = start_serve(data_dir, {"RPC_PORT": str(rpc), "PROMETHEUS_PORT": str(free_port())}, log_path)
    try:
        assert wait_ready(f"http://127.0.0.1:{rpc}", proc)
    finally:
        stop(proc)
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess  # nosec B404  # starts this interpreter with a fixed argv, never a shell
import sys
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["free_port", "start_serve", "stop", "wait_ready"]

# The folder holding the engine package this process runs: a source checkout or site-packages.
# The server imports the same code (not whatever else PYTHONPATH would find first).
_IMPORT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(data: Path, env: Mapping[str, str], log: Path) -> subprocess.Popen:
    """``bizra serve --data DATA --host 127.0.0.1`` with ``env`` added; stdout and stderr to ``log``.

    Started as ``python -m engine.cli`` with this interpreter, so it works from an installed wheel
    as from a source checkout (no checkout, no console script on PATH needed)."""
    path = os.pathsep.join(p for p in (str(_IMPORT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    with open(log, "wb") as out:
        argv = [sys.executable, "-m", "engine.cli", "serve", "--data", str(data), "--host", "127.0.0.1"]
        return subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": path, **env},  # nosec B603  # fixed argv, no shell
                                stdout=out, stderr=subprocess.STDOUT)


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 180) -> bool:
    """True once GET /readyz answers 200; False if the process exits or time runs out (bounded:
    a cold Numba cache compiles the kernels first)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2, trust_env=False).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal the process, wait for it, kill it if it does not exit."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
