"""bizra: batch engine for Ed25519 Proof-of-Impact attestations and BlockGraph head/finality.

Example::

    from engine import verify_many
    ok = verify_many(bodies, signatures, public_keys)   # Numba ZIP-215 batch verifier
"""

from __future__ import annotations

from engine.attestation import (
    BODY_SIZE,
    AttestationBody,
    attestation_ids,
    attestations_frame,
    decode_bodies,
    encode_bodies,
)
from engine.blockgraph import BlockGraph, Equivocation, GraphReason, SafetyFault
from engine.dataset import generate_dataset, keygen
from engine.errors import CodecError, InputError, KeyAdmissionError, KeyReason, Reason
from engine.keys import check_admissible, sign_many
from engine.verify import VerifyColumns, to_columns, verify_many, verify_one

__version__ = "0.1.0"

__all__ = [
    "BODY_SIZE",
    "AttestationBody",
    "BlockGraph",
    "Equivocation",
    "GraphReason",
    "SafetyFault",
    "CodecError",
    "InputError",
    "KeyAdmissionError",
    "KeyReason",
    "Reason",
    "VerifyColumns",
    "attestation_ids",
    "attestations_frame",
    "check_admissible",
    "decode_bodies",
    "encode_bodies",
    "generate_dataset",
    "keygen",
    "sign_many",
    "to_columns",
    "verify_many",
    "verify_one",
]
