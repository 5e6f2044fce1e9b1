"""A ``create_app`` node driven in-process for tests: an async httpx client on a blocking
portal (``running``), a synchronous face on it (``Api``), a default configuration with a token,
and small helpers to build requests.

Example::

    with running(config(data)) as api:
        assert api.wait_ready().status_code == 200
        api("POST", "/api/v1/finality", json={"block_hash": hex_of(h)})
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import httpx
import numpy as np

from engine.model.attestation import AttestationBody
from engine.service.app import create_app
from engine.service.config import ServiceConfig
from engine.verification import keys as keymod

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Api:
    """A synchronous face on an async httpx client driving the app on a portal's event loop."""

    def __init__(self, app: Any, portal: Any) -> None:
        self.app, self.portal = app, portal
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bizra.test")

    def __call__(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return self.portal.call(partial(self.client.request, method, url, **kw))

    def gather(self, requests: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
        async def all_at_once() -> list[httpx.Response]:
            return list(await asyncio.gather(*(self.client.request(m, u, **kw) for m, u, kw in requests)))
        return self.portal.call(all_at_once)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.app.state.metrics.registry.get_sample_value(name, labels or {}) or 0.0

    def wait_ready(self) -> httpx.Response:
        for _ in range(600):  # bounded: 60 s
            r = self("GET", "/readyz")
            if r.status_code == 200 or r.json()["error"]:
                return r
            self.portal.call(anyio.sleep, 0.1)
        raise AssertionError("service never became ready")


@contextlib.contextmanager
def running(config: ServiceConfig, **kw: Any) -> Iterator[Api]:
    app = create_app(config, **kw)
    with anyio.from_thread.start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(app.router.lifespan_context(app)):
        api = Api(app, portal)
        yield api
        portal.call(api.client.aclose)


def config(data: Path, **kw: Any) -> ServiceConfig:
    return ServiceConfig(data_dir=data, metrics_enabled=False, **{"api_token": TOKEN, **kw})


def hex_of(a: np.ndarray | bytes) -> str:
    return "0x" + bytes(a).hex()



def signed_vote(seeds: np.ndarray, v: int, epoch: int, target: bytes, nonce: int = 0) -> dict[str, str]:
    body = AttestationBody(chain_id=1, validator_index=v, epoch=epoch, target=target, evidence_root=bytes(32),
                           poi_score=0, timestamp_us=0, nonce=nonce).encode()
    sig = keymod.sign_many([body], seeds[v:v + 1])[0]
    pk = keymod.keypairs_from_seeds(seeds[v:v + 1])[0][0]
    return {"body": hex_of(body), "signature": hex_of(sig), "public_key": hex_of(pk)}
