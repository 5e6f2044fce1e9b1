"""The client processes of ``bizra loadtest`` (engine.tooling.loadtest): each runs its share of
the users as asyncio tasks over a minimal keep-alive HTTP/1.1 client, checks every answer,
and reports its tallies to the parent through a queue.

Example: started by ``run_loadtest`` as ``mp.get_context("spawn").Process(target=client_process, ...)``.
"""
from __future__ import annotations

import asyncio
import json
import random
import resource
import time
from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ARROW", "ENDPOINTS", "Connection", "client_process", "share"]

ENDPOINTS: dict[str, str] = {
    "verify": "/api/v1/poi/verify",
    "verify_batch": "/api/v1/poi/verify_batch",
    "finality": "/api/v1/finality",
    "generate": "/api/v1/poi/generate",
}
ARROW = "application/vnd.apache.arrow.stream"


class _Tally:
    """One endpoint's outcomes in one client process."""

    def __init__(self) -> None:
        self.latency = array("d")  # seconds, answered requests that passed their check
        self.server_us = array("d")  # latency_us the service reports, where it does
        self.errors = 0
        self.examples: Counter[str] = Counter()
        self.rows = 0  # signatures verified valid (verify_batch)
        self.end = 0.0  # monotonic time of the last answer

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.examples) < 8 or what in self.examples:
            self.examples[what] += 1

    def export(self) -> dict[str, Any]:
        return {"latency": self.latency.tobytes(), "server_us": self.server_us.tobytes(), "errors": self.errors,
                "examples": dict(self.examples), "rows": self.rows, "end": self.end}


def _check(endpoint: str, status: int, body: bytes, batch_rows: int) -> tuple[str | None, float | None, int]:
    """(error or None, server latency_us or None, valid rows) for one answer."""
    if status != 200:
        return f"HTTP {status}: {body[:100].decode('utf-8', 'replace')}", None, 0
    try:
        doc = json.loads(body)
    except ValueError:
        return "HTTP 200 with a body that is not JSON", None, 0
    if endpoint == "verify":
        return (None if doc.get("valid") is True else "an honest signature answered invalid"), doc.get("latency_us"), 1
    if endpoint == "verify_batch":
        if doc.get("rows") != batch_rows or doc.get("valid_rows") != batch_rows:
            return f"verify_batch: {doc.get('valid_rows')} of {doc.get('rows')} rows valid, expected {batch_rows}", None, 0
        return None, doc.get("latency_us"), batch_rows
    if endpoint == "finality":
        return (None if isinstance(doc.get("height"), int) else "finality answer without a height"), doc.get("latency_us"), 0
    return (None if len(str(doc.get("signature", ""))) >= 128 else "generate answer without a signature"), None, 0


class Connection:
    """One user's keep-alive HTTP/1.1 connection: a minimal client on asyncio streams.

    Why not httpx here: on the 2-core machine httpx cost about 0.5 ms of client CPU per request,
    twice the server's cost for a finality check, so the load generator measured itself (about
    1,100 requests/s at 64 users, where this client drives the same server to about 5,000). It
    speaks only what the service answers: a status line, headers, then a Content-Length or
    chunked body. Any transport problem closes the connection; the next request reconnects.
    """

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.authority = (f"[{host}]" if ":" in host else host) + f":{port}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def request_bytes(self, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        head = [f"POST {path} HTTP/1.1", f"host: {self.authority}", f"content-length: {len(body)}",
                *(f"{k}: {v}" for k, v in headers.items())]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body

    async def post(self, request: bytes) -> tuple[int, bytes]:
        """(status, body) of one prepared request (``request_bytes``); raises OSError, TimeoutError,
        asyncio.IncompleteReadError or ValueError (a malformed answer) and then drops the connection."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._exchange(request)
        except BaseException:
            self.close()
            raise

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        if self.reader is None:  # opened together with the writer just above
            raise ConnectionError("no connection")
        self.writer.write(request)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip().lower() for k, _, v in (line.partition(":") for line in head[1:] if line)}
        if fields.get("transfer-encoding") == "chunked":
            body = b""
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                body += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
        else:
            body = await self.reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection") == "close":
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _run_phase(conns: Sequence[Connection], phase: Mapping[str, Any], plan: Mapping[str, Any], users: int,
                     quota: int, seed: int) -> dict[str, dict[str, Any]]:
    names = list(phase["mix"])
    weights = [phase["mix"][n] for n in names]
    tallies = {n: _Tally() for n in names}
    think, batch_rows = plan["think_s"], plan["batch_rows"]
    requests = {n: [conns[0].request_bytes(ENDPOINTS[n], body, _headers(n, plan["token"]))
                    for body in plan["payloads"][n]] for n in names}
    start = time.monotonic()
    deadline = start + phase["seconds"]
    left = [quota]

    async def user(uid: int) -> None:
        pick = random.Random(seed * 1_000_003 + uid)  # nosec B311  # seeded, reproducible traffic, not secrets
        i = uid
        while left[0] > 0 and time.monotonic() < deadline:
            left[0] -= 1
            name = names[0] if len(names) == 1 else pick.choices(names, weights)[0]
            pool, tally = requests[name], tallies[name]
            t0 = time.monotonic()
            try:
                status, body = await conns[uid].post(pool[i % len(pool)])
                problem, server_us, rows = _check(name, status, body, batch_rows)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                problem, server_us, rows = f"{type(exc).__name__}: {exc}"[:160], None, 0
            t1 = time.monotonic()
            tally.end = max(tally.end, t1)
            if problem is None:
                tally.latency.append(t1 - t0)
                tally.rows += rows
                if server_us is not None:
                    tally.server_us.append(float(server_us))
            else:
                tally.error(problem)
            i += users
            if think:
                await asyncio.sleep(think)

    await asyncio.gather(*(user(u) for u in range(users)))
    return {n: {**t.export(), "start": start} for n, t in tallies.items()}


def _headers(name: str, token: str | None) -> dict[str, str]:
    headers = {"content-type": ARROW if name == "verify_batch" else "application/json"}
    if name == "generate":
        headers["authorization"] = f"Bearer {token}"
    return headers


async def _client_main(plan: Mapping[str, Any], index: int, barrier: Any) -> list[dict[str, Any]]:
    users, quotas = plan["users"][index], plan["quotas"]
    parts = urlsplit(plan["url"])
    conns = [Connection(parts.hostname or "", parts.port or 80, plan["timeout_s"]) for _ in range(users)]
    results = []
    try:
        for k, phase in enumerate(plan["phases"]):
            barrier.wait()  # every process starts each phase together (and after the last one drained)
            results.append(await _run_phase(conns, phase, plan, users, quotas[k][index], seed=index * 131 + k))
    finally:
        for c in conns:
            c.close()
    return results


def client_process(plan: Mapping[str, Any], index: int, barrier: Any, out: Any) -> None:
    cpu0 = _cpu_seconds()
    try:
        results = asyncio.run(_client_main(plan, index, barrier))
        out.put({"index": index, "phases": results, "cpu_s": _cpu_seconds() - cpu0})
    except Exception as exc:  # noqa: BLE001 - any failure is reported to the parent, which prints one line
        # Aborting the barrier frees the other clients, which then report a BrokenBarrierError too.
        barrier.abort()
        out.put({"index": index, "error": f"{type(exc).__name__}: {exc}"})


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def share(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
