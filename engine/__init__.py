"""bizra: batch engine for Ed25519 Proof-of-Impact attestations and BlockGraph head/finality.

The package is layered (README, "How the code is organised"); this module only re-exports the
names most users need. Example::

    from engine import verify_many
    ok = verify_many(bodies, signatures, public_keys)   # Numba ZIP-215 batch verifier
"""

from __future__ import annotations

import importlib.metadata

from engine.consensus.blockgraph import BlockGraph, Equivocation, GraphReason, SafetyFault
from engine.model.attestation import (
    BODY_SIZE,
    AttestationBody,
    attestation_ids,
    attestations_frame,
    decode_bodies,
    encode_bodies,
)
from engine.model.errors import CodecError, InputError, KeyAdmissionError, KeyReason, Reason
from engine.synthetic import generate_dataset
from engine.tables.validators import keygen
from engine.verification.api import VerifyColumns, to_columns, verify_many, verify_one
from engine.verification.keys import check_admissible, sign_many

try:
    __version__ = importlib.metadata.version("bizra")
except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "0+unknown"

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
