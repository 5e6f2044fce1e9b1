"""``bizra submit`` / ``bizra status`` / ``bizra cancel``: the batch-job API of a running
``bizra serve`` (engine.service.jobs_runner behind POST /api/v1/jobs) from the command line.

Paths are the server's: ``--data`` is a dataset directory relative to the server's data
directory, ``--out`` a plain name under its jobs directory (submitting the same name again
after a cancel or a crash resumes from its checkpoint). The Bearer token comes from
BIZRA_API_TOKEN, never from the command line (where ``ps`` would show it). Plain urllib: the
client needs nothing beyond the standard library.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from engine.model.errors import BizraError

__all__ = ["JobClient", "add_cli", "check_server_url", "cmd_cancel", "cmd_status", "cmd_submit"]

EXIT_JOB_FAILED = 1


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The job API never redirects: a redirect (to another scheme or host, say) is an error."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl[:80]!r} refused", headers, fp)


def _opener() -> urllib.request.OpenerDirector:
    """An opener that speaks http(s) only: no file:, ftp: or data: handler, no redirects."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor(), _NoRedirects()):
        opener.add_handler(handler)
    return opener


def check_server_url(server: str) -> str:
    """``server`` without a trailing slash if it is an http(s) URL with a host, else BizraError.

    Example: ``check_server_url("http://127.0.0.1:9944/") == "http://127.0.0.1:9944"``.
    """
    try:
        parts = urllib.parse.urlsplit(server)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as exc:
        raise BizraError(f"--server {server[:200]!r}: not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BizraError(f"--server {server[:200]!r}: expected an http:// or https:// URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise BizraError(f"--server {server[:200]!r}: give scheme, host, port and path only (the token comes from "
                         "BIZRA_API_TOKEN)")
    return server.rstrip("/")


class JobClient:
    """The three calls of the job API. ``JobClient("http://127.0.0.1:9944").status(job_id)``.

    Only http(s) URLs are accepted, and requests go through an opener with no other scheme
    handler and no redirects, so neither the URL nor a server's answer can make it read a
    ``file:`` (or ``ftp:``) URL."""

    def __init__(self, server: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.server, self.token, self.timeout = check_server_url(server), token, timeout
        self._opener = _opener()

    def _call(self, method: str, path: str, payload: dict | None = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("detail", "")
            except (ValueError, AttributeError):
                detail = ""
            hint = " (set BIZRA_API_TOKEN)" if exc.code == 401 and not self.token else ""
            raise BizraError(f"{self.server}: HTTP {exc.code}: {detail or exc.reason}{hint}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BizraError(f"{self.server}: cannot reach the server ({reason})") from None

    def submit(self, data: str, out: str | None = None, bps: int | None = None,
               chunk_rows: int | None = None) -> dict[str, Any]:
        spec = {"data": data, "out": out, "bps": bps, "chunk_rows": chunk_rows}
        return self._call("POST", "/api/v1/jobs", {k: v for k, v in spec.items() if v is not None})

    def status(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/jobs/{urllib.request.quote(job_id, safe='')}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/jobs/{urllib.request.quote(job_id, safe='')}/cancel")

    def wait(self, job_id: str, *, poll_s: float = 0.5, on_update=None) -> dict[str, Any]:
        """Poll until the job has finished; ``on_update(job)`` after every poll."""
        while True:
            job = self.status(job_id)
            if on_update is not None:
                on_update(job)
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(poll_s)


def describe(job: dict[str, Any]) -> str:
    """A few human lines: state, progress, then the result or the error."""
    p = job["progress"]
    total = p["rows_total"]
    lines = [f"job {job['id']}: {job['state']}, {p['rows_done']:,}/{total:,} rows ({p['fraction']:.0%})"
             if total is not None else f"job {job['id']}: {job['state']}"]
    if job.get("error"):
        lines.append(f"error: {job['error']}")
    result = job.get("result")
    if result:
        counts = ", ".join(f"{k} {v:,}" for k, v in result["counts"].items() if v)
        lines += [f"head {result['head']}", f"finalized height {result['finalized_height']} (tip {result['finalized_tip']})",
                  f"{result['rows']:,} rows: {counts}", f"outputs (on the server): {result['out_dir']}"]
    return "\n".join(lines)


def _client(args: argparse.Namespace) -> JobClient:
    return JobClient(args.server, os.environ.get("BIZRA_API_TOKEN") or None)


def cmd_submit(args: argparse.Namespace) -> int:
    client = _client(args)
    job = client.submit(args.data, args.out, args.bps, args.chunk_rows)
    print(f"submitted job {job['id']} (out {job['out']})")
    if not args.wait:
        return 0

    def show(j: dict[str, Any]) -> None:
        if sys.stderr.isatty() and j["progress"]["rows_total"]:
            print(f"\r{j['state']} {j['progress']['fraction']:.0%}", end="", file=sys.stderr, flush=True)

    job = client.wait(job["id"], on_update=show)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(describe(job))
    return 0 if job["state"] == "succeeded" else EXIT_JOB_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    job = _client(args).status(args.job_id)
    print(json.dumps(job, indent=2) if args.json else describe(job))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    print(describe(_client(args).cancel(args.job_id)))
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register submit, status and cancel."""
    server = {"required": True, "metavar": "URL", "help": "the bizra serve API, e.g. http://127.0.0.1:9944"}
    s = sub.add_parser("submit", help="submit a batch job to a running bizra serve",
                       description="POST a job to SERVER: DIR is a dataset directory relative to the server's "
                       "data directory; OUT a plain name under its jobs directory (default: the job id). "
                       "The token comes from BIZRA_API_TOKEN.")
    s.add_argument("--server", **server)
    s.add_argument("--data", default=".", metavar="DIR", help="dataset directory on the server (default .)")
    s.add_argument("--out", default=None, metavar="NAME", help="output name on the server; reuse it to resume")
    s.add_argument("--bps", type=int, default=None, help="finality threshold in basis points (server default 6667)")
    s.add_argument("--chunk-rows", type=int, default=None, help="rows per chunk (server default 65536)")
    s.add_argument("--wait", action="store_true", help="poll until the job ends; exit 1 unless it succeeded")
    t = sub.add_parser("status", help="show a submitted job's state, progress and result")
    t.add_argument("--server", **server)
    t.add_argument("job_id", metavar="ID")
    t.add_argument("--json", action="store_true", help="print the server's JSON")
    c = sub.add_parser("cancel", help="cancel a queued or running job (its checkpoint stays)")
    c.add_argument("--server", **server)
    c.add_argument("job_id", metavar="ID")
