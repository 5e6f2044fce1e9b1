"""The row checks, one cascade for the batch job and the service: first failing check wins
(malformed > unknown_validator > key_mismatch > bad_signature), signature_valid is a fact."""
from __future__ import annotations

import numpy as np

from engine.model.attestation import encode_bodies
from engine.model.chain import MAX_EPOCH
from engine.model.errors import Reason
from engine.pipeline import chunks, row_checks
from engine.pipeline.row_checks import CODE, VOTE, check_rows
from engine.service import node_state
from engine.tables.attestations import AttestationColumns
from engine.tables.validators import ValidatorTable
from engine.verification.keys import derive_seeds, keypairs_from_seeds, sign_many


def _bodies(validators, epochs=None) -> np.ndarray:
    n = len(validators)
    return encode_bodies({"chain_id": np.ones(n, np.uint32), "validator_index": np.array(validators, np.uint32),
                          "epoch": np.array(epochs if epochs is not None else [1] * n, np.uint64),
                          "target": np.ones((n, 32), np.uint8), "evidence_root": np.zeros((n, 32), np.uint8),
                          "poi_score": np.zeros(n, np.uint32), "timestamp_us": np.zeros(n, np.uint64),
                          "nonce": np.arange(n, dtype=np.uint64)})


def test_cascade_order_and_signature_validity() -> None:
    seeds = derive_seeds(3, 4)
    pks, _ = keypairs_from_seeds(seeds)
    table = ValidatorTable(np.array([5, 5, 5], np.int64), np.array([True, True, False]), pks[:3].copy())
    # rows: honest(0) | bad signature(0) | key of validator 1 signing as 0 | unregistered index 2 |
    # index 9 outside the table | version 2 validly signed | honest but epoch 2^63 | wrong width
    bodies = _bodies([0, 0, 0, 2, 9, 1, 1, 1], epochs=[1, 1, 1, 1, 1, 1, 1, 1])
    bodies[5, 8] = 2  # version 2: does not decode
    signer = np.array([0, 0, 1, 2, 3, 1, 1, 1])
    sigs = sign_many(bodies, seeds, key_index=signer)
    sigs[1, 40] ^= 1
    row_pks = pks[signer].copy()
    big_epoch = _bodies([1], epochs=[MAX_EPOCH + 1])
    bodies[6] = big_epoch[0]
    sigs[6] = sign_many(big_epoch, seeds[1:2])[0]
    widths_ok = np.array([True] * 7 + [False])
    well_formed = widths_ok & np.array([True] * 5 + [False, True, False])
    checks = check_rows(AttestationColumns(bodies, sigs, row_pks, widths_ok, well_formed), table, threads=2)
    want = [VOTE, CODE[Reason.BAD_SIGNATURE], CODE[Reason.KEY_MISMATCH], CODE[Reason.UNKNOWN_VALIDATOR],
            CODE[Reason.UNKNOWN_VALIDATOR], CODE[Reason.MALFORMED], CODE[Reason.MALFORMED], CODE[Reason.MALFORMED]]
    assert checks.code.tolist() == [int(c) for c in want]
    # a fact: verifies under the registered key (also for the version-2 and the big-epoch body)
    assert checks.sig_valid.tolist() == [True, False, False, False, False, True, True, False]
    assert checks.verified == 4 and checks.validator.tolist() == [0, 0, 0, 2, 9, 1, 1, 1]


def test_one_cascade_for_the_job_and_the_service() -> None:
    assert chunks.check_rows is row_checks.check_rows is node_state.check_rows
    assert int(VOTE) == 255 and {int(CODE[r]) for r in Reason} == set(range(len(Reason)))
