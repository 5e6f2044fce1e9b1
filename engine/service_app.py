"""The node's HTTP API (FastAPI): ``create_app``, its routes, the request/response models (they
are the OpenAPI document) and the error contract (issue 6). Started by ``bizra serve``
(engine.service); the state behind the routes is engine.node_state.NodeState.

Startup: the app answers /healthz at once; a background thread loads the data directory
(NodeState.load), then /readyz turns 200. Endpoints that read the graph answer 503 until then.
Metrics: engine.metrics on PROMETHEUS_PORT via prometheus_client's own server.

Decisions (tested in tests/test_service*.py):
- BIZRA_API_TOKEN unset or empty: the node serves everything except the endpoints that need it
  (POST /poi/generate, POST /jobs and POST /jobs/{id}/cancel answer 503 naming BIZRA_API_TOKEN);
  startup logs that signing is disabled. A wrong or missing Bearer token is 401, checked before the body is read;
  tokens compare in constant time (engine.http_guards.TokenGate). Ingest (/blocks, /attestations)
  is open like a gossip port: attestations are signature-checked, blocks are not signed, so keep
  the port on a trusted network.
- Errors are JSON ``{"detail": "<field>: <problem>"}``: 400 for a body that is not JSON (or an
  unreadable Arrow/Parquet upload), 422 for wrong types, bad hex, wrong lengths, unknown fields
  (schema errors also carry ``errors`` with FastAPI's locations; rows of a list are named
  ``[i].field``), 404 unknown block/job, 413 body over BIZRA_MAX_BODY_BYTES (counted as it
  streams, not only from Content-Length: engine.http_guards.BodyLimit; also a Parquet upload whose
  footer declares more rows than its bytes could hold, a decompression bomb), 415 unknown upload type,
  409 job conflict (its ``out`` in use, or cancelling a finished job), 429 job queue full,
  503 not ready. A 500 is a bug: logged with its traceback, answered without
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
from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator
from starlette.concurrency import run_in_threadpool

from engine import keys as keymod
from engine.attestation import (
    BODY_SIZE,
    AttestationBody,
    attestation_to_json,
    hex_to_bytes,
)
from engine.errors import BizraError
from engine.http_guards import BodyLimit, TokenGate
from engine.jobs_runner import JobConflict, JobQueueFull, JobRunner, JobSpec
from engine.metrics import Metrics, RequestMetrics
from engine.microbatch import MicroBatcher
from engine.node_state import NodeState, parse_upload
from engine.service import ServiceConfig
from engine.verify import verify_many

__all__ = ["create_app"]

log = logging.getLogger("bizra.service")
U32, U64 = 2**32 - 1, 2**64 - 1
HEX32 = r"^(0[xX])?[0-9a-fA-F]{64}$"
HEX64 = r"^(0[xX])?[0-9a-fA-F]{128}$"
HEX110 = r"^(0[xX])?[0-9a-fA-F]{220}$"


# ---- request and response models (they are the OpenAPI document) ------------------------

Hex32 = Annotated[str, Field(pattern=HEX32, description="32 bytes as hex, optional 0x")]
Hex64 = Annotated[str, Field(pattern=HEX64, description="64 bytes as hex, optional 0x")]
Hex110 = Annotated[str, Field(pattern=HEX110, description="the 110-byte body as hex, optional 0x")]
U32Int = Annotated[StrictInt, Field(ge=0, le=U32)]
U64Int = Annotated[StrictInt, Field(ge=0, le=U64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BodyFields(_Strict):
    """The decoded body of README's layout table (the domain tag is implied)."""

    chain_id: U32Int
    validator_index: U32Int
    epoch: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
    target: Hex32
    evidence_root: Hex32
    poi_score: Annotated[StrictInt, Field(ge=0, le=1_000_000)]
    timestamp_us: U64Int
    nonce: U64Int
    version: Annotated[StrictInt, Field(ge=1, le=1)] = 1

    def encode(self) -> bytes:
        return AttestationBody(**self.model_dump()).encode()


class VerifyRequest(_Strict):
    # The schema says what the validator below enforces: exactly one of body / body_hex is given.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["body"], "properties": {"body": {"type": "object"}}},
        {"required": ["body_hex"], "properties": {"body_hex": {"type": "string"}}}]})

    body: BodyFields | None = None
    body_hex: Hex110 | None = None
    signature: Hex64
    public_key: Hex32

    @model_validator(mode="after")
    def _one_body(self) -> VerifyRequest:
        if (self.body is None) == (self.body_hex is None):
            raise ValueError("body: give exactly one of body (object) or body_hex")
        return self

    def message(self) -> bytes:
        if self.body is not None:
            return self.body.encode()
        raw = hex_to_bytes(self.body_hex or "", "body_hex", BODY_SIZE)
        AttestationBody.decode(raw)  # domain tag, version, poi_score: CodecError naming the field
        return raw


class VerifyResponse(BaseModel):
    valid: bool
    latency_us: int


class GenerateRequest(_Strict):
    evidence: Annotated[str, Field(min_length=1, description="SHA-256 of its UTF-8 bytes is evidence_root")]
    chain_id: U32Int | None = None
    validator_index: U32Int | None = None
    epoch: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] | None = None
    target: Hex32 | None = None
    poi_score: Annotated[StrictInt, Field(ge=0, le=1_000_000)] = 0
    timestamp_us: U64Int | None = None
    nonce: U64Int | None = None


class FinalityRequest(_Strict):
    block_hash: Hex32


class FinalityResponse(BaseModel):
    finalized: bool
    height: int
    finalized_at_epoch: int | None
    latency_us: int


class BlockIn(_Strict):
    hash: Hex32
    parent: Hex32
    height: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] | None = None


class BlocksRequest(_Strict):
    blocks: Annotated[list[BlockIn], Field(max_length=1_000_000)]


class JobRequest(_Strict):
    data: Annotated[str, Field(min_length=1, max_length=4096)] = "."
    bps: Annotated[StrictInt, Field(gt=5000, le=10000)] = 6667
    chunk_rows: Annotated[StrictInt, Field(ge=1, le=1 << 24)] = 65536
    out: Annotated[str, Field(min_length=1, max_length=128)] | None = None


# One JSON row of verify_batch / attestations: hex body (or body_hex), signature, public_key.
_ROW_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["signature", "public_key"],
    "properties": {"body": {"type": "string", "pattern": HEX110}, "body_hex": {"type": "string", "pattern": HEX110},
                   "signature": {"type": "string", "pattern": HEX64}, "public_key": {"type": "string", "pattern": HEX32}},
    "oneOf": [{"required": ["body"]}, {"required": ["body_hex"]}],
}
_UPLOAD_DOC = {
    "requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "array", "items": _ROW_SCHEMA}},
        "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
    }},
}


# ---- error contract: OpenAPI error docs, schema-error messages --------------------------


_ERROR_DOC: dict[int, dict[str, Any]] = {code: {"description": text} for code, text in {
    400: "the body is not JSON, or not a readable Arrow/Parquet upload",
    401: "missing or wrong Bearer token",
    404: "unknown block or job",
    413: "request body over BIZRA_MAX_BODY_BYTES, or a Parquet upload declaring more rows than its size allows",
    415: "content type not accepted",
    422: "a field is missing, of the wrong type, bad hex or the wrong length (detail names it)",
    409: "job conflict: its out is in use by a live job, or the job already finished",
    429: "job queue full",
    503: "not ready yet (loading), or BIZRA_API_TOKEN not set for signing/jobs",
}.items()}


def _doc(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of a POST: the given codes plus 400/413/422, which any body can earn."""
    return {code: _ERROR_DOC[code] for code in sorted({400, 413, 422, *codes})}


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


_PROTECTED = re.compile(r"/api/v1/(poi/generate|jobs|jobs/[^/]+/cancel)")  # POST only; GET /jobs/{id} is open


def _latency_us(t0: float) -> int:
    return round((time.perf_counter() - t0) * 1e6)


# ---- the app -----------------------------------------------------------------------------


def create_app(config: ServiceConfig, *, runner: JobRunner | None = None) -> FastAPI:
    """The ASGI app. Its lifespan loads the node state in the background and, when
    ``config.metrics_enabled``, starts the metrics server on ``config.prometheus_port``.

    Example: ``httpx.AsyncClient(transport=httpx.ASGITransport(create_app(cfg)), base_url="http://t")``.
    """
    metrics = Metrics()
    node = NodeState(config.data_dir, bps=config.bps)
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

    app = FastAPI(title="bizra node", version="0.1.0", lifespan=lifespan,
                  description="Proof-of-Impact attestations on a BlockGraph: sign, verify, finality, ingest, jobs.")
    app.state.metrics, app.state.node, app.state.batcher = metrics, node, batcher

    app.add_middleware(BodyLimit, limit=config.max_body_bytes)  # before any route reads the body
    app.add_middleware(TokenGate, token=config.api_token, paths=_PROTECTED)  # before the body is even read
    app.add_middleware(RequestMetrics, metrics=metrics)  # added last, so outermost: a 413 is counted too

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": _friendly(e), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        first = errors[0] if errors else {"loc": ["body"], "msg": "invalid request", "type": ""}
        if first["type"] == "json_invalid":  # not JSON at all: a 400, the schema never ran
            return JSONResponse({"detail": f"body: invalid JSON ({first['msg']})", "errors": errors}, status_code=400)
        loc = ".".join(first["loc"][1:]) or ".".join(first["loc"][:1]) or "body"  # drop the "body"/"path" root
        return JSONResponse({"detail": f"{loc}: {first['msg']}", "errors": errors}, status_code=422)

    @app.exception_handler(BizraError)
    async def bad_input(request: Request, exc: BizraError) -> JSONResponse:
        status = 429 if isinstance(exc, JobQueueFull) else 409 if isinstance(exc, JobConflict) else 422
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=status)

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

    @app.post("/api/v1/poi/verify_batch", openapi_extra=_UPLOAD_DOC, responses=_doc(415))
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

    @app.post("/api/v1/blocks", responses=_doc(503))
    async def blocks(req: BlocksRequest) -> dict[str, Any]:
        state = require_ready()
        rows = [(hex_to_bytes(b.hash, "hash", 32), hex_to_bytes(b.parent, "parent", 32),
                 -1 if b.height is None else b.height) for b in req.blocks]
        return await run_in_threadpool(state.add_blocks, rows)

    @app.post("/api/v1/attestations", openapi_extra=_UPLOAD_DOC, responses=_doc(415, 503))
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
