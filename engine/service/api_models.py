"""The request and response models of the node's HTTP API (pydantic): they are the OpenAPI
document, and FastAPI checks every request body against them before a route runs.

Example: ``VerifyRequest.model_validate({"body_hex": "..", "signature": "..", "public_key": ".."}).message()``.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from engine.model.attestation import BODY_SIZE, AttestationBody, hex_to_bytes
from engine.model.chain import MAX_EPOCH, MAX_HEIGHT

__all__ = ["HEX32", "HEX64", "HEX110", "UPLOAD_DOC", "BlockIn", "BlocksRequest", "BodyFields", "FinalityRequest",
           "FinalityResponse", "GenerateRequest", "JobRequest", "VerifyRequest", "VerifyResponse"]

U32, U64 = 2**32 - 1, 2**64 - 1
HEX32 = r"^(0[xX])?[0-9a-fA-F]{64}$"
HEX64 = r"^(0[xX])?[0-9a-fA-F]{128}$"
HEX110 = r"^(0[xX])?[0-9a-fA-F]{220}$"


Hex32 = Annotated[str, Field(pattern=HEX32, description="32 bytes as hex, optional 0x")]
Hex64 = Annotated[str, Field(pattern=HEX64, description="64 bytes as hex, optional 0x")]
Hex110 = Annotated[str, Field(pattern=HEX110, description="the 110-byte body as hex, optional 0x")]
U32Int = Annotated[StrictInt, Field(ge=0, le=U32)]
U64Int = Annotated[StrictInt, Field(ge=0, le=U64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BodyFields(_Strict):
    """The decoded body (docs/design.md, "Attestations"; the domain tag is implied)."""

    chain_id: U32Int
    validator_index: U32Int
    epoch: Annotated[StrictInt, Field(ge=0, le=MAX_EPOCH)]
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
    epoch: Annotated[StrictInt, Field(ge=0, le=MAX_EPOCH)] | None = None
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
    height: Annotated[StrictInt, Field(ge=0, le=MAX_HEIGHT)] | None = None


class BlocksRequest(_Strict):
    blocks: Annotated[list[BlockIn], Field(max_length=1_000_000)]


class JobRequest(_Strict):
    data: Annotated[str, Field(min_length=1, max_length=4096)] = "."
    bps: Annotated[StrictInt, Field(gt=5000, le=10000)] = 6667
    chunk_rows: Annotated[StrictInt, Field(ge=1, le=1 << 24)] = 65536
    out: Annotated[str, Field(min_length=1, max_length=128)] | None = None


# One JSON row of verify_batch / attestations: hex body (or body_hex), signature, public_key.
ROW_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["signature", "public_key"],
    "properties": {"body": {"type": "string", "pattern": HEX110}, "body_hex": {"type": "string", "pattern": HEX110},
                   "signature": {"type": "string", "pattern": HEX64}, "public_key": {"type": "string", "pattern": HEX32}},
    "oneOf": [{"required": ["body"]}, {"required": ["body_hex"]}],
}
UPLOAD_DOC = {
    "requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "array", "items": ROW_SCHEMA}},
        "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
    }},
}
