"""``bizra serve``: the node's HTTP API (FastAPI on uvicorn) over a live BlockGraph (issue 6).

Startup: the app answers /healthz at once; a background thread loads DIR/validators.parquet
(required), DIR/blocks.parquet and DIR/attestations.parquet (optional; rows are checked like
``bizra run`` and only valid, non-duplicate votes are counted) into a BlockGraph, then /readyz
turns 200. Endpoints that read the graph answer 503 until then. The node key is
DIR/node_key.secret (0600; created from libsodium's CSPRNG if missing; only its public key is
logged). Metrics: engine.metrics on PROMETHEUS_PORT via prometheus_client's own server.

Decisions (tested in tests/test_service*.py):
- BIZRA_API_TOKEN unset or empty: the node serves everything except the endpoints that need it
  (POST /poi/generate and POST /jobs answer 503 naming BIZRA_API_TOKEN); startup logs that
  signing is disabled. A wrong or missing Bearer token is 401, checked before the body is read;
  tokens compare in constant time. Ingest (/blocks, /attestations) is open like a gossip port:
  attestations are signature-checked, blocks are not signed, so keep the port on a trusted network.
- Errors are JSON ``{"detail": "<field>: <problem>"}``: 400 for a body that is not JSON (or an
  unreadable Arrow/Parquet upload), 422 for wrong types, bad hex, wrong lengths, unknown fields
  (schema errors also carry ``errors`` with FastAPI's locations; rows of a list are named
  ``[i].field``), 404 unknown block/job, 413 body over BIZRA_MAX_BODY_BYTES (counted as it
  streams, not only from Content-Length), 415 unknown upload type, 429 job queue full, 503 not
  ready. A 500 is a bug: logged with its traceback, answered without details.
- verify_batch: a JSON row with bad hex or a wrong length is a 422 (the client's JSON is wrong);
  an Arrow/Parquet row with a wrong width or a body that does not decode is ``valid: false``
  (one bad row must not sink a 100K-row upload). /poi/verify with a body_hex that does not
  decode (domain tag, version, poi_score) is a 422: it is not an attestation.
- Votes are deduplicated by attestation id (SHA-256 of the body), across requests, for the life
  of the process (a set of ids; 32 bytes + overhead per counted vote).
- The live graph answers for the whole message set; the *reported* finalized chain only ever
  grows: if a late message makes the recomputed chain not extend it, a safety fault is recorded
  (GET /head) and the reported chain is kept (DESIGN section 5: never revert); it then stays
  where it is until the conflict is gone or an operator restarts the node.
- /poi/generate defaults: chain_id 1, validator_index = the node key's row in the validator
  table (else 0), epoch = wall clock since the dataset genesis time in 384 s epochs, target =
  the current head (else zero), poi_score 0, timestamp now, nonce a random u64.

Example::

    app = create_app(ServiceConfig.from_env("data"))
    # uvicorn.run(app, host="127.0.0.1", port=9944)
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import hmac
import io
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import polars as pl
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
    attestation_ids,
    attestation_to_json,
    binary_to_array,
    decode_bodies,
    hex_to_bytes,
    well_formed_bodies,
)
from engine.blockgraph import BlockGraph
from engine.dataset import (
    CHAIN_ID,
    EPOCH_US,
    GENESIS_TIME_US,
    read_blocks,
    read_validators,
)
from engine.errors import BizraError, CodecError, InputError, Reason
from engine.jobs_runner import JobQueueFull, JobRunner, JobSpec
from engine.metrics import Metrics, RequestMetrics
from engine.microbatch import MicroBatcher
from engine.verify import resolve_backend, resolve_batch, resolve_threads, verify_many

__all__ = ["ServiceConfig", "add_cli", "cmd_serve", "create_app", "main", "serve"]

log = logging.getLogger("bizra.service")
MiB = 1 << 20
U32, U64 = 2**32 - 1, 2**64 - 1
HEX32 = r"^(0[xX])?[0-9a-fA-F]{64}$"
HEX64 = r"^(0[xX])?[0-9a-fA-F]{128}$"
HEX110 = r"^(0[xX])?[0-9a-fA-F]{220}$"


# ---- configuration -----------------------------------------------------------------------


def _env_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"{name}: not an integer: {raw!r}") from None
    if not lo <= value <= hi:
        raise InputError(f"{name}: must be within {lo}..{hi}, got {value}")
    return value


@dataclasses.dataclass(frozen=True)
class ServiceConfig:
    """Everything the service reads from its environment (DESIGN section 6), resolved once."""

    data_dir: Path
    host: str = "127.0.0.1"
    rpc_port: int = 9944
    prometheus_port: int = 9464
    metrics_enabled: bool = True
    api_token: str | None = None
    max_body_bytes: int = 16 * MiB
    batch_max: int = 256
    batch_wait_s: float = 0.001
    bps: int = 6667
    job_queue: int = 4

    @classmethod
    def from_env(cls, data_dir: str | os.PathLike[str], host: str = "127.0.0.1",
                 env: Mapping[str, str] | None = None) -> ServiceConfig:
        """Read RPC_PORT, PROMETHEUS_PORT, METRICS_ENABLED, BIZRA_API_TOKEN, BIZRA_MAX_BODY_BYTES and
        BIZRA_MICROBATCH_MAX / BIZRA_MICROBATCH_WAIT_US (1 / 0 turn coalescing off, for comparisons).

        Example: ``ServiceConfig.from_env("data", env={"RPC_PORT": "8080"}).rpc_port == 8080``.
        """
        env = os.environ if env is None else env
        flag = env.get("METRICS_ENABLED", "1").strip().lower()
        if flag not in ("0", "1", "true", "false", "yes", "no", "on", "off", ""):
            raise InputError(f"METRICS_ENABLED: expected 0 or 1, got {flag!r}")
        return cls(
            data_dir=Path(data_dir), host=host,
            rpc_port=_env_int(env, "RPC_PORT", 9944, 0, 65535),
            prometheus_port=_env_int(env, "PROMETHEUS_PORT", 9464, 0, 65535),
            metrics_enabled=flag in ("1", "true", "yes", "on", ""),
            api_token=env.get("BIZRA_API_TOKEN") or None,
            max_body_bytes=_env_int(env, "BIZRA_MAX_BODY_BYTES", 16 * MiB, 1024, 1 << 31),
            batch_max=_env_int(env, "BIZRA_MICROBATCH_MAX", 256, 1, 16384),
            batch_wait_s=_env_int(env, "BIZRA_MICROBATCH_WAIT_US", 1000, 0, 1_000_000) / 1e6,
        )


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


# ---- uploads: JSON rows, Arrow IPC stream, Parquet -> columns ---------------------------


@dataclasses.dataclass(frozen=True)
class Upload:
    """Attestation columns of one request; ``well_formed`` is False where a width is wrong or the
    body does not decode (Arrow/Parquet rows only: in JSON such a row is a 422)."""

    body: np.ndarray  # (n, 110) uint8
    signature: np.ndarray  # (n, 64) uint8
    public_key: np.ndarray  # (n, 32) uint8
    well_formed: np.ndarray  # bool[n]


_WIDTHS = {"body": BODY_SIZE, "signature": 64, "public_key": 32}
_MEDIA = {"application/vnd.apache.arrow.stream": ("Arrow IPC stream", pl.read_ipc_stream),
          "application/vnd.apache.parquet": ("Parquet file", pl.read_parquet)}


def _json_rows(raw: bytes) -> dict[str, np.ndarray]:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the parser's stack
        raise HTTPException(400, f"body: invalid JSON ({exc})") from None
    rows = doc.get("attestations") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise CodecError("body: expected a JSON list of attestations")
    cols: dict[str, list[Any]] = {name: [] for name in _WIDTHS}
    for i, row in enumerate(rows):  # JSON has no columns: one pass to pick the fields, then columns
        if not isinstance(row, dict):
            raise CodecError(f"[{i}]: expected an object, got {type(row).__name__}")
        extra = set(row) - {"body", "body_hex", "signature", "public_key"}
        if extra:
            raise CodecError(f"[{i}].{min(extra)}: unknown field")
        if ("body" in row) == ("body_hex" in row):
            raise CodecError(f"[{i}].body: give exactly one of body or body_hex")
        for name in _WIDTHS:
            value = row.get(name, row.get("body_hex")) if name == "body" else row.get(name)
            if not isinstance(value, str) or not value.isascii():  # isascii: no lone surrogates reach Polars
                field = name if name != "body" or "body" in row else "body_hex"
                raise CodecError(f"[{i}].{field}: expected a hex string, got {type(value).__name__} {value!r:.40}")
            cols[name].append(value)
    out = {}
    for name, width in _WIDTHS.items():  # hex decoding as Polars expressions over the column
        s = pl.Series(name, cols[name], dtype=pl.String).str.strip_prefix("0x").str.strip_prefix("0X")
        bad = ~s.str.contains(f"^[0-9a-fA-F]{{{2 * width}}}$")
        if bad.any():
            row = int(bad.arg_max())
            raise CodecError(f"[{row}].{name}: bad hex or not {width} bytes: {cols[name][row][:40]!r}")
        out[name] = binary_to_array(s.str.decode("hex"), width, name) if len(s) else np.zeros((0, width), np.uint8)
    return out


def _fixed(df: pl.DataFrame, name: str, width: int) -> tuple[np.ndarray, np.ndarray]:
    if name not in df.columns:
        raise CodecError(f"{name}: missing column")
    col = df[name]
    if col.dtype != pl.Binary:
        raise CodecError(f"{name}: expected a binary column, got {col.dtype}")
    ok = (col.bin.size() == width).fill_null(False).to_numpy()
    arr = np.zeros((len(col), width), np.uint8)
    if ok.any():
        arr[ok] = binary_to_array(col.filter(pl.Series(ok)), width, name)
    return arr, ok


def parse_upload(content_type: str, raw: bytes) -> Upload:
    """Columns from a JSON list (hex), an Arrow IPC stream or a Parquet file.

    Example: ``parse_upload("application/json", b'[{"body": "0x..", "signature": "..", "public_key": ".."}]')``.
    """
    media = content_type.split(";")[0].strip().lower()
    if media in ("", "application/json"):
        c = _json_rows(raw)
        ok = np.ones(len(c["body"]), bool)
    elif media in _MEDIA:
        what, read = _MEDIA[media]
        try:
            df = read(io.BytesIO(raw))
        except Exception as exc:  # Polars raises several unrelated types for a corrupt upload
            raise HTTPException(400, f"body: not a readable {what} ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})") from None
        c, ok = {}, np.ones(len(df), bool)
        for name, width in _WIDTHS.items():
            c[name], good = _fixed(df, name, width)
            ok &= good
    else:
        raise HTTPException(415, f"content-type: {media!r} not accepted (application/json, {', '.join(_MEDIA)})")
    ok &= well_formed_bodies(c["body"])
    return Upload(c["body"], c["signature"], c["public_key"], ok)


# ---- live node state ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What readers see: replaced whole after every change, never mutated, so finality checks
    read it without the lock. ``finalized_at`` is the *reported* finalized chain."""

    heights: dict[bytes, int]
    finalized_at: dict[bytes, int | None]
    chain: tuple[bytes, ...]
    head: bytes | None
    head_json: dict[str, Any]


_EMPTY = Snapshot({}, {}, (), None, {})
_MAX_VALIDATOR_INDEX = 1 << 24  # as bizra run


def _hex(h: bytes | None) -> str | None:
    return None if h is None else "0x" + h.hex()


class NodeState:
    """Validators, the live BlockGraph (guarded by ``lock``: it is not thread-safe) and the node key.

    Example: ``s = NodeState(Path("data")); s.load(); s.snapshot.head``.
    """

    def __init__(self, data_dir: Path, bps: int = 6667) -> None:
        self.data_dir, self.bps = Path(data_dir), bps
        self.lock = threading.Lock()
        self.ready, self.error = False, None
        self.snapshot = _EMPTY
        self.chain_id = CHAIN_ID
        self.faults: list[dict[str, Any]] = []
        self._seen: set[bytes] = set()  # attestation ids already counted (dedup by body, never signature)
        self._heights_for = -1

    def current_epoch(self, now_us: int) -> int:
        return max(0, (now_us - GENESIS_TIME_US) // EPOCH_US)

    def load(self) -> None:
        """Node key, validators, blocks, attestations; sets ``ready`` or ``error`` (logged)."""
        try:
            self._load_key()
            self._load_data()
            self.ready = True
            log.info("ready: %d blocks, head %s", len(self.snapshot.heights), _hex(self.snapshot.head))
        except (BizraError, OSError, ValueError) as exc:  # expected: a bad or missing input file
            self.error = " ".join(str(exc).split())
            log.error("loading %s failed: %s", self.data_dir, self.error)
        except Exception as exc:  # a bug: still say so on /readyz instead of loading forever
            self.error = f"internal error: {type(exc).__name__}: {exc}"
            log.exception("loading %s failed", self.data_dir)

    def _load_key(self) -> None:
        path = self.data_dir / "node_key.secret"
        if not path.exists():
            keymod.write_secret_keys(path, keymod.random_seeds(1))  # libsodium CSPRNG, file 0600
            log.info("created node key %s", path)
        seeds = keymod.read_secret_keys(path)
        if len(seeds) != 1:
            raise InputError(f"{path}: expected exactly one key, found {len(seeds)}")
        self.node_seed = seeds
        self.node_public_key = keymod.keypairs_from_seeds(seeds)[0][0].tobytes()
        log.info("node public key 0x%s", self.node_public_key.hex())  # never the secret

    def _load_data(self) -> None:
        df = read_validators(self.data_dir / "validators.parquet")
        idx = df["index"].to_numpy().astype(np.int64)
        size = int(idx.max()) + 1 if len(idx) else 1
        if size > _MAX_VALIDATOR_INDEX:  # the tables below are indexed by validator index
            raise InputError(f"validators.parquet: validator index {size - 1} too large (max {_MAX_VALIDATOR_INDEX - 1})")
        self.weights = np.zeros(size, np.int64)
        self.weights[idx] = df["weight"].to_numpy()
        self.registered = np.zeros(size, bool)
        self.registered[idx] = True
        self.keys = np.zeros((size, 32), np.uint8)
        self.keys[idx] = binary_to_array(df["public_key"], 32)
        mine = np.flatnonzero((self.keys == np.frombuffer(self.node_public_key, np.uint8)).all(axis=1) & self.registered)
        self.node_index = int(mine[0]) if len(mine) else 0
        self.graph = BlockGraph(self.weights, bps=self.bps)
        blocks = self.data_dir / "blocks.parquet"
        if blocks.exists():
            b = read_blocks(blocks)
            if len(b) and b["height"].max() >= 2**63:
                raise InputError(f"{blocks}: height {b['height'].max()} out of range")
            self.add_blocks(list(zip(_rows(b["hash"]), _rows(b["parent"]), b["height"].cast(pl.Int64).to_list())))
        atts = self.data_dir / "attestations.parquet"
        if atts.exists():
            self._load_attestations(atts)
        with self.lock:
            self._refresh()
        self._warm_up()

    def _warm_up(self) -> None:
        """One honest verification before ready, so the first request does not pay for loading the
        verifier's compiled kernels (seconds on a cold Numba cache)."""
        body = np.zeros((1, BODY_SIZE), np.uint8)
        sig = keymod.sign_many(body, self.node_seed, threads=1)
        verify_many(body, sig, np.frombuffer(self.node_public_key, np.uint8).reshape(1, 32))

    def _load_attestations(self, path: Path, chunk_rows: int = 262_144) -> None:
        """Stream the file in chunks; a row with a wrong width is malformed (as in ``bizra run``),
        not a reason to refuse the whole file."""
        try:
            scan = pl.scan_parquet(path).select(list(_WIDTHS))
            n = scan.select(pl.len()).collect().item()
        except Exception as exc:  # Polars raises several unrelated types for a corrupt or odd file
            raise InputError(f"{path}: unreadable attestations ({str(exc).splitlines()[0][:160]})") from None
        tally: dict[str, int] = {}
        for lo in range(0, n, chunk_rows):  # once per chunk
            df = scan.slice(lo, chunk_rows).collect()
            (body, ok_b), (sig, ok_s), (pk, ok_k) = (_fixed(df, name, w) for name, w in _WIDTHS.items())
            counts = self.add_attestations(Upload(body, sig, pk, ok_b & ok_s & ok_k & well_formed_bodies(body)),
                                           results=False)
            for reason, k in counts["reasons"].items():
                tally[reason] = tally.get(reason, 0) + k
        log.info("loaded %s: %d rows %s", path, n, tally)

    def add_blocks(self, rows: list[tuple[bytes, bytes, int]]) -> dict[str, Any]:
        """Ingest (hash, parent, height or -1) rows; per row accepted / waiting / rejected(reason)."""
        if not rows:
            return {"rows": 0, "accepted": 0, "waiting": 0, "rejected": 0, "results": []}
        h, p, ht = zip(*rows)
        with self.lock:
            self.graph.add_blocks(list(h), list(p), np.array(ht, np.int64))
            rejected = self.graph.rejected_blocks()
            why = {(a.tobytes(), b.tobytes()): r for a, b, r in zip(rejected["hash"], rejected["parent"], rejected["reason"])}
            orphans = self.graph.orphan_blocks()
            waiting = {(a.tobytes(), b.tobytes()) for a, b in zip(orphans["hash"], orphans["parent"])}
            self._refresh()
        results = []
        for hh, pp, _ in rows:  # once per submitted block: the response is per row anyway
            reason = why.get((hh, pp))
            status = "rejected" if reason else ("waiting" if (hh, pp) in waiting else "accepted")
            results.append({"hash": _hex(hh), "status": status, "reason": reason})
        tally = {k: sum(r["status"] == k for r in results) for k in ("accepted", "waiting", "rejected")}
        return {"rows": len(rows), **tally, "results": results}

    def add_attestations(self, up: Upload, *, results: bool = True) -> dict[str, Any]:
        """Check rows like ``bizra run`` (malformed > unknown_validator > key_mismatch > bad_signature),
        count the valid, new ones as votes; ``orphan_target`` votes are kept and wait for their block."""
        fields = decode_bodies(up.body, strict=False)
        wf = up.well_formed & (fields["epoch"] <= np.uint64(2**63 - 1))
        vi = fields["validator_index"].astype(np.int64)
        known = vi < len(self.registered)
        safe = np.where(known, vi, 0)
        known &= self.registered[safe]
        key_ok = known & (up.public_key == self.keys[safe]).all(axis=1)
        check = np.flatnonzero(wf & key_ok)
        valid = np.zeros(len(vi), bool)
        if len(check):  # outside the lock: verification is the slow part and needs no graph
            valid[check] = verify_many(up.body[check], up.signature[check], up.public_key[check])
        reason = np.select([~wf, ~known, ~key_ok, ~valid], [Reason.MALFORMED.value, Reason.UNKNOWN_VALIDATOR.value,
                           Reason.KEY_MISMATCH.value, Reason.BAD_SIGNATURE.value], Reason.OK.value).astype(object)
        ids = attestation_ids(up.body)
        good = np.flatnonzero(valid)
        first = np.zeros(len(vi), bool)  # first valid row of each body: an invalid earlier copy does not count
        first[good[np.unique(ids[good].view("V32").reshape(-1), return_index=True)[1]]] = True
        with self.lock:
            raw = ids.tobytes()
            seen = np.zeros(len(vi), bool)
            seen[good] = [raw[32 * i:32 * i + 32] in self._seen for i in good.tolist()]
            dup = valid & (seen | ~first)
            reason[dup] = Reason.DUPLICATE.value
            new = np.flatnonzero(valid & ~dup)
            if len(new):
                self.graph.add_votes(vi[new], fields["epoch"][new].astype(np.int64), fields["target"][new], ids=ids[new])
                self._seen.update(raw[32 * i:32 * i + 32] for i in new.tolist())
                self._refresh()
        heights = self.snapshot.heights
        targets = fields["target"].tobytes()
        for i in new.tolist():  # a counted vote whose block has not arrived waits (DESIGN section 5)
            if targets[32 * i:32 * i + 32] not in heights:
                reason[i] = Reason.ORPHAN_TARGET.value
        accepted = valid & ~dup
        values, counts = np.unique(reason.astype(str), return_counts=True) if len(vi) else ([], [])
        out = {"rows": len(vi), "accepted": int(accepted.sum()), "reasons": dict(zip(map(str, values), map(int, counts)))}
        if results:  # per row, for a request; the startup load only wants the tally
            out["results"] = [{"id": "0x" + ids[i].tobytes().hex(), "accepted": bool(accepted[i]), "reason": reason[i]}
                              for i in range(len(vi))]
        return out

    def _refresh(self) -> None:
        """Recompute (under the lock) and publish a new Snapshot; the reported chain only grows."""
        g = self.graph
        hashes = g.block_hashes()
        raw = hashes.tobytes()
        if len(hashes) != self._heights_for:  # the height index changes only when blocks are accepted
            self._heights = {raw[32 * i:32 * i + 32]: h for i, h in enumerate(g.heights().tolist())}
            self._heights_for = len(hashes)
        flags = g.finalized_flags()
        fat = g.finalized_at_epochs()[flags].tolist()
        final = hashes[flags]
        order = np.argsort(g.heights()[flags], kind="stable").tolist()
        chain = [final[i].tobytes() for i in order]  # genesis first: index = height
        old = self.snapshot
        finalized_at = old.finalized_at
        # Before ready nothing was reported: loading chunk by chunk may reorder finality freely.
        extends = tuple(chain[:len(old.chain)]) == old.chain
        if extends or not self.ready:
            finalized_at = dict(old.finalized_at) if extends else {}
            for i in order[len(old.chain) if extends else 0:]:
                finalized_at[final[i].tobytes()] = fat[i] if fat[i] >= 0 else None
            reported = tuple(chain)
        else:  # never revert what was reported: keep it and say so (once per distinct recomputed tip)
            reported = old.chain
            recomputed = _hex(chain[-1] if chain else None)
            if not self.faults or self.faults[-1]["recomputed_tip"] != recomputed:
                fault = {"kind": "late_message_conflict", "reported_tip": _hex(old.chain[-1]),
                         "recomputed_tip": recomputed, "detected_at": time.time()}
                self.faults.append(fault)
                log.warning("finalized chain would revert; kept the reported one: %s", fault)
        head, tip = g.head(), reported[-1] if reported else None
        head_json = {
            "head": _hex(head), "head_height": self._heights.get(head) if head else None,
            "head_weight": g.weight(head) if head else 0,
            "finalized_tip": _hex(tip), "finalized_height": len(reported) - 1 if reported else None,
            "finalized_at_epoch": finalized_at.get(tip) if tip else None,
            "blocks": len(hashes), "orphan_blocks": len(g.orphan_blocks()["hash"]),
            "equivocators": len(g.equivocators()), "total_weight": int(self.weights.sum()),
            "safety_faults": [{"kind": "conflicting_candidate", "epoch": f.epoch, "candidate": _hex(f.candidate),
                               "finalized_tip": _hex(f.finalized_tip)} for f in g.safety_faults()] + self.faults,
        }
        self.snapshot = Snapshot(self._heights, finalized_at, reported, head, head_json)

    def head_json(self) -> dict[str, Any]:
        return self.snapshot.head_json


def _rows(series: pl.Series) -> list[bytes]:
    raw = binary_to_array(series, 32).tobytes()
    return [raw[i:i + 32] for i in range(0, len(raw), 32)]


# ---- middleware --------------------------------------------------------------------------


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


_ERROR_DOC: dict[int, dict[str, Any]] = {code: {"description": text} for code, text in {
    400: "the body is not JSON, or not a readable Arrow/Parquet upload",
    401: "missing or wrong Bearer token",
    404: "unknown block or job",
    413: "request body over BIZRA_MAX_BODY_BYTES",
    415: "content type not accepted",
    422: "a field is missing, of the wrong type, bad hex or the wrong length (detail names it)",
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


_PROTECTED = frozenset({"/api/v1/poi/generate", "/api/v1/jobs"})  # POST only; GET /jobs/{id} is open


class TokenGate:
    """Bearer-token check for POSTs to ``paths``, before anything reads the body (so a client
    without the token learns nothing, not even whether its JSON parses). The token is compared
    in constant time; with no token configured these endpoints answer 503."""

    def __init__(self, app: Any, token: str | None, paths: frozenset[str]) -> None:
        self.app, self.paths = app, paths
        self.token = None if token is None else token.encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") not in self.paths:
            return await self.app(scope, receive, send)
        if self.token is None:
            response = JSONResponse({"detail": "disabled: BIZRA_API_TOKEN is not set on this node "
                                     "(signing and job submission need it)"}, status_code=503)
            return await response(scope, receive, send)
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.token):
            response = JSONResponse({"detail": "authorization: missing or wrong Bearer token"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        await self.app(scope, receive, send)


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
        status = 429 if isinstance(exc, JobQueueFull) else 422
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

    @app.post("/api/v1/jobs", status_code=202, responses=_doc(401, 429, 503))
    async def submit_job(req: JobRequest) -> JSONResponse:
        job = app.state.jobs.submit(JobSpec(data=req.data, bps=req.bps, chunk_rows=req.chunk_rows))
        return JSONResponse(app.state.jobs.snapshot(job.id), status_code=202,
                            headers={"Location": f"/api/v1/jobs/{job.id}"})

    @app.get("/api/v1/jobs/{job_id}", responses={404: _ERROR_DOC[404], 422: _ERROR_DOC[422]})
    async def get_job(job_id: Annotated[str, PathParam(max_length=64)]) -> dict[str, Any]:
        snap = app.state.jobs.snapshot(job_id)
        if snap is None:
            raise HTTPException(404, f"job_id: unknown job {job_id[:64]!r}")
        return snap

    return app


# ---- CLI ---------------------------------------------------------------------------------


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``bizra serve`` on an argparse subparsers object; the command is ``cmd_serve``."""
    p = subparsers.add_parser(
        "serve", help="run the node's HTTP API and Prometheus metrics over a data directory",
        description="Serve the HTTP API on RPC_PORT (9944) and metrics on PROMETHEUS_PORT (9464, when "
        "METRICS_ENABLED=1). BIZRA_API_TOKEN enables signing and job submission; BIZRA_MAX_BODY_BYTES "
        "limits request bodies (16 MiB). BIZRA_VERIFY_BACKEND, POI_BATCH_VERIFY, BIZRA_THREADS as for "
        "bizra run.")
    p.add_argument("--data", type=Path, required=True, help="data directory (validators.parquet, blocks.parquet, ...)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_serve)
    return p


def _check_port(host: str, port: int, name: str) -> None:
    """One clear line for a port already taken (uvicorn would log a traceback-ish message and exit 1)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            s.bind((host, port))
        except OSError as exc:
            raise InputError(f"{name}: cannot listen on {host}:{port} ({exc.strerror})") from None


def serve(args: argparse.Namespace) -> int:
    """Run the service until SIGINT/SIGTERM. Example: ``serve(parser.parse_args(["serve", "--data", "d"]))``."""
    import uvicorn

    config = ServiceConfig.from_env(args.data, host=args.host)
    if not config.data_dir.is_dir():
        raise InputError(f"{config.data_dir}: no such data directory")
    resolve_backend(), resolve_threads(), resolve_batch()  # a bad BIZRA_* value stops here, not per request
    for name, port in (("RPC_PORT", config.rpc_port), ("PROMETHEUS_PORT", config.prometheus_port)):
        if name == "RPC_PORT" or config.metrics_enabled:
            _check_port(config.host, port, name)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(config), host=config.host, port=config.rpc_port, log_level=args.log_level,
                access_log=False, lifespan="on")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``bizra serve``: configuration errors are one stderr line, exit 2."""
    try:
        return serve(args)
    except (BizraError, ValueError) as exc:
        print(f"bizra serve: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -c "from engine.service import main; main(['--data', 'd'])"``."""
    parser = argparse.ArgumentParser(prog="bizra")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)
