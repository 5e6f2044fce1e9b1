"""Pure-ASGI middlewares of the node's HTTP API (engine.service.app): ``BodyLimit`` answers 413
for a body over BIZRA_MAX_BODY_BYTES, ``TokenGate`` checks the Bearer token (401, or 503 when no
token is configured) before anything reads the body.

Example: ``app.add_middleware(BodyLimit, limit=16 << 20)``.
"""
from __future__ import annotations

import hmac
import re
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

__all__ = ["BodyLimit", "TokenGate"]


class BodyLimit:
    """413 for a request body over ``limit`` bytes: Content-Length up front, and the bytes as they
    stream (a chunked upload has no Content-Length). Pure ASGI, so nothing is buffered here."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._reject(scope, receive, send)
        seen = 0

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:  # an HTTPException, so the route's exception middleware answers
                    raise HTTPException(413, f"body: request body over {self.limit} bytes")
            return message

        started = False

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except HTTPException as exc:  # read outside a route (no exception middleware there): answer here
            if exc.status_code != 413 or started:
                raise
            await self._reject(scope, receive, send)

    async def _reject(self, scope: dict, receive: Any, send: Any) -> None:
        response = JSONResponse({"detail": f"body: request body over {self.limit} bytes"}, status_code=413)
        await response(scope, receive, send)

class TokenGate:
    """Bearer-token check for POSTs to the paths that ``paths`` (a regex) fully matches, before anything reads the body (so a client
    without the token learns nothing, not even whether its JSON parses). The token is compared
    in constant time; with no token configured these endpoints answer 503."""

    def __init__(self, app: Any, token: str | None, paths: re.Pattern[str]) -> None:
        self.app, self.paths = app, paths
        self.token = None if token is None else token.encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not self.paths.fullmatch(scope["path"].rstrip("/")):
            return await self.app(scope, receive, send)
        if self.token is None:
            response = JSONResponse({"detail": "disabled: BIZRA_API_TOKEN is not set on this node "
                                     "(signing and jobs need it)"}, status_code=503)
            return await response(scope, receive, send)
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.token):
            response = JSONResponse({"detail": "authorization: missing or wrong Bearer token"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        await self.app(scope, receive, send)
