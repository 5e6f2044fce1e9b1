"""The service's parts on their own: micro-batcher, job runner, configuration, and the node state's
edge cases (loading window, tolerant startup load, a late message that would revert finality)."""
from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from test_service import TOKEN, _config, _hex, _vote, running

from engine import keys as keymod
from engine.attestation import binary_column
from engine.dataset import generate_dataset, validators_frame
from engine.errors import InputError
from engine.job import run_job
from engine.jobs_runner import JobConflict, JobRunner, JobSpec
from engine.microbatch import MicroBatcher
from engine.node_state import NodeState, parse_upload
from engine.service import ServiceConfig

# ---- micro-batcher -------------------------------------------------------------------------


def test_microbatcher_caps_batches_and_returns_each_row_its_own_result() -> None:
    sizes: list[int] = []

    def parity(bodies: list[bytes], sigs: list[bytes], pks: list[bytes]) -> np.ndarray:
        return np.array([b[0] % 2 == 0 for b in bodies])

    async def scenario() -> list[bool]:
        mb = MicroBatcher(max_batch=8, max_wait_s=0.01, verify_fn=parity, on_batch=sizes.append)
        try:
            return list(await asyncio.gather(*(mb.verify(bytes([i]), b"", b"") for i in range(40))))
        finally:
            await mb.close()

    assert asyncio.run(scenario()) == [i % 2 == 0 for i in range(40)]
    assert sum(sizes) == 40 and max(sizes) == 8 and len(sizes) == 5


def test_microbatcher_failure_reaches_every_waiter_and_the_worker_survives() -> None:
    calls = []

    def flaky(bodies: list[bytes], *_: Any) -> np.ndarray:
        calls.append(len(bodies))
        if len(calls) == 1:
            raise RuntimeError("backend broke")
        return np.ones(len(bodies), bool)

    async def scenario() -> tuple[list[Any], bool]:
        mb = MicroBatcher(max_batch=4, max_wait_s=0.005, verify_fn=flaky)
        first = await asyncio.gather(*(mb.verify(b"x", b"", b"") for _ in range(3)), return_exceptions=True)
        second = await mb.verify(b"y", b"", b"")
        await mb.close()
        return first, second

    first, second = asyncio.run(scenario())
    assert all(isinstance(e, RuntimeError) for e in first) and second is True


def test_microbatcher_without_coalescing_sends_one_row_per_call() -> None:
    sizes: list[int] = []

    async def scenario() -> None:
        mb = MicroBatcher(max_batch=1, max_wait_s=0.0, verify_fn=lambda b, s, k: np.ones(len(b), bool),
                          on_batch=sizes.append)
        await asyncio.gather(*(mb.verify(b"x", b"", b"") for _ in range(10)))
        await mb.close()

    asyncio.run(scenario())
    assert sizes == [1] * 10


def test_microbatcher_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(max_batch=0)
    with pytest.raises(ValueError, match="max_wait_s"):
        MicroBatcher(max_wait_s=2)


# ---- job runner ----------------------------------------------------------------------------


def _wait(runner: JobRunner, job_id: str) -> dict[str, Any]:
    for _ in range(600):  # bounded: 30 s
        snap = runner.snapshot(job_id)
        assert snap is not None
        if snap["state"] in ("succeeded", "failed", "cancelled"):
            return snap
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_job_runner_out_names_conflicts_and_cancel(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    started, release = threading.Event(), threading.Event()
    outs: list[Path] = []

    def fake(data: Path, out: Path, **kw: Any) -> Any:  # a job of 100 chunks, cancellable between them
        outs.append(out)
        for done in range(1, 101):
            started.set()
            release.wait(10)
            kw["progress"](done, 100)
        raise InputError("finished without a cancel")

    runner = JobRunner(tmp_path, tmp_path / "jobs", run=fake)
    try:
        first = runner.submit(JobSpec(data="ds", out="nightly-1"))
        assert first.out_dir == (tmp_path / "jobs" / "nightly-1").resolve()
        with pytest.raises(JobConflict, match="'nightly-1' is in use by job"):
            runner.submit(JobSpec(data="ds", out="nightly-1"))
        for bad in ("../x", ".hidden", "a/b", "", "x" * 129, "-flag"):
            with pytest.raises(InputError, match="out: .* is not a plain name"):
                runner.submit(JobSpec(data="ds", out=bad))
        queued = runner.submit(JobSpec(data="ds"))
        assert queued.out_dir.name == queued.id
        assert runner.cancel(queued.id).state == "cancelled"  # queued: cancelled at once, never run
        assert started.wait(10)
        runner.cancel(first.id)
        release.set()
        snap = _wait(runner, first.id)
        assert snap["state"] == "cancelled" and "submit the same out again to resume" in snap["error"]
        assert snap["progress"]["rows_done"] == 1  # stopped after the chunk in flight, not at the end
        with pytest.raises(JobConflict, match="already cancelled"):
            runner.cancel(first.id)
        assert runner.cancel("nope") is None
        again = runner.submit(JobSpec(data="ds", out="nightly-1"))  # the name is free once the job ended
        runner.cancel(again.id)
        assert _wait(runner, again.id)["state"] == "cancelled"
        assert outs[0] == first.out_dir and queued.out_dir not in outs  # the cancelled queued job never ran
    finally:
        release.set()
        runner.close()


def test_job_runner_reports_a_failed_job_and_keeps_running(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    seen = []

    def fake(data: Path, out: Path, **kw: Any) -> Any:
        seen.append(kw["chunk_rows"])
        kw["progress"](5, 10)
        raise InputError(f"{data}/validators.parquet: no such file")

    runner = JobRunner(tmp_path, tmp_path / "jobs", run=fake)
    try:
        snap = _wait(runner, runner.submit(JobSpec(data="empty", chunk_rows=7)).id)
        assert snap["state"] == "failed" and "validators.parquet: no such file" in snap["error"]
        assert snap["progress"]["rows_done"] == 5 and seen == [7]
        assert _wait(runner, runner.submit(JobSpec(data="empty")).id)["state"] == "failed"  # still serving
        with pytest.raises(InputError, match="outside"):
            runner.submit(JobSpec(data="empty/../.."))
    finally:
        runner.close()


# ---- configuration -------------------------------------------------------------------------


def test_config_from_environment() -> None:
    c = ServiceConfig.from_env("d", env={})
    assert (c.rpc_port, c.prometheus_port, c.metrics_enabled, c.api_token, c.max_body_bytes) == (9944, 9464, True, None, 16 << 20)
    c = ServiceConfig.from_env("d", env={"RPC_PORT": "8080", "PROMETHEUS_PORT": "9000", "METRICS_ENABLED": "0",
                                         "BIZRA_API_TOKEN": "t", "BIZRA_MAX_BODY_BYTES": "4096",
                                         "BIZRA_MICROBATCH_MAX": "1", "BIZRA_MICROBATCH_WAIT_US": "0"})
    assert (c.rpc_port, c.prometheus_port, c.metrics_enabled, c.api_token, c.max_body_bytes) == (8080, 9000, False, "t", 4096)
    assert (c.batch_max, c.batch_wait_s) == (1, 0.0)
    assert ServiceConfig.from_env("d", env={"BIZRA_API_TOKEN": ""}).api_token is None
    for env, name in (({"RPC_PORT": "x"}, "RPC_PORT"), ({"PROMETHEUS_PORT": "70000"}, "PROMETHEUS_PORT"),
                      ({"METRICS_ENABLED": "maybe"}, "METRICS_ENABLED"), ({"BIZRA_MAX_BODY_BYTES": "1"}, "BIZRA_MAX_BODY_BYTES")):
        with pytest.raises(InputError, match=name):
            ServiceConfig.from_env("d", env=env)


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
        assert a("POST", "/api/v1/blocks", json={"blocks": []}).status_code == 503
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
