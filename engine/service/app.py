"""The node's HTTP API (FastAPI): ``create_app``, its routes and the error contract. Started by
``bizra serve`` (engine.service.server); the request/response models are
engine.service.api_models; the state behind the routes is engine.service.node_state.NodeState.

Startup: the app answers /healthz at once; a background thread loads the data directory
(NodeState.load), then /readyz turns 200. Endpoints that read the graph answer 503 until then.
Metrics: engine.service.metrics on PROMETHEUS_PORT via prometheus_client's own server.

Decisions (tested in tests/service/):
- BIZRA_API_TOKEN unset or empty: the node serves everything except the endpoints that need it
  (POST /poi/generate, POST /blocks, POST /jobs and POST /jobs/{id}/cancel answer 503 naming
  BIZRA_API_TOKEN); startup logs that signing is disabled. A wrong or missing Bearer token is 401,
  checked before the body is read; tokens compare in constant time
  (engine.service.http_guards.TokenGate). Blocks are not signed, so /blocks takes the token;
  /attestations stays open like a gossip port (every row is signature-checked). Blocks waiting for
  their parent and votes waiting for their block are bounded pools (BIZRA_MAX_WAITING_BLOCKS,
  BIZRA_MAX_WAITING_VOTES; engine.service.node_state): a request that would overfill one is
  refused whole, 429 (413 when the request alone is over the bound).
- Errors are JSON ``{"detail": "<field>: <problem>"}``. The layers below raise domain errors
  (engine.model.errors); this module alone maps them to status codes (``STATUS_OF``): 400 for a body that is not JSON (or an
  unreadable Arrow/Parquet upload), 422 for wrong types, bad hex, wrong lengths, unknown fields
  (schema errors also carry ``errors`` with FastAPI's locations; rows of a list are named
  ``[i].field``), 404 unknown block/job, 413 body over BIZRA_MAX_BODY_BYTES (counted as it
  streams, not only from Content-Length: engine.service.http_guards.BodyLimit; also a Parquet upload whose
  metadata declares more rows, values or decompressed bytes than its size allows, a decompression
  bomb: engine.tables.decode_limits), 415 unknown upload type,
  409 job conflict (its ``out`` in use, or cancelling a finished job), 429 job queue full or a
  waiting pool full, 503 not ready. JSON endpoints (engine.service.http_guards.JsonRoute): a body
  in another content type is 415, an empty body 400, an integer literal longer than any field
  takes (over 40 digits) a 400 naming its field. A 500 is a bug: logged with its traceback, answered without
  details.
- verify_batch: a JSON row with bad hex or a wrong length is a 422 (the client's JSON is wrong);
  an Arrow/Parquet row with a wrong width or a body that does not decode is ``valid: false``
  (one bad row must not sink a 100K-row upload). /poi/verify with a body_hex that does not
  decode (domain tag, version, poi_score) is a 422: it is not an attestation.
- /poi/generate defaults: chain_id 1, validator_index = the node key's row in the validator
  table (else 0), epoch = wall clock since the dataset genesis time in 384 s epochs, target =
  the current head (else zero), poi_score 0, timestamp now, nonce a random u64.

Example: ``httpx.AsyncClient(transport=httpx.ASGITransport(create_app(cfg)), base_url="http://t")``.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from engine.model.attestation import AttestationBody, attestation_to_json, hex_to_bytes
from engine.model.errors import BizraError, UnreadableUpload, UnsupportedMediaType, UploadTooLarge
from engine.service.api_models import (
    HEX32,
    HEX64,
    HEX110,
    UPLOAD_DOC,
    BlocksRequest,
    FinalityRequest,
    FinalityResponse,
    GenerateRequest,
    JobRequest,
    VerifyRequest,
    VerifyResponse,
)
from engine.service.config import ServiceConfig
from engine.service.http_guards import MAX_INT_DIGITS, BodyLimit, HugeInt, JsonRoute, TokenGate
from engine.service.jobs_runner import JobConflict, JobQueueFull, JobRunner, JobSpec
from engine.service.metrics import Metrics, RequestMetrics
from engine.service.microbatch import MicroBatcher
from engine.service.node_state import NodeState, PoolFull, TooManyWaiting
from engine.tables.uploads import parse_upload
from engine.verification import keys as keymod
from engine.verification.api import verify_many

__all__ = ["STATUS_OF", "create_app"]

log = logging.getLogger("bizra.service")


# ---- error contract: OpenAPI error docs, schema-error messages --------------------------


_ERROR_DOC: dict[int, dict[str, Any]] = {code: {"description": text} for code, text in {
    400: "the body is empty or not JSON (or an integer in it is longer than any field takes), or not a readable "
         "Arrow/Parquet upload",
    401: "missing or wrong Bearer token",
    404: "unknown block or job",
    413: "request body over BIZRA_MAX_BODY_BYTES, an Arrow/Parquet upload declaring more rows or decompressed bytes "
         "than its size allows, or more waiting blocks/votes than the node's pool holds",
    415: "content type not accepted",
    422: "a field is missing, of the wrong type, bad hex or the wrong length (detail names it)",
    409: "job conflict: its out is in use by a live job, or the job already finished",
    429: "job queue full, or the pool of blocks (votes) waiting for their parent (block) is full",
    503: "not ready yet (loading), or BIZRA_API_TOKEN not set for signing/jobs",
}.items()}


def _doc(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of a POST: the given codes plus 400/413/422, which any body can earn."""
    return {code: _ERROR_DOC[code] for code in sorted({400, 413, 422, *codes})}


# Domain errors (raised below the service layer) -> HTTP status; any other BizraError is a 422.
STATUS_OF: dict[type[BizraError], int] = {UnreadableUpload: 400, UploadTooLarge: 413, UnsupportedMediaType: 415,
                                          JobConflict: 409, JobQueueFull: 429, PoolFull: 429,
                                          TooManyWaiting: 413}


def status_of(exc: BizraError) -> int:
    """The status code of a domain error: its class's (or nearest base class's) entry, else 422."""
    return next((STATUS_OF[k] for k in type(exc).__mro__ if k in STATUS_OF), 422)


_PATTERN_MSG = {HEX32: "expected 32 bytes as hex (optional 0x)", HEX64: "expected 64 bytes as hex (optional 0x)",
                HEX110: "expected 110 bytes as hex (optional 0x)"}


def _friendly(error: Mapping[str, Any]) -> str:
    """Pydantic's message, with the hex patterns said in words."""
    pattern = (error.get("ctx") or {}).get("pattern")
    if error.get("type") == "string_pattern_mismatch" and pattern in _PATTERN_MSG:
        return _PATTERN_MSG[pattern]
    if error.get("type") == "json_invalid":
        return str((error.get("ctx") or {}).get("error", "malformed JSON"))
    return str(error.get("msg", "invalid"))


_PROTECTED = re.compile(r"/api/v1/(poi/generate|blocks|jobs|jobs/[^/]+/cancel)")  # POST only; GET /jobs/{id} is open


def _latency_us(t0: float) -> int:
    return round((time.perf_counter() - t0) * 1e6)


# ---- the app -----------------------------------------------------------------------------


def create_app(config: ServiceConfig, *, runner: JobRunner | None = None) -> FastAPI:
    """The ASGI app. Its lifespan loads the node state in the background and, when
    ``config.metrics_enabled``, starts the metrics server on ``config.prometheus_port``.

    Example: ``httpx.AsyncClient(transport=httpx.ASGITransport(create_app(cfg)), base_url="http://t")``.
    """
    metrics = Metrics()
    node = NodeState(config.data_dir, bps=config.bps, max_waiting_blocks=config.max_waiting_blocks,
                     max_waiting_votes=config.max_waiting_votes)
    batcher = MicroBatcher(max_batch=config.batch_max, max_wait_s=config.batch_wait_s, on_batch=metrics.record_batch)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server = config.metrics_enabled and metrics.serve(config.prometheus_port, config.host)
        if config.api_token is None:
            log.warning("BIZRA_API_TOKEN is not set: signing (POST /api/v1/poi/generate) and job "
                        "submission are disabled")
        app.state.jobs = runner or JobRunner(config.data_dir, config.data_dir / "jobs", max_queued=config.job_queue)
        # A daemon thread, not the loop's executor: a shutdown during a long load must not wait for it.
        threading.Thread(target=node.load, name="bizra-load", daemon=True).start()
        try:
            yield
        finally:
            await batcher.close()
            app.state.jobs.close(timeout=2.0)
            if server:
                server.shutdown()

    app = FastAPI(title="bizra node", version=importlib.metadata.version("bizra"), lifespan=lifespan,
                  description="Proof-of-Impact attestations on a BlockGraph: sign, verify, finality, ingest, jobs.")
    app.state.metrics, app.state.node, app.state.batcher = metrics, node, batcher
    app.router.route_class = JsonRoute  # every route below: 415 / 400 / HugeInt for JSON bodies

    app.add_middleware(BodyLimit, limit=config.max_body_bytes)  # before any route reads the body
    app.add_middleware(TokenGate, token=config.api_token, paths=_PROTECTED)  # before the body is even read
    app.add_middleware(RequestMetrics, metrics=metrics)  # added last, so outermost: a 413 is counted too

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": _friendly(e), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        huge = next((e for e in exc.errors() if isinstance(e.get("input"), HugeInt)), None)
        if huge is not None:  # a number no field takes: the JSON is well formed, its value is not
            loc = ".".join(str(p) for p in huge.get("loc", ())[1:]) or "body"
            return JSONResponse({"detail": f"{loc}: an integer of {huge['input'].digits:,} digits, longer than "
                                 f"any field takes (at most {MAX_INT_DIGITS})", "errors": errors}, status_code=400)
        first = errors[0] if errors else {"loc": ["body"], "msg": "invalid request", "type": ""}
        if first["type"] == "json_invalid":  # not JSON at all: a 400, the schema never ran
            return JSONResponse({"detail": f"body: invalid JSON ({first['msg']})", "errors": errors}, status_code=400)
        loc = ".".join(first["loc"][1:]) or ".".join(first["loc"][:1]) or "body"  # drop the "body"/"path" root
        return JSONResponse({"detail": f"{loc}: {first['msg']}", "errors": errors}, status_code=422)

    @app.exception_handler(BizraError)
    async def bad_input(request: Request, exc: BizraError) -> JSONResponse:
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=status_of(exc))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:  # last resort; tests show none
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error (logged)"}, status_code=500)

    def require_ready() -> NodeState:
        if not node.ready:
            raise HTTPException(503, f"not ready: {node.error or 'loading the data directory'}")
        return node

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "still loading, or the load failed"}})
    async def readyz() -> JSONResponse:
        body = {"ready": node.ready, "error": node.error}
        return JSONResponse(body, status_code=200 if node.ready else 503)

    @app.post("/api/v1/poi/generate", responses=_doc(401, 503))
    async def generate(req: GenerateRequest) -> dict[str, Any]:
        state = require_ready()
        t0 = time.perf_counter()
        now_us = time.time_ns() // 1000
        fields = {
            "chain_id": req.chain_id if req.chain_id is not None else state.chain_id,
            "validator_index": req.validator_index if req.validator_index is not None else state.node_index,
            "epoch": req.epoch if req.epoch is not None else state.current_epoch(now_us),
            "target": hex_to_bytes(req.target, "target", 32) if req.target else (state.snapshot.head or bytes(32)),
            "evidence_root": hashlib.sha256(req.evidence.encode("utf-8", "surrogatepass")).digest(),
            "poi_score": req.poi_score,
            "timestamp_us": req.timestamp_us if req.timestamp_us is not None else now_us,
            "nonce": req.nonce if req.nonce is not None else secrets.randbits(64),
        }
        body = AttestationBody(**fields).encode()
        signature = bytes(keymod.sign_many(np.frombuffer(body, np.uint8).reshape(1, -1), state.node_seed, threads=1)[0])
        metrics.record_generate(time.perf_counter() - t0)
        out = attestation_to_json(body, signature, state.node_public_key)
        when = datetime.fromtimestamp(fields["timestamp_us"] / 1e6, tz=UTC) if fields["timestamp_us"] < 2**53 else None
        return {"body": {k: out[k] for k in AttestationBody.__dataclass_fields__ if k in out},
                "body_hex": out["body"], "signature": out["signature"], "public_key": out["public_key"],
                "timestamp": when.isoformat().replace("+00:00", "Z") if when and when.year < 10000 else None,
                "attestation_id": out["id"]}

    @app.post("/api/v1/poi/verify", response_model=VerifyResponse, responses=_doc())
    async def verify(req: VerifyRequest) -> VerifyResponse:
        t0 = time.perf_counter()
        message = req.message()
        sig = hex_to_bytes(req.signature, "signature", 64)
        pk = hex_to_bytes(req.public_key, "public_key", 32)
        ok = await batcher.verify(message, sig, pk)
        metrics.record_verify(np.array([ok]), time.perf_counter() - t0)
        return VerifyResponse(valid=ok, latency_us=_latency_us(t0))

    @app.post("/api/v1/poi/verify_batch", openapi_extra=UPLOAD_DOC, responses=_doc(415))
    async def verify_batch(request: Request) -> dict[str, Any]:
        t0 = time.perf_counter()
        raw = await request.body()
        up = await run_in_threadpool(parse_upload, request.headers.get("content-type", ""), raw)  # JSON/Polars: off the loop
        valid = await run_in_threadpool(lambda: verify_many(up.body, up.signature, up.public_key) & up.well_formed)
        if len(valid):
            metrics.record_batch(len(valid))
        metrics.record_verify(valid, time.perf_counter() - t0)
        return {"rows": len(valid), "valid_rows": int(valid.sum()), "valid": valid.tolist(), "latency_us": _latency_us(t0)}

    @app.post("/api/v1/finality", response_model=FinalityResponse, responses=_doc(404, 503))
    async def finality(req: FinalityRequest) -> FinalityResponse:
        t0 = time.perf_counter()
        snap = require_ready().snapshot  # an immutable snapshot: no lock, no thread hop
        h = hex_to_bytes(req.block_hash, "block_hash", 32)
        height = snap.heights.get(h)
        if height is None:
            metrics.finality(time.perf_counter() - t0)
            raise HTTPException(404, f"block_hash: unknown block 0x{h.hex()}")
        finalized = h in snap.finalized_at
        metrics.finality(time.perf_counter() - t0)
        return FinalityResponse(finalized=finalized, height=height,
                                finalized_at_epoch=snap.finalized_at.get(h), latency_us=_latency_us(t0))

    @app.get("/api/v1/head", responses={503: _ERROR_DOC[503]})
    async def head() -> dict[str, Any]:
        return require_ready().head_json()

    @app.post("/api/v1/blocks", responses=_doc(401, 429, 503))
    async def blocks(req: BlocksRequest) -> dict[str, Any]:
        state = require_ready()
        rows = [(hex_to_bytes(b.hash, "hash", 32), hex_to_bytes(b.parent, "parent", 32),
                 -1 if b.height is None else b.height) for b in req.blocks]
        return await run_in_threadpool(state.add_blocks, rows)

    @app.post("/api/v1/attestations", openapi_extra=UPLOAD_DOC, responses=_doc(415, 429, 503))
    async def attestations(request: Request) -> dict[str, Any]:
        state = require_ready()
        raw = await request.body()
        up = await run_in_threadpool(parse_upload, request.headers.get("content-type", ""), raw)
        return await run_in_threadpool(state.add_attestations, up)

    @app.post("/api/v1/jobs", status_code=202, responses=_doc(401, 409, 429, 503))
    async def submit_job(req: JobRequest) -> JSONResponse:
        job = app.state.jobs.submit(JobSpec(data=req.data, bps=req.bps, chunk_rows=req.chunk_rows, out=req.out))
        return JSONResponse(app.state.jobs.snapshot(job.id), status_code=202,
                            headers={"Location": f"/api/v1/jobs/{job.id}"})

    @app.get("/api/v1/jobs/{job_id}", responses={404: _ERROR_DOC[404], 422: _ERROR_DOC[422]})
    async def get_job(job_id: Annotated[str, PathParam(max_length=64)]) -> dict[str, Any]:
        snap = app.state.jobs.snapshot(job_id)
        if snap is None:
            raise HTTPException(404, f"job_id: unknown job {job_id[:64]!r}")
        return snap

    @app.post("/api/v1/jobs/{job_id}/cancel", status_code=202,
              responses={code: _ERROR_DOC[code] for code in (401, 404, 409, 422, 503)})
    async def cancel_job(job_id: Annotated[str, PathParam(max_length=64)]) -> dict[str, Any]:
        if app.state.jobs.cancel(job_id) is None:
            raise HTTPException(404, f"job_id: unknown job {job_id[:64]!r}")
        return app.state.jobs.snapshot(job_id)

    return app
