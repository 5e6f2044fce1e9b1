"""The pure-ASGI guards on a bare ASGI app: BodyLimit (413 from Content-Length or while the body
streams) and TokenGate (401 for a wrong or missing Bearer token, 503 when none is configured)."""
from __future__ import annotations

import asyncio
import json
import re

from engine.service.http_guards import BodyLimit, TokenGate


async def _echo(scope, receive, send) -> None:
    """An app that reads the whole body and answers its length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps({"read": size}).encode()})


def _call(app, *, method="POST", path="/x", headers=(), chunks=(b"",)) -> tuple[int, dict]:
    sent = []
    parts = list(chunks)

    async def receive():
        body = parts.pop(0) if parts else b""
        return {"type": "http.request", "body": body, "more_body": bool(parts)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body)


def test_body_limit() -> None:
    app = BodyLimit(_echo, limit=10)
    assert _call(app, chunks=[b"12345", b"12345"]) == (200, {"read": 10})
    status, body = _call(app, headers=[(b"content-length", b"11")], chunks=[b"x" * 11])
    assert status == 413 and body["detail"] == "body: request body over 10 bytes"
    status, body = _call(app, chunks=[b"123456", b"123456"])  # chunked: no Content-Length, caught as it streams
    assert status == 413 and "over 10 bytes" in body["detail"]


def test_token_gate() -> None:
    gate = TokenGate(_echo, token="s3cret", paths=re.compile(r"/protected"))
    assert _call(gate, path="/open")[0] == 200  # other paths pass
    assert _call(gate, method="GET", path="/protected")[0] == 200  # only POSTs are gated
    status, body = _call(gate, path="/protected")
    assert status == 401 and "Bearer" in body["detail"]
    assert _call(gate, path="/protected", headers=[(b"authorization", b"Bearer nope")])[0] == 401
    assert _call(gate, path="/protected/", headers=[(b"authorization", b"bearer s3cret")])[0] == 200
    closed = TokenGate(_echo, token=None, paths=re.compile(r"/protected"))
    status, body = _call(closed, path="/protected", headers=[(b"authorization", b"Bearer s3cret")])
    assert status == 503 and "BIZRA_API_TOKEN" in body["detail"]
