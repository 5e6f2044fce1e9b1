"""The request models: what FastAPI checks before a route runs (and what the OpenAPI document says)."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine.model.attestation import AttestationBody
from engine.model.chain import MAX_EPOCH
from engine.model.errors import CodecError
from engine.service.api_models import BlockIn, BodyFields, GenerateRequest, JobRequest, VerifyRequest

FIELDS = {"chain_id": 1, "validator_index": 2, "epoch": 3, "target": "11" * 32, "evidence_root": "0x" + "22" * 32,
          "poi_score": 10, "timestamp_us": 5, "nonce": 6}


def test_body_fields_encode_the_attestation() -> None:
    body = BodyFields(**FIELDS).encode()
    assert AttestationBody.decode(body).epoch == 3 and len(body) == 110
    with pytest.raises(ValidationError):
        BodyFields(**{**FIELDS, "epoch": MAX_EPOCH + 1})
    with pytest.raises(ValidationError):
        BodyFields(**{**FIELDS, "poi_score": 1_000_001})
    with pytest.raises(ValidationError):
        BodyFields(**{**FIELDS, "chain_id": "1"})  # strict: no strings for integers


def test_verify_request_takes_exactly_one_body() -> None:
    body = BodyFields(**FIELDS).encode()
    sig, pk = "00" * 64, "00" * 32
    assert VerifyRequest(body_hex=body.hex(), signature=sig, public_key=pk).message() == body
    assert VerifyRequest(body=FIELDS, signature=sig, public_key=pk).message() == body
    for kw in ({}, {"body": FIELDS, "body_hex": body.hex()}):
        with pytest.raises(ValidationError, match="exactly one"):
            VerifyRequest(signature=sig, public_key=pk, **kw)
    with pytest.raises(CodecError, match="version"):  # decodes only a real attestation
        VerifyRequest(body_hex=(body[:8] + b"\x02" + body[9:]).hex(), signature=sig, public_key=pk).message()


def test_other_requests() -> None:
    assert JobRequest().bps == 6667 and JobRequest(out="a").out == "a"
    with pytest.raises(ValidationError):
        JobRequest(bps=5000)
    with pytest.raises(ValidationError):
        BlockIn(hash="11" * 32, parent="00" * 32, height=-1)
    with pytest.raises(ValidationError):
        GenerateRequest(evidence="")
    with pytest.raises(ValidationError):
        GenerateRequest(evidence="x", extra=1)  # unknown fields are refused
