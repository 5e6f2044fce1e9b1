"""`bizra submit` / `status` / `cancel` (engine/service/job_client.py) against a real `bizra serve`
process on loopback: a job submitted from the command line runs on the server and writes the
same outputs as `bizra run`; errors are one line with exit code 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.serve_helpers import free_port, start_serve, stop, wait_ready

from engine.synthetic import generate_dataset
from engine.pipeline.job import run_job

TOKEN = "submit-token-7"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("node")
    generate_dataset(root, validators=6, blocks=16, attestations=60, seed=4, threads=2, progress=False)
    generate_dataset(root / "ds", validators=20, blocks=30, attestations=900, seed=5, threads=2, progress=False)
    rpc, log = free_port(), root.parent / "serve.log"
    proc = start_serve(root, {"RPC_PORT": str(rpc), "PROMETHEUS_PORT": str(free_port()), "BIZRA_API_TOKEN": TOKEN,
                         "BIZRA_THREADS": "1"}, log)
    url = f"http://127.0.0.1:{rpc}"
    try:
        wait_ready(url, proc, log)
        yield url, root
    finally:
        stop(proc)


def bizra(*args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "BIZRA_API_TOKEN"}
    if token:
        env["BIZRA_API_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_submit_wait_status_matches_bizra_run(server, tmp_path: Path) -> None:
    url, root = server
    r = bizra("submit", "--server", url, "--data", "ds", "--out", "cli-run", "--chunk-rows", "100", "--wait")
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.split()[2]
    assert "succeeded, 900/900 rows (100%)" in r.stdout and "finalized height" in r.stdout
    out = root / "jobs" / "cli-run"
    assert f"outputs (on the server): {out.resolve()}" in r.stdout

    local = run_job(root / "ds", tmp_path / "local", threads=1, chunk_rows=100, quiet=True)
    for name in ("attestations.parquet", "blocks.parquet", "equivocations.parquet"):
        assert (out / name).read_bytes() == (local.out_dir / name).read_bytes(), name

    s = bizra("status", "--server", url, job_id, "--json", token=None)  # reading needs no token
    job = json.loads(s.stdout)
    assert s.returncode == 0 and job["state"] == "succeeded" and job["out"] == "cli-run"
    assert job["result"]["counts"] == local.counts


def test_submit_errors_are_one_line(server) -> None:
    url, _ = server
    cases = [
        (("submit", "--server", url, "--data", "ds"), None, "HTTP 401", "set BIZRA_API_TOKEN"),
        (("submit", "--server", url, "--data", "../.."), TOKEN, "HTTP 422", "outside the data directory"),
        (("submit", "--server", url, "--data", "ds", "--out", "a/b"), TOKEN, "HTTP 422", "not a plain name"),
        (("status", "--server", url, "nope"), TOKEN, "HTTP 404", "unknown job"),
        (("cancel", "--server", url, "nope"), TOKEN, "HTTP 404", "unknown job"),
        (("status", "--server", f"http://127.0.0.1:{free_port()}", "x"), TOKEN, "cannot reach the server", ""),
        (("submit", "--server", "ftp://x", "--data", "ds"), TOKEN, "expected an http", ""),
    ]
    for args, token, *expected in cases:
        r = bizra(*args, token=token)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (args, r.stderr)
        assert all(e in r.stderr for e in expected), (args, r.stderr)


def test_cancel_a_finished_job_is_a_conflict(server) -> None:
    url, _ = server
    r = bizra("submit", "--server", url, "--data", "ds", "--wait")
    job_id = r.stdout.split()[2]
    c = bizra("cancel", "--server", url, job_id)
    assert c.returncode == 2 and "HTTP 409" in c.stderr and "already succeeded" in c.stderr


def test_only_http_urls_are_followed(tmp_path: Path) -> None:
    """--server accepts http(s) URLs with a host only, for each command, and a server
    that redirects to file: (or anywhere) is an error, never a read of a local file."""
    import http.server
    import threading

    from engine.model.errors import BizraError
    from engine.service.job_client import JobClient, check_server_url

    for command in (("submit", "--data", "ds"), ("status", "x"), ("cancel", "x")):
        for url in ("file:///etc/passwd", "ftp://h/x", "http:///no-host", "gopher://h", "HTTP://user:pw@h:1"):
            r = bizra(command[0], "--server", url, *command[1:], token=TOKEN)
            assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--server" in r.stderr, (url, r.stderr)
    assert check_server_url("HTTPS://example.org:9944/") == "HTTPS://example.org:9944"

    secret = tmp_path / "secret.txt"
    secret.write_text('{"state": "succeeded", "stolen": true}')

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # /api/v1/jobs/x to file:, anything else to another http URL
            self.send_response(302)
            self.send_header("Location", secret.as_uri() if self.path.endswith("/x") else "http://127.0.0.1:1/x")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = JobClient(f"http://127.0.0.1:{httpd.server_port}")
        with pytest.raises(BizraError, match="HTTP 302: .*'file:.*not allowed"):
            client.status("x")
        with pytest.raises(BizraError, match="HTTP 302: redirect to 'http://127.0.0.1:1/x' refused"):
            client.status("y")
    finally:
        httpd.shutdown()
