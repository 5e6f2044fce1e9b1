"""Guards of the node's HTTP API (engine.service.app): the pure-ASGI middlewares ``BodyLimit``
(413 for a body over BIZRA_MAX_BODY_BYTES) and ``TokenGate`` (the Bearer token, 401, or 503 when
no token is configured, before anything reads the body), and ``JsonRoute``, the route class of
the JSON endpoints (415 for another content type, 400 for an empty body, integer literals too
long for any field kept as ``HugeInt`` so the error can name their field).

Example: ``app.add_middleware(BodyLimit, limit=16 << 20)``.
"""
from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from engine.model.errors import UnreadableUpload, UnsupportedMediaType

__all__ = ["MAX_INT_DIGITS", "BodyLimit", "HugeInt", "JsonRoute", "TokenGate"]

MAX_INT_DIGITS = 40  # no field takes more than a u64 (20 digits); Python refuses over 4,300 outright


class HugeInt:
    """A JSON integer literal with more than MAX_INT_DIGITS digits, left unparsed: no field
    accepts it, and parsing it could cost time (or raise, past Python's 4,300-digit limit)."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"<integer of {self.digits:,} digits>"


def _parse_int(text: str) -> int | HugeInt:
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_INT_DIGITS else HugeInt(digits)


def _is_json(media: str) -> bool:
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class JsonRoute(APIRoute):
    """The route class of the app: a route with a JSON body model refuses a body in another
    content type (415; no content type is taken as JSON) and an empty body (400) before FastAPI
    parses it, and parses it with :class:`HugeInt` for over-long integer literals."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def guarded(request: Request) -> Response:
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media and not _is_json(media):
                raise UnsupportedMediaType(f"content-type: {media[:60]!r} not accepted (application/json)")
            body = await request.body()
            if not body:
                raise UnreadableUpload("body: empty request body, expected a JSON object")
            try:
                request._json = json.loads(body, parse_int=_parse_int)  # Request.json() returns it as is
            except (ValueError, RecursionError):
                pass  # FastAPI parses it again and answers the malformed JSON with a 400
            return await handler(request)

        return guarded


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
                                     "(signing, block ingest and jobs need it)"}, status_code=503)
            return await response(scope, receive, send)
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.token):
            response = JSONResponse({"detail": "authorization: missing or wrong Bearer token"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        await self.app(scope, receive, send)
