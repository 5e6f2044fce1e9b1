"""A bizra serve subprocess for the gates and tests: started with this interpreter as
``python -m engine.cli`` (no source checkout assumed), waited for, and stopped."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import engine
from engine.tooling import serve_process
from engine.tooling.serve_process import free_port, start_serve, stop, wait_ready


def test_start_serve_runs_this_engine_from_anywhere(tmp_path, monkeypatch) -> None:
    seen = {}
    real_popen = subprocess.Popen

    def fake_popen(cmd, **kw):
        seen.update(cmd=cmd, **kw)
        return real_popen([sys.executable, "-c", "pass"])

    monkeypatch.setattr(serve_process.subprocess, "Popen", fake_popen)
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    start_serve(tmp_path / "data", {"RPC_PORT": "1"}, tmp_path / "log").wait()
    assert seen["cmd"][:4] == [sys.executable, "-m", "engine.cli", "serve"]
    assert "cwd" not in seen  # no checkout to change into
    first = seen["env"]["PYTHONPATH"].split(os.pathsep)
    assert Path(first[0]) == Path(engine.__file__).resolve().parents[1] and first[1] == "/elsewhere"
    assert seen["env"]["RPC_PORT"] == "1"


def test_free_port_is_free() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_wait_ready_gives_up_when_the_process_exits_and_stop_escalates(tmp_path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert wait_ready(f"http://127.0.0.1:{free_port()}", gone, timeout_s=5) is False
    stubborn = subprocess.Popen([sys.executable, "-c",
                                 "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                 "print('up', flush=True); time.sleep(120)"], stdout=subprocess.PIPE)
    assert stubborn.stdout.readline().strip() == b"up"
    stop(stubborn, signal.SIGTERM)  # ignored: after the wait it is killed
    assert stubborn.returncode == -signal.SIGKILL
