"""Prometheus metrics of the service (docs/design.md, "Metrics": the names are part of the interface).

One :class:`Metrics` object owns its own ``CollectorRegistry`` (never prometheus_client's global
one), so several apps can live in one process (tests) and a scrape shows exactly:

    bizra_poi_generate_total           counter    signatures made by POST /api/v1/poi/generate
    bizra_poi_verify_total             counter    signatures checked by /poi/verify and /poi/verify_batch
    bizra_poi_verify_fail_total        counter    ... of which invalid (success ratio = 1 - fail/total)
    bizra_finality_checks_total        counter    POST /api/v1/finality answers (found or not)
    bizra_poi_generate_seconds         histogram  one generate request (encode + libsodium sign)
    bizra_poi_verify_seconds           histogram  one verify request (single: queue + micro-batch;
                                                  batch: the whole upload)
    bizra_finality_check_seconds       histogram  one finality lookup
    bizra_poi_verify_batch_size        histogram  rows per verify_many call (micro-batches and uploads)
    bizra_http_requests_total          counter    every request by method, route template and status
                                                  code (unknown methods and paths: "other")
    bizra_http_request_seconds         histogram  every request by route template
    bizra_process_threads              gauge      OS threads of the process (Numba, libsodium and
                                                  uvicorn threads too; process_* has no thread count)
    process_* / python_*                          process and interpreter metrics

Latency buckets are log-spaced 1-2-5 from 1 us to 10 s (22 buckets): fine enough that
``histogram_quantile(0.99, rate(bizra_finality_check_seconds_bucket[5m]))`` resolves a
sub-millisecond lookup. Batch-size buckets are powers of two 1..16384 (the Numba verifier's
largest batch equation), so ``rate(..._sum) / rate(..._count)`` is the average batch size and
the buckets show its spread.

Example::

    m = Metrics()
    m.record_verify(np.array([True, False]), seconds=0.0004)
    b"bizra_poi_verify_fail_total 1.0" in m.exposition()
"""
from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    start_http_server,
)

__all__ = ["BATCH_SIZE_BUCKETS", "LATENCY_BUCKETS", "METHODS", "METRIC_NAMES", "Metrics", "OTHER", "RequestMetrics"]

LATENCY_BUCKETS: tuple[float, ...] = tuple(
    round(m * 10.0**e, 12) for e in range(-6, 1) for m in (1, 2, 5)
) + (10.0,)
BATCH_SIZE_BUCKETS: tuple[float, ...] = tuple(float(2**k) for k in range(15))  # 1 .. 16384

# The exposition names docs/design.md ("Metrics") fixes (counters appear with their `_total` suffix,
# histograms as `_bucket`/`_sum`/`_count` series of these names).
METRIC_NAMES: tuple[str, ...] = (
    "bizra_poi_generate_total",
    "bizra_poi_verify_total",
    "bizra_poi_verify_fail_total",
    "bizra_finality_checks_total",
    "bizra_poi_generate_seconds",
    "bizra_poi_verify_seconds",
    "bizra_finality_check_seconds",
    "bizra_poi_verify_batch_size",
)

# FastAPI's own pages: matched by path (they carry no route object).
DOC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
# Label values come from closed sets, never from the client: a method outside METHODS and a path
# no route matches are both labelled OTHER, so invented methods and paths cannot add series.
METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})
OTHER = "other"


def os_threads() -> int:
    """Threads the kernel counts for this process (native ones included), else Python's count."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
    except (OSError, StopIteration, ValueError):
        return threading.active_count()


class Metrics:
    """The service's collectors on a private registry; all methods are thread-safe.

    Example: ``Metrics().finality(0.00002)``.
    """

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        # prometheus_client strips a trailing `_total` from a counter's name and adds it back
        # on exposition, so these scrape as exactly the documented names.
        self.generate_total = Counter("bizra_poi_generate_total", "PoI attestations signed by the node key", registry=r)
        self.verify_total = Counter("bizra_poi_verify_total", "PoI signatures verified through the API", registry=r)
        self.verify_fail_total = Counter("bizra_poi_verify_fail_total", "PoI signatures that did not verify", registry=r)
        self.finality_total = Counter("bizra_finality_checks_total", "finality checks answered", registry=r)
        self.generate_seconds = Histogram("bizra_poi_generate_seconds", "seconds per generate request",
                                          buckets=LATENCY_BUCKETS, registry=r)
        self.verify_seconds = Histogram("bizra_poi_verify_seconds", "seconds per verify request",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.finality_seconds = Histogram("bizra_finality_check_seconds", "seconds per finality check",
                                          buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("bizra_poi_verify_batch_size", "signatures per verify_many call",
                                    buckets=BATCH_SIZE_BUCKETS, registry=r)
        self.http_total = Counter("bizra_http_requests_total", "HTTP requests by route and status",
                                  ["method", "route", "status"], registry=r)
        self.http_seconds = Histogram("bizra_http_request_seconds", "seconds per HTTP request by route",
                                      ["route"], buckets=LATENCY_BUCKETS, registry=r)
        Gauge("bizra_process_threads", "OS threads of this process", registry=r).set_function(os_threads)

    def record_generate(self, seconds: float) -> None:
        """One signature made."""
        self.generate_total.inc()
        self.generate_seconds.observe(seconds)

    def record_verify(self, valid: np.ndarray, seconds: float) -> None:
        """One verify request's results (one row for /poi/verify, n rows for a batch upload)."""
        n = int(valid.size)
        self.verify_total.inc(n)
        self.verify_fail_total.inc(n - int(np.count_nonzero(valid)))
        self.verify_seconds.observe(seconds)

    def record_batch(self, rows: int) -> None:
        """One verify_many call of ``rows`` signatures."""
        self.batch_size.observe(rows)

    def finality(self, seconds: float) -> None:
        """One finality check answered."""
        self.finality_total.inc()
        self.finality_seconds.observe(seconds)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request (route is the template, e.g. ``/api/v1/jobs/{job_id}``: bounded labels)."""
        self.http_total.labels(method, route, str(status)).inc()
        self.http_seconds.labels(route).observe(seconds)

    def exposition(self) -> bytes:
        """The text format a scrape returns."""
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> object:
        """Start prometheus_client's own HTTP server for this registry (a daemon thread).

        Returns the server; call ``.shutdown()`` to stop it.  Example: ``m.serve(9464)``.
        """
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server


class RequestMetrics:
    """bizra_http_requests_total / _seconds for every request, labelled by route *template*.

    Pure ASGI (no BaseHTTPMiddleware): it adds no task or stream per request, which matters for a
    finality check that itself takes tens of microseconds.

    Example: ``app.add_middleware(RequestMetrics, metrics=Metrics())``.
    """

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0, status = time.perf_counter(), 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:  # the router stored the matched route in this same scope dict
            route = getattr(scope.get("route"), "path", None)
            if route is None:  # FastAPI's own pages carry no route; anything else is one label (bounded)
                route = scope["path"] if scope["path"] in DOC_PATHS else OTHER
            method = scope["method"] if scope["method"] in METHODS else OTHER
            self.metrics.request(method, route, status, time.perf_counter() - t0)
