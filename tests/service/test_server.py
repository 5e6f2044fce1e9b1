"""A real ``bizra serve`` process on loopback: startup, a few endpoints, the metrics port, shutdown.

The command is ``python -m engine.cli serve`` (engine.tooling.serve_process), on free
ports, with its configuration in the environment exactly as the runbook sets it.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from tests.support.serve_helpers import ROOT, free_port, start_serve, stop, wait_ready

from engine.synthetic import generate_dataset
from engine.service.metrics import METRIC_NAMES

TOKEN = "subprocess-token-42"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("served")
    generate_dataset(out, validators=6, blocks=16, attestations=120, seed=9, threads=2, progress=False)
    return out


def test_serve_process_end_to_end(data: Path, tmp_path: Path) -> None:
    rpc, prom = free_port(), free_port()
    log = tmp_path / "serve.log"
    proc = start_serve(data, {"RPC_PORT": str(rpc), "PROMETHEUS_PORT": str(prom), "METRICS_ENABLED": "1",
                         "BIZRA_API_TOKEN": TOKEN, "BIZRA_THREADS": "2"}, log)
    url = f"http://127.0.0.1:{rpc}"
    try:
        wait_ready(url, proc, log)
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.get("/healthz").json() == {"status": "ok"}
            assert c.post("/api/v1/poi/generate", json={"evidence": "e"}).status_code == 401
            g = c.post("/api/v1/poi/generate", json={"evidence": "e2e"}, headers={"Authorization": f"Bearer {TOKEN}"})
            assert g.status_code == 200, g.text
            g = g.json()
            v = c.post("/api/v1/poi/verify", json={"body_hex": g["body_hex"], "signature": g["signature"],
                                                   "public_key": g["public_key"]}).json()
            assert v["valid"] is True
            bad_sig = g["signature"][:-2] + ("00" if g["signature"][-2:] != "00" else "01")
            v = c.post("/api/v1/poi/verify", json={"body_hex": g["body_hex"], "signature": bad_sig,
                                                   "public_key": g["public_key"]}).json()
            assert v["valid"] is False
            head = c.get("/api/v1/head").json()
            f = c.post("/api/v1/finality", json={"block_hash": head["finalized_tip"]}).json()
            assert f["finalized"] is True
            assert c.post("/api/v1/finality", json={"block_hash": "0x" + "77" * 32}).status_code == 404
            assert "/api/v1/poi/verify_batch" in c.get("/openapi.json").json()["paths"]
        scrape = httpx.get(f"http://127.0.0.1:{prom}/metrics", timeout=10).text
        for name in METRIC_NAMES:
            assert f"\n{name}" in scrape, name
        values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in scrape.splitlines()
                  if line and not line.startswith("#") and "{" not in line}
        assert values["bizra_poi_generate_total"] == 1
        assert values["bizra_poi_verify_total"] == 2 and values["bizra_poi_verify_fail_total"] == 1
        assert values["bizra_finality_checks_total"] == 2
        assert values["bizra_poi_verify_batch_size_count"] >= 1
        assert "process_resident_memory_bytes" in values
        smoke = subprocess.run(["bash", str(ROOT / "scripts" / "smoke.sh"), url, f"http://127.0.0.1:{prom}/metrics"],
                               env={**os.environ, "BIZRA_API_TOKEN": TOKEN}, capture_output=True, text=True, timeout=120, check=False)
        assert smoke.returncode == 0 and "verify corrupted -> invalid" in smoke.stdout, smoke.stdout + smoke.stderr
    finally:
        stop(proc)
    text = log.read_text()
    # uvicorn re-raises the SIGTERM it handled after a graceful shutdown, so -SIGTERM is clean too
    assert proc.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in text, text
    seed = (data / "node_key.secret").read_bytes()[12:].hex()
    assert f"node public key {g['public_key']}" in text and seed not in text


def test_serve_refuses_bad_configuration(data: Path, tmp_path: Path) -> None:
    log = tmp_path / "bad.log"
    proc = start_serve(data, {"RPC_PORT": "not-a-port"}, log)
    assert proc.wait(timeout=60) == 2
    lines = log.read_text().strip().splitlines()
    assert lines == ["bizra serve: error: RPC_PORT: not an integer: 'not-a-port'"]
    proc = start_serve(tmp_path / "missing", {"RPC_PORT": str(free_port())}, log)
    assert proc.wait(timeout=60) == 2 and "no such data directory" in log.read_text()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc = start_serve(data, {"RPC_PORT": str(busy.getsockname()[1])}, log)
        assert proc.wait(timeout=60) == 2 and "RPC_PORT: cannot listen on 127.0.0.1" in log.read_text()


def _vm_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def test_hostile_uploads_methods_and_block_writes_on_a_real_server(data: Path, tmp_path: Path) -> None:
    """The bombs (each < 64 KB) get 413 naming the limit while the server's peak RSS grows by
    less than 100 MB (before: 200 and +6.1 GB, +0.4 to 0.9 GB); 1,000 invented methods and paths
    leave the series of /metrics unchanged (before: +2,000); /blocks without the token is 401."""
    from tests.support.upload_bombs import NAMES, bomb

    rpc, prom = free_port(), free_port()
    log = tmp_path / "serve.log"
    proc = start_serve(data, {"RPC_PORT": str(rpc), "PROMETHEUS_PORT": str(prom), "METRICS_ENABLED": "1",
                              "BIZRA_API_TOKEN": TOKEN, "BIZRA_THREADS": "2"}, log)
    url = f"http://127.0.0.1:{rpc}"

    def series() -> int:
        text = httpx.get(f"http://127.0.0.1:{prom}/metrics", timeout=10).text
        return sum(1 for line in text.splitlines() if line and not line.startswith("#"))

    try:
        wait_ready(url, proc, log)
        with httpx.Client(base_url=url, timeout=120) as c:
            honest = (data / "attestations.parquet").read_bytes()  # pays the readers' one-time costs first
            for path in ("/api/v1/poi/verify_batch", "/api/v1/attestations"):
                r = c.post(path, content=honest, headers={"content-type": "application/vnd.apache.parquet"})
                assert r.status_code == 200, r.text
            for name in NAMES:
                raw, media = bomb(name)
                assert len(raw) < 64 * 1024
                for path in ("/api/v1/poi/verify_batch", "/api/v1/attestations"):
                    peak = _vm_hwm_mb(proc.pid)
                    r = c.post(path, content=raw, headers={"content-type": media})
                    assert r.status_code == 413 and "limit" in r.json()["detail"], (name, path, r.text)
                    grown = _vm_hwm_mb(proc.pid) - peak
                    assert grown < 100, f"{name} to {path}: peak RSS grew by {grown:.0f} MB"

            c.request("X0", "/invented/0")  # the "other" series exist from the first unknown request on
            before = series()
            for i in range(1, 1001):
                c.request(f"X{i}", f"/invented/{i}")
            assert series() == before

            block = {"blocks": [{"hash": "0x" + "ab" * 32, "parent": "0x" + "cd" * 32}]}
            r = c.post("/api/v1/blocks", json=block)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
            assert c.post("/api/v1/blocks", json=block, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    finally:
        stop(proc)
