"""Start and stop a real ``bizra serve`` process on loopback for tests: engine.tooling.serve_process,
with a waiting step that fails the test with the server's log tail.

Example::

    rpc, prom = free_port(), free_port()
    proc = start_serve(data, {"RPC_PORT": str(rpc), "PROMETHEUS_PORT": str(prom)}, tmp_path / "serve.log")
    try:
        wait_ready(f"http://127.0.0.1:{rpc}", proc, tmp_path / "serve.log")
    finally:
        stop(proc)
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from engine.tooling import serve_process
from engine.tooling.serve_process import free_port, start_serve, stop
from tests.support import ROOT

__all__ = ["ROOT", "free_port", "log_tail", "start_serve", "stop", "wait_ready"]


def log_tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    """Until GET /readyz is 200, else an AssertionError with the server's last log lines."""
    if not serve_process.wait_ready(url, proc, timeout_s):
        why = f"exited with {proc.returncode}" if proc.poll() is not None else f"not ready within {timeout_s:.0f} s"
        raise AssertionError(f"bizra serve {why}:\n{log_tail(log)}")
