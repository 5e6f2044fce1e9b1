"""The service's parts on their own: micro-batcher, job runner, configuration, and the node state's
edge cases (loading window, tolerant startup load, a late message that would revert finality)."""
from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.support.app_harness import AUTH, TOKEN, config as _config, hex_of as _hex, running, signed_vote as _vote

from engine.verification import keys as keymod
from engine.model.attestation import binary_column
from engine.synthetic import generate_dataset
from engine.tables.validators import validators_frame
from engine.pipeline.job import run_job
from engine.service.node_state import NodeState
from engine.tables.uploads import parse_upload
from engine.service.config import ServiceConfig

# ---- micro-batcher -------------------------------------------------------------------------
















# ---- configuration -------------------------------------------------------------------------




# ---- node state ----------------------------------------------------------------------------


def test_endpoints_wait_for_the_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate_dataset(tmp_path, validators=4, blocks=6, attestations=0, seed=2, threads=1, progress=False)
    gate = threading.Event()
    real = NodeState._load_data
    monkeypatch.setattr(NodeState, "_load_data", lambda self: (gate.wait(30), real(self))[1])
    with running(_config(tmp_path)) as a:
        r = a("GET", "/readyz")
        assert r.status_code == 503 and r.json() == {"ready": False, "error": None}
        assert a("GET", "/api/v1/head").status_code == 503
        assert a("POST", "/api/v1/blocks", json={"blocks": []}, headers=AUTH).status_code == 503
        gate.set()
        assert a.wait_ready().status_code == 200
        assert a("GET", "/api/v1/head").json()["blocks"] == 6


def test_startup_load_counts_only_valid_rows_and_tolerates_bad_widths(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate_dataset(data, validators=6, blocks=10, attestations=80, seed=4, threads=1, progress=False,
                     bad_signature_rate=0.1, duplicate_rate=0.05, key_mismatch_rate=0.05, unknown_validator_rate=0.05)
    report = run_job(data, tmp_path / "out", threads=1, quiet=True)
    df = pl.read_parquet(data / "attestations.parquet").select("body", "signature", "public_key")
    short = df.head(1).with_columns(pl.col("signature").bin.slice(0, 10))  # a wrong width: malformed, not fatal
    pl.concat([df, short]).write_parquet(data / "attestations.parquet")
    node = NodeState(data)
    node.load()
    assert node.ready, node.error
    votes = sum(report.counts[r] for r in ("ok", "superseded", "equivocation", "orphan_target"))
    assert len(node._seen) == votes and votes < 80
    head = node.head_json()
    assert (head["head"], head["finalized_tip"]) == ("0x" + report.head, "0x" + report.finalized_tip)
    rows = [{"body": _hex(b), "signature": _hex(s), "public_key": _hex(k)} for b, s, k in df.head(5).iter_rows()]
    r = node.add_attestations(parse_upload("application/json", json.dumps(rows).encode()))
    assert {x["reason"] for x in r["results"]} <= {"duplicate", "bad_signature", "key_mismatch", "unknown_validator"}
    assert r["accepted"] == 0


def test_a_late_message_never_reverts_reported_finality(tmp_path: Path) -> None:
    seeds = keymod.derive_seeds(77, 3)
    pks, _ = keymod.keypairs_from_seeds(seeds)
    validators_frame(pks, np.ones(3, np.int64)).write_parquet(tmp_path / "validators.parquet")
    g0, b1, b2 = (hashlib.sha256(x).digest() for x in (b"g", b"b1", b"b2"))
    pl.DataFrame([binary_column("hash", np.frombuffer(g0 + b1 + b2, np.uint8).reshape(3, 32)),
                  binary_column("parent", np.frombuffer(bytes(32) + g0 + g0, np.uint8).reshape(3, 32)),
                  pl.Series("height", [0, 1, 1], dtype=pl.UInt64)]).write_parquet(tmp_path / "blocks.parquet")
    with running(ServiceConfig(data_dir=tmp_path, metrics_enabled=False, api_token=TOKEN)) as a:
        assert a.wait_ready().status_code == 200
        r = a("POST", "/api/v1/attestations", json=[_vote(seeds, v, 5, b1) for v in range(3)]).json()
        assert r["accepted"] == 3
        assert a("POST", "/api/v1/finality", json={"block_hash": _hex(b1)}).json()["finalized_at_epoch"] == 5
        a("POST", "/api/v1/attestations", json=[_vote(seeds, v, 4, b2) for v in range(3)])  # late: epoch 4 < 5
        a("POST", "/api/v1/attestations", json=[_vote(seeds, 0, 3, b2)])  # another refresh: one fault, not two
        assert a("POST", "/api/v1/finality", json={"block_hash": _hex(b1)}).json()["finalized"] is True
        assert a("POST", "/api/v1/finality", json={"block_hash": _hex(b2)}).json()["finalized"] is False
        faults = a("GET", "/api/v1/head").json()["safety_faults"]
        kinds = [f["kind"] for f in faults]
        assert kinds.count("late_message_conflict") == 1 and "conflicting_candidate" in kinds, faults
        late = next(f for f in faults if f["kind"] == "late_message_conflict")
        assert late["reported_tip"] == _hex(b1) and late["recomputed_tip"] == _hex(b2)
