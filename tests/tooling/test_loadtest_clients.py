"""The load test's client side: the minimal HTTP/1.1 connection against a real loopback server
(Content-Length and chunked answers, keep-alive, reconnect), the answer checks, the share-out."""
from __future__ import annotations

import asyncio
import json

from engine.tooling.loadtest_clients import Connection, _check, share


def test_share_is_exact_and_balanced() -> None:
    for total, parts in ((10, 3), (1, 4), (0, 2), (1000, 7)):
        s = share(total, parts)
        assert sum(s) == total and len(s) == parts and max(s) - min(s) <= 1


def test_answer_checks() -> None:
    ok = json.dumps({"valid": True, "latency_us": 12}).encode()
    assert _check("verify", 200, ok, 0) == (None, 12, 1)
    assert _check("verify", 200, json.dumps({"valid": False}).encode(), 0)[0] == "an honest signature answered invalid"
    assert _check("verify", 503, b"busy", 0)[0] == "HTTP 503: busy"
    assert _check("finality", 200, b"not json", 0)[0] == "HTTP 200 with a body that is not JSON"
    batch = json.dumps({"rows": 4, "valid_rows": 3}).encode()
    assert "3 of 4 rows valid" in _check("verify_batch", 200, batch, 4)[0]


def test_connection_speaks_to_a_real_server() -> None:
    async def run() -> list[tuple[int, bytes]]:
        async def handle(reader, writer):
            served = []  # per connection
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    break
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                body = await reader.readexactly(length)
                served.append(body)
                if len(served) == 1:  # Content-Length answer, keep-alive
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                else:  # chunked answer, then close
                    writer.write(b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                                 b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                    await writer.drain()
                    writer.close()
                    return
                await writer.drain()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = Connection("127.0.0.1", port, timeout_s=10)
        request = conn.request_bytes("/api/v1/finality", b'{"a": 1}', {"content-type": "application/json"})
        answers = [await conn.post(request), await conn.post(request)]
        assert conn.writer is None  # "connection: close" dropped it; the next post reconnects
        answers.append(await conn.post(request))
        conn.close()
        server.close()
        await server.wait_closed()
        return answers

    answers = asyncio.run(run())
    assert answers[0] == (200, b"ok") and answers[1] == (201, b"abcde") and answers[2] == (200, b"ok")
