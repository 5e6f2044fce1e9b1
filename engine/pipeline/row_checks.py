"""The row checks of an attestation, in one place for the batch job and the live service.

First failing check wins:

    malformed          a width is wrong, the body does not decode (or disagrees with a decoded
                       column given next to it), or its epoch is beyond MAX_EPOCH
    unknown_validator  the body's validator index is not in the validator table
    key_mismatch       the row's public key is not the registered key of that validator
    bad_signature      the signature does not verify the body under that key (ZIP-215)

A row that passes all four is a vote (code VOTE); what becomes of it (duplicate, equivocation,
orphan_target, superseded, ok) needs every vote and is decided by the caller.

``signature_valid`` is a fact, not a reason: the signature verifies the body under the
*registered* key of the validator index read at the version-1 offset, so a validly signed
version-2 body is ``malformed`` with ``signature_valid`` True. It is False where widths are
wrong, the index is unknown or the key is not the registered one (such rows are not verified).

Example::

    checks = check_rows(attestation_columns(df), load_validator_table("validators.parquet"))
    votes = checks.code == VOTE
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from engine.model.attestation import decode_bodies
from engine.model.chain import MAX_EPOCH
from engine.model.errors import Reason
from engine.tables.attestations import AttestationColumns
from engine.tables.validators import ValidatorTable
from engine.verification.api import verify_many

__all__ = ["CODE", "VOTE", "RowChecks", "check_rows"]

# A row's reason as stored (uint8): the checkpoint format's codes (engine.model.errors.Reason).
CODE = {r: np.uint8(r.code) for r in Reason}
VOTE = np.uint8(255)  # passed every row check; its reason is decided once every vote is known


@dataclasses.dataclass(frozen=True)
class RowChecks:
    """The outcome per row, the decoded body fields (rows that do not decode hold raw bytes), and
    the verify work done."""

    code: np.ndarray        # (n,) uint8: a Reason code, or VOTE
    sig_valid: np.ndarray   # (n,) bool
    fields: dict[str, np.ndarray]
    verified: int
    verify_s: float

    @property
    def validator(self) -> np.ndarray:
        """(n,) int64 validator index of every row."""
        return self.fields["validator_index"].astype(np.int64)


def check_rows(cols: AttestationColumns, validators: ValidatorTable, *, threads: int | None = None,
               backend: str | None = None) -> RowChecks:
    """The row checks of the module docstring over every row of ``cols`` (signatures verified in
    one verify_many call with ``threads``)."""
    fields = decode_bodies(cols.body, strict=False)
    malformed = ~cols.well_formed | (fields["epoch"] > np.uint64(MAX_EPOCH))
    vi = fields["validator_index"].astype(np.int64)
    known = vi < len(validators.registered)
    safe = np.where(known, vi, 0)
    known &= validators.registered[safe]
    key_ok = known & cols.widths_ok & (cols.public_key == validators.keys[safe]).all(axis=1)
    to_verify = np.flatnonzero(key_ok)
    sig_valid = np.zeros(len(vi), bool)
    t0 = time.perf_counter()
    if len(to_verify):
        sig_valid[to_verify] = verify_many(cols.body[to_verify], cols.signature[to_verify],
                                           cols.public_key[to_verify], threads=threads, backend=backend)
    verify_s = time.perf_counter() - t0
    code = np.select([malformed, ~known, ~key_ok, ~sig_valid],
                     [CODE[Reason.MALFORMED], CODE[Reason.UNKNOWN_VALIDATOR], CODE[Reason.KEY_MISMATCH],
                      CODE[Reason.BAD_SIGNATURE]], VOTE).astype(np.uint8)
    return RowChecks(code, sig_valid, fields, verified=len(to_verify), verify_s=verify_s)
