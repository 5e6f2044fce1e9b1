"""Start and stop a real ``bizra serve`` process on loopback for tests (as test_service_subprocess
does: through ``engine.service.main``, configured by environment, on free ports).

Example::

    rpc, prom = free_port(), free_port()
    proc = start_serve(data, {"RPC_PORT": str(rpc), "PROMETHEUS_PORT": str(prom)}, tmp_path / "serve.log")
    try:
        wait_ready(f"http://127.0.0.1:{rpc}", proc, tmp_path / "serve.log")
    finally:
        stop(proc)
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["ROOT", "free_port", "log_tail", "start_serve", "stop", "wait_ready"]


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(data: Path, env: Mapping[str, str], log: Path) -> subprocess.Popen:
    """``bizra serve --data DATA --host 127.0.0.1`` with ``env`` added, stdout and stderr to ``log``."""
    code = "import sys; from engine.service import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, "--data", str(data), "--host", "127.0.0.1"],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


def log_tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    """Until GET /readyz is 200; bounded, because a cold Numba cache compiles the kernels first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"bizra serve exited with {proc.returncode}:\n{log_tail(log)}"
        try:
            if httpx.get(f"{url}/readyz", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"bizra serve not ready within {timeout_s:.0f} s:\n{log_tail(log)}")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal the process, wait for it, kill it if it does not exit."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
