"""The HTTP API against the ASGI app in-process (httpx.ASGITransport; no sockets).

Every success and error path of the service's endpoint list, the micro-batcher's coalescing, and
agreement of the API's verdicts with verify_many and libsodium. httpx's ASGITransport re-raises
any exception the app lets escape, so a 500 anywhere fails the test that caused it.
"""
from __future__ import annotations

import hashlib
import io
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import nacl.exceptions
import nacl.signing
import numpy as np
import polars as pl
import pytest

from engine.verification import keys as keymod
from engine.model.attestation import AttestationBody, binary_column, binary_to_array
from engine.synthetic import generate_dataset
from engine.pipeline.job import run_job
from engine.service.jobs_runner import JobRunner
from engine.service.metrics import METRIC_NAMES
from tests.support.app_harness import AUTH, TOKEN, Api, config as _config, hex_of as _hex, running, signed_vote as _vote
from engine.verification.api import verify_many

SEED = 5


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("node")
    generate_dataset(out, validators=8, blocks=24, attestations=240, seed=SEED, threads=2, progress=False,
                     bad_signature_rate=0.05, duplicate_rate=0.02, orphan_rate=0.02, key_mismatch_rate=0.02)
    return out


@pytest.fixture(scope="module")
def api(data: Path) -> Iterator[Api]:
    with running(_config(data)) as a:
        assert a.wait_ready().status_code == 200
        yield a


@pytest.fixture
def fresh(data: Path, tmp_path: Path) -> Iterator[Api]:
    """A node of its own (for tests that change the graph), on a copy of the dataset."""
    for name in ("validators.parquet", "blocks.parquet"):
        (tmp_path / name).write_bytes((data / name).read_bytes())
    with running(_config(tmp_path)) as a:
        assert a.wait_ready().status_code == 200
        yield a


def _rows(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    df = pl.read_parquet(data / "attestations.parquet")
    return (binary_to_array(df["body"], 110), binary_to_array(df["signature"], 64), binary_to_array(df["public_key"], 32))


def _libsodium(body: bytes, sig: bytes, pk: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(pk).verify(body, sig)
        return True
    except (nacl.exceptions.BadSignatureError, ValueError):
        return False


# ---- health, readiness, OpenAPI -------------------------------------------------------------


def test_health_ready_and_openapi(api: Api) -> None:
    assert api("GET", "/healthz").json() == {"status": "ok"}
    assert api("GET", "/readyz").json() == {"ready": True, "error": None}
    paths = api("GET", "/openapi.json").json()["paths"]
    for p in ("/api/v1/poi/generate", "/api/v1/poi/verify", "/api/v1/poi/verify_batch", "/api/v1/finality",
              "/api/v1/head", "/api/v1/blocks", "/api/v1/attestations", "/api/v1/jobs", "/api/v1/jobs/{job_id}",
              "/healthz", "/readyz"):
        assert p in paths, p


def test_not_ready_when_the_data_directory_cannot_load(tmp_path: Path) -> None:
    with running(_config(tmp_path)) as a:
        r = a.wait_ready()
        assert r.status_code == 503 and "validators.parquet" in r.json()["error"]
        assert a("GET", "/healthz").status_code == 200
        for method, url, body in (("GET", "/api/v1/head", None), ("POST", "/api/v1/finality", {"block_hash": "00" * 32})):
            r = a(method, url, json=body)
            assert r.status_code == 503 and "not ready" in r.json()["detail"]


def test_head_matches_the_batch_job(api: Api, data: Path, tmp_path: Path) -> None:
    report = run_job(data, tmp_path / "out", threads=2, quiet=True)
    head = api("GET", "/api/v1/head").json()
    assert head["head"] == "0x" + report.head and head["finalized_tip"] == "0x" + report.finalized_tip
    assert head["finalized_height"] == report.finalized_height and head["blocks"] == 24


# ---- generate ------------------------------------------------------------------------------


def test_generate_signs_with_the_node_key(api: Api, data: Path) -> None:
    before = api.sample("bizra_poi_generate_total")
    r = api("POST", "/api/v1/poi/generate", headers=AUTH,
            json={"evidence": "impact report #1", "epoch": 9, "poi_score": 250_000, "nonce": 7, "target": "ab" * 32})
    assert r.status_code == 200, r.text
    out = r.json()
    body = bytes.fromhex(out["body_hex"][2:])
    decoded = AttestationBody.decode(body)
    assert decoded.evidence_root == hashlib.sha256(b"impact report #1").digest()
    assert (decoded.epoch, decoded.poi_score, decoded.nonce, decoded.target) == (9, 250_000, 7, b"\xab" * 32)
    assert out["body"]["epoch"] == 9 and out["attestation_id"] == _hex(hashlib.sha256(body).digest())
    key_file = data / "node_key.secret"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    pk = keymod.keypairs_from_seeds(keymod.read_secret_keys(key_file))[0][0].tobytes()
    assert out["public_key"] == _hex(pk)
    assert _libsodium(body, bytes.fromhex(out["signature"][2:]), pk)
    assert out["timestamp"].endswith("Z")
    assert api.sample("bizra_poi_generate_total") == before + 1


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": TOKEN}])
def test_generate_refuses_without_the_token(api: Api, headers: dict[str, str]) -> None:
    r = api("POST", "/api/v1/poi/generate", json={"evidence": "x"}, headers=headers)
    assert r.status_code == 401 and "authorization" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"


def test_token_is_checked_before_the_body(api: Api) -> None:
    for url in ("/api/v1/poi/generate", "/api/v1/jobs"):
        assert api("POST", url, json={"evidence": 5, "bps": "x"}).status_code == 401
        assert api("POST", url, content=b"{", headers={"content-type": "application/json"}).status_code == 401


def test_generate_is_disabled_without_a_configured_token(data: Path) -> None:
    with running(_config(data, api_token=None)) as a:
        a.wait_ready()
        r = a("POST", "/api/v1/poi/generate", json={"evidence": "x"}, headers=AUTH)
        assert r.status_code == 503 and "BIZRA_API_TOKEN" in r.json()["detail"]
        assert a("POST", "/api/v1/jobs", json={}, headers=AUTH).status_code == 503


@pytest.mark.parametrize("payload, field", [
    ({}, "evidence"), ({"evidence": ""}, "evidence"), ({"evidence": 5}, "evidence"),
    ({"evidence": "x", "poi_score": 1_000_001}, "poi_score"), ({"evidence": "x", "epoch": "3"}, "epoch"),
    ({"evidence": "x", "target": "0x12"}, "target"), ({"evidence": "x", "nonce": True}, "nonce"),
    ({"evidence": "x", "colour": 1}, "colour"),
])
def test_generate_rejects_bad_fields_by_name(api: Api, payload: dict, field: str) -> None:
    r = api("POST", "/api/v1/poi/generate", json=payload, headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"].startswith(field), r.text


# ---- verify --------------------------------------------------------------------------------


def test_verify_agrees_with_verify_many_and_libsodium(api: Api, data: Path) -> None:
    body, sig, pk = _rows(data)
    body, sig, pk = body[:48], sig[:48].copy(), pk[:48]
    sig[::5, 40] ^= 0x10  # corrupt every fifth S, so both verdicts occur
    expected = verify_many(body, sig, pk)
    assert expected.tolist() == [_libsodium(body[i].tobytes(), sig[i].tobytes(), pk[i].tobytes()) for i in range(48)]
    assert 0 < expected.sum() < 48
    total, fails = api.sample("bizra_poi_verify_total"), api.sample("bizra_poi_verify_fail_total")
    for i in range(48):
        shape = ({"body_hex": _hex(body[i])} if i % 2 else
                 {"body": {k: (_hex(v) if isinstance(v, bytes) else v)
                           for k, v in vars(AttestationBody.decode(body[i].tobytes())).items()}})
        r = api("POST", "/api/v1/poi/verify", json={**shape, "signature": _hex(sig[i]), "public_key": _hex(pk[i])})
        assert r.status_code == 200 and r.json()["valid"] == bool(expected[i]), (i, r.text)
        assert r.json()["latency_us"] >= 0
    assert api.sample("bizra_poi_verify_total") == total + 48
    assert api.sample("bizra_poi_verify_fail_total") == fails + int((~expected).sum())


@pytest.mark.parametrize("backend", ["libsodium", "numba"])
def test_either_verify_backend_serves_the_api(api: Api, data: Path, backend: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIZRA_VERIFY_BACKEND", backend)  # read per call: the rollback switch needs no restart
    body, sig, pk = _rows(data)
    expected = verify_many(body[:16], sig[:16], pk[:16], backend="libsodium")
    rows = [{"body_hex": _hex(body[i]), "signature": _hex(sig[i]), "public_key": _hex(pk[i])} for i in range(16)]
    assert api("POST", "/api/v1/poi/verify_batch", json=rows).json()["valid"] == expected.tolist()
    assert [r.json()["valid"] for r in api.gather([("POST", "/api/v1/poi/verify", {"json": x}) for x in rows])] \
        == expected.tolist()


def test_concurrent_verifies_are_coalesced(api: Api, data: Path) -> None:
    body, sig, pk = _rows(data)
    sig = sig[:32].copy()
    sig[1::3, 3] ^= 1  # a mix, so a waiter handed another row's verdict would show
    expected = verify_many(body[:32], sig, pk[:32])
    count = api.sample("bizra_poi_verify_batch_size_count")
    rows = api.sample("bizra_poi_verify_batch_size_sum")
    ones = api.sample("bizra_poi_verify_batch_size_bucket", {"le": "1.0"})
    responses = api.gather([("POST", "/api/v1/poi/verify", {"json": {"body_hex": _hex(body[i]), "signature": _hex(sig[i]),
                                                                       "public_key": _hex(pk[i])}}) for i in range(32)])
    assert [r.json()["valid"] for r in responses] == expected.tolist()
    batches = api.sample("bizra_poi_verify_batch_size_count") - count
    assert api.sample("bizra_poi_verify_batch_size_sum") - rows == 32
    assert batches < 32 and batches - (api.sample("bizra_poi_verify_batch_size_bucket", {"le": "1.0"}) - ones) >= 1


@pytest.mark.parametrize("payload, field", [
    ({"signature": "00" * 64, "public_key": "00" * 32}, "body"),
    ({"body_hex": "00" * 110, "body": {}, "signature": "00" * 64, "public_key": "00" * 32}, "body"),
    ({"body_hex": "00" * 110, "public_key": "00" * 32}, "signature"),
    ({"body_hex": "00" * 110, "signature": "zz" * 64, "public_key": "00" * 32}, "signature"),
    ({"body_hex": "00" * 110, "signature": "00" * 63, "public_key": "00" * 32}, "signature"),
    ({"body_hex": "00" * 110, "signature": "00" * 64, "public_key": 12}, "public_key"),
    ({"body_hex": "00" * 109, "signature": "00" * 64, "public_key": "00" * 32}, "body_hex"),
    ({"body_hex": "00" * 110, "signature": "00" * 64, "public_key": "00" * 32}, "domain tag"),
    ({"body": {"chain_id": "1"}, "signature": "00" * 64, "public_key": "00" * 32}, "body.chain_id"),
])
def test_verify_rejects_malformed_requests_by_field(api: Api, payload: dict, field: str) -> None:
    r = api("POST", "/api/v1/poi/verify", json=payload)
    assert r.status_code == 422 and r.json()["detail"].startswith(field), r.text


@pytest.mark.parametrize("raw, status", [(b"{", 400), (b"[]", 422), (b"null", 422), (b'"x"', 422), (b"\xff\xfe", 400)])
def test_malformed_json_is_a_client_error(api: Api, raw: bytes, status: int) -> None:
    for url in ("/api/v1/poi/verify", "/api/v1/finality", "/api/v1/blocks"):
        r = api("POST", url, content=raw, headers={"content-type": "application/json", **AUTH})
        assert r.status_code == status and r.json()["detail"].startswith("body"), (url, r.text)


# ---- verify_batch --------------------------------------------------------------------------


def _frame(body: np.ndarray, sig: np.ndarray, pk: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame([binary_column("body", body), binary_column("signature", sig), binary_column("public_key", pk)])


def test_verify_batch_json_arrow_and_parquet(api: Api, data: Path) -> None:
    body, sig, pk = _rows(data)
    expected = verify_many(body, sig, pk)
    assert expected.tolist() == [_libsodium(body[i].tobytes(), sig[i].tobytes(), pk[i].tobytes()) for i in range(len(body))]
    rows = [{"body": _hex(body[i]), "signature": _hex(sig[i]), "public_key": _hex(pk[i])} for i in range(len(body))]
    r = api("POST", "/api/v1/poi/verify_batch", json=rows)
    assert r.status_code == 200 and r.json()["valid"] == expected.tolist() and r.json()["rows"] == len(body)
    df = _frame(body, sig, pk)
    short = pl.DataFrame({"body": [body[0].tobytes()], "signature": [sig[0].tobytes()[:63]], "public_key": [pk[0].tobytes()]})
    df = pl.concat([df, short])  # a wrong-width row is invalid, not an error
    for media, write in (("application/vnd.apache.arrow.stream", pl.DataFrame.write_ipc_stream),
                         ("application/vnd.apache.parquet", pl.DataFrame.write_parquet)):
        buf = io.BytesIO()
        write(df, buf)
        r = api("POST", "/api/v1/poi/verify_batch", content=buf.getvalue(), headers={"content-type": media})
        assert r.status_code == 200 and r.json()["valid"] == expected.tolist() + [False], media


@pytest.mark.parametrize("content, media, status, detail", [
    (b"not arrow", "application/vnd.apache.arrow.stream", 400, "body"),
    (b"PAR1junk", "application/vnd.apache.parquet", 400, "body"),
    (b"a,b", "text/csv", 415, "content-type"),
    (b"[{", "application/json", 400, "body"),
    (b'[{"body": "00", "signature": "00", "public_key": "00"}]', "application/json", 422, "[0].body"),
    (b'[{"body_hex": "' + b"00" * 110 + b'", "signature": "zz", "public_key": "00"}]', "application/json", 422, "[0].signature"),
    (b'[{"signature": "00", "public_key": "00"}]', "application/json", 422, "[0].body"),
    (b'[5]', "application/json", 422, "[0]"),
    (b'{"rows": []}', "application/json", 422, "body"),
])
def test_verify_batch_rejects_bad_uploads(api: Api, content: bytes, media: str, status: int, detail: str) -> None:
    r = api("POST", "/api/v1/poi/verify_batch", content=content, headers={"content-type": media})
    assert r.status_code == status and r.json()["detail"].startswith(detail), r.text


def test_verify_batch_upload_missing_a_column(api: Api) -> None:
    buf = io.BytesIO()
    pl.DataFrame({"body": [b"x"], "signature": [b"y"]}).write_ipc_stream(buf)
    r = api("POST", "/api/v1/poi/verify_batch", content=buf.getvalue(),
            headers={"content-type": "application/vnd.apache.arrow.stream"})
    assert r.status_code == 422 and r.json()["detail"].startswith("public_key")


# ---- finality ------------------------------------------------------------------------------


def test_finality(api: Api) -> None:
    head = api("GET", "/api/v1/head").json()
    checks = api.sample("bizra_finality_checks_total")
    r = api("POST", "/api/v1/finality", json={"block_hash": head["finalized_tip"]}).json()
    assert r["finalized"] and r["height"] == head["finalized_height"]
    assert r["finalized_at_epoch"] == head["finalized_at_epoch"]
    r = api("POST", "/api/v1/finality", json={"block_hash": head["head"].upper().replace("0X", "0x")}).json()
    assert r["height"] == head["head_height"] and r["finalized"] == (head["head"] == head["finalized_tip"])
    r = api("POST", "/api/v1/finality", json={"block_hash": "0x" + "ee" * 32})
    assert r.status_code == 404 and "unknown block" in r.json()["detail"]
    for bad in ({"block_hash": "0x1234"}, {"block_hash": None}, {}, {"block_hash": "g" * 64}, {"hash": "00" * 32}):
        r = api("POST", "/api/v1/finality", json=bad)
        assert r.status_code == 422 and r.json()["detail"].split(":")[0] in ("block_hash", "hash"), r.text
    assert api.sample("bizra_finality_checks_total") == checks + 3
    assert api.sample("bizra_finality_check_seconds_count") >= 3


# ---- ingest --------------------------------------------------------------------------------


def test_blocks_and_attestations_move_head_and_finality(fresh: Api) -> None:
    head = fresh("GET", "/api/v1/head").json()
    parent, height = bytes.fromhex(head["head"][2:]), head["head_height"]
    a, b = hashlib.sha256(b"new-a").digest(), hashlib.sha256(b"new-b").digest()
    r = fresh("POST", "/api/v1/blocks", json={"blocks": [{"hash": _hex(b), "parent": _hex(a)}]}, headers=AUTH).json()
    assert r["results"][0]["status"] == "waiting"
    r = fresh("POST", "/api/v1/blocks", json={"blocks": [
        {"hash": _hex(a), "parent": _hex(parent), "height": height + 1},
        {"hash": _hex(a), "parent": _hex(bytes(32)[:-1] + b"\x01")},
        {"hash": _hex(hashlib.sha256(b"g2").digest()), "parent": _hex(bytes(32))},
        {"hash": _hex(hashlib.sha256(b"h").digest()), "parent": _hex(parent), "height": 1}]}, headers=AUTH).json()
    assert [x["status"] for x in r["results"]] == ["accepted"] + ["rejected"] * 3, r
    assert [x["reason"] for x in r["results"][1:]] == ["duplicate_hash", "second_genesis", "wrong_height"]
    assert fresh("POST", "/api/v1/finality", json={"block_hash": _hex(b)}).json()["height"] == height + 2
    seeds = keymod.derive_seeds(SEED, 8)
    epoch = 10_000
    votes = [_vote(seeds, v, epoch, b) for v in range(8)]
    bad = dict(_vote(seeds, 0, epoch + 1, b), signature=_vote(seeds, 1, epoch + 1, b)["signature"])
    mismatch = dict(_vote(seeds, 2, epoch + 1, b), public_key=votes[3]["public_key"])
    unknown = _vote(keymod.derive_seeds(SEED, 40), 30, epoch + 1, b)
    orphan = _vote(seeds, 4, epoch + 1, hashlib.sha256(b"nowhere").digest())
    fixed = _vote(seeds, 0, epoch + 1, b)  # the same body as `bad`, validly signed: not a duplicate of it
    r = fresh("POST", "/api/v1/attestations", json=votes + [votes[0], bad, mismatch, unknown, orphan, fixed]).json()
    assert [x["reason"] for x in r["results"]] == ["ok"] * 8 + ["duplicate", "bad_signature", "key_mismatch",
                                                              "unknown_validator", "orphan_target", "ok"]
    assert r["accepted"] == 10 and [x["accepted"] for x in r["results"]][8:] == [False] * 4 + [True, True]
    head = fresh("GET", "/api/v1/head").json()
    assert head["head"] == _hex(b) and head["finalized_tip"] == _hex(b)
    fin = fresh("POST", "/api/v1/finality", json={"block_hash": _hex(a)}).json()
    assert fin["finalized"] and fin["finalized_at_epoch"] == epoch
    r = fresh("POST", "/api/v1/attestations", json=[votes[1]]).json()
    assert r["results"][0]["reason"] == "duplicate"


@pytest.mark.parametrize("payload, field", [
    ({"blocks": [{"hash": "00", "parent": "00" * 32}]}, "blocks.0.hash"),
    ({"blocks": [{"hash": "00" * 32}]}, "blocks.0.parent"),
    ({"blocks": [{"hash": "00" * 32, "parent": "00" * 32, "height": -1}]}, "blocks.0.height"),
    ({"blocks": "x"}, "blocks"), ({}, "blocks"),
])
def test_blocks_rejects_bad_fields_by_name(api: Api, payload: dict, field: str) -> None:
    r = api("POST", "/api/v1/blocks", json=payload, headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"].startswith(field), r.text


# ---- body limit ----------------------------------------------------------------------------


def test_body_limit_counts_streamed_bytes(data: Path) -> None:
    with running(_config(data, max_body_bytes=4096)) as a:
        a.wait_ready()
        r = a("POST", "/api/v1/poi/verify_batch", content=b"[" + b" " * 5000 + b"]")
        assert r.status_code == 413 and "4096" in r.json()["detail"]

        async def chunks() -> Any:  # no Content-Length: only counting the stream can catch it
            for _ in range(10):
                yield b" " * 1000
        for url in ("/api/v1/poi/verify_batch", "/api/v1/poi/verify", "/api/v1/attestations"):
            r = a("POST", url, content=chunks(), headers={"content-type": "application/json"})
            assert r.status_code == 413, (url, r.text)
        assert a("POST", "/api/v1/poi/verify_batch", json=[]).json()["rows"] == 0
        assert a.sample("bizra_http_requests_total", {"method": "POST", "route": "/api/v1/poi/verify_batch",
                                                      "status": "413"}) >= 1


# ---- jobs ----------------------------------------------------------------------------------


def test_job_runs_to_completion(api: Api, data: Path) -> None:
    assert api("POST", "/api/v1/jobs", json={}).status_code == 401
    r = api("POST", "/api/v1/jobs", json={"chunk_rows": 100}, headers=AUTH)
    assert r.status_code == 202 and r.headers["location"].endswith(r.json()["id"])
    for _ in range(600):  # bounded: 60 s
        job = api("GET", r.headers["location"]).json()
        if job["state"] in ("succeeded", "failed"):
            break
        api.portal.call(anyio.sleep, 0.1)
    assert job["state"] == "succeeded", job
    assert job["progress"]["rows_done"] == job["progress"]["rows_total"] == 240
    assert all(Path(p).exists() for p in job["result"]["files"].values())
    assert api("GET", "/api/v1/jobs/nope").status_code == 404
    assert api("POST", f"/api/v1/jobs/{job['id']}/cancel").status_code == 401  # cancelling needs the token too
    r = api("POST", f"/api/v1/jobs/{job['id']}/cancel", headers=AUTH)
    assert r.status_code == 409 and "already succeeded" in r.json()["detail"]
    assert api("POST", "/api/v1/jobs/nope/cancel", headers=AUTH).status_code == 404


@pytest.mark.parametrize("payload, field", [({"data": "../"}, "data"), ({"data": "/etc"}, "data"),
                                            ({"data": "missing"}, "data"), ({"data": "a\x00b"}, "data"),
                                            ({"data": "x" * 300}, "data"), ({"bps": 5000}, "bps"),
                                            ({"chunk_rows": 0}, "chunk_rows")])
def test_job_rejects_bad_requests(api: Api, payload: dict, field: str) -> None:
    r = api("POST", "/api/v1/jobs", json=payload, headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"].startswith(field), r.text


def test_job_queue_is_bounded(data: Path, tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(*args: Any, **kw: Any) -> Any:
        started.set()
        release.wait(30)
        raise ValueError("stopped by the test")

    runner = JobRunner(data, tmp_path / "jobs", max_queued=1, run=slow)
    with running(_config(data), runner=runner) as a:
        codes = [a("POST", "/api/v1/jobs", json={}, headers=AUTH).status_code]
        assert started.wait(10)  # the first job left the queue: it is running
        codes += [a("POST", "/api/v1/jobs", json={}, headers=AUTH).status_code for _ in range(3)]
        release.set()
        assert codes[:2] == [202, 202] and 429 in codes[2:], codes  # one running, one queued, then full


# ---- metrics and robustness ----------------------------------------------------------------


def test_metric_names_are_exposed(api: Api) -> None:
    text = api.app.state.metrics.exposition().decode()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    for name in METRIC_NAMES:
        assert name in names or f"{name}_bucket" in names, name
    assert "process_cpu_seconds_total" in names
    assert 'le="1e-06"' in text  # microsecond resolution
    api("GET", "/api/v1/jobs/0123")
    api("GET", "/no/such/path")
    for route, status in (("/api/v1/jobs/{job_id}", "404"), ("other", "404")):  # templates: bounded labels
        assert api.sample("bizra_http_requests_total", {"method": "GET", "route": route, "status": status}) >= 1


GARBAGE: list[Callable[[], Any]] = [lambda: None, lambda: 0, lambda: -1, lambda: 1.5, lambda: "", lambda: "0x",
                                    list, dict, lambda: [None], lambda: {"": None}, lambda: True,
                                    lambda: 2**70, lambda: [[[]]]]


def test_no_request_shape_makes_a_5xx(api: Api) -> None:
    posts = ["/api/v1/poi/generate", "/api/v1/poi/verify", "/api/v1/poi/verify_batch", "/api/v1/finality",
             "/api/v1/blocks", "/api/v1/attestations", "/api/v1/jobs"]
    for url in posts:
        for make in GARBAGE:
            for payload in (make(), {"body": make(), "signature": make(), "public_key": make(), "evidence": make(),
                                     "block_hash": make(), "blocks": make(), "data": make()}):
                r = api("POST", url, json=payload, headers=AUTH)
                assert r.status_code < 500, (url, payload, r.status_code, r.text)
        for raw in (b"", b"\x00" * 64, b'{"a":', b"[" * 5000 + b"]" * 5000, b'{"evidence": "\\ud800"}',
                    b'{"block_hash": "\\ud800"}', b'[{"body": "\\ud800", "signature": "", "public_key": ""}]'):
            r = api("POST", url, content=raw, headers={**AUTH, "content-type": "application/json"})
            assert 400 <= r.status_code < 500, (url, raw[:20], r.status_code, r.text)


def test_parquet_decompression_bomb_is_refused_before_decoding(api: Api) -> None:
    """200,000 copies of one row encode to a few KB; the footer's row count alone is refused."""
    buf = io.BytesIO()
    row = {"body": [bytes(110)], "signature": [bytes(64)], "public_key": [bytes(32)]}
    pl.DataFrame(row).select(pl.all().repeat_by(200_000).explode()).write_parquet(buf, compression="zstd")
    raw = buf.getvalue()
    assert len(raw) < 50_000
    r = api("POST", "/api/v1/poi/verify_batch", content=raw, headers={"content-type": "application/vnd.apache.parquet"})
    assert r.status_code == 413 and "declares 200,000 rows" in r.json()["detail"], r.text


def test_openapi_version_is_the_package_version(api: Api) -> None:
    import importlib.metadata

    assert api("GET", "/openapi.json").json()["info"]["version"] == importlib.metadata.version("bizra")


# ---- guarded writes, bounded pools, the smaller items ------------------------------------------


def test_blocks_need_the_token(data: Path, api: Api) -> None:
    block = {"blocks": [{"hash": _hex(hashlib.sha256(b"x").digest()), "parent": _hex(hashlib.sha256(b"y").digest())}]}
    before = api("GET", "/api/v1/head").json()["orphan_blocks"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = api("POST", "/api/v1/blocks", json=block, headers=headers)
        assert r.status_code == 401 and r.json()["detail"] == "authorization: missing or wrong Bearer token", r.text
    assert api("GET", "/api/v1/head").json()["orphan_blocks"] == before  # nothing was added
    with running(_config(data, api_token=None)) as open_node:
        r = open_node("POST", "/api/v1/blocks", json=block)
        assert r.status_code == 503 and "BIZRA_API_TOKEN" in r.json()["detail"]


def _orphans(n: int, tag: bytes) -> list[dict[str, str]]:
    return [{"hash": _hex(hashlib.sha256(tag + bytes([i])).digest()), "parent": _hex(hashlib.sha256(tag + b"p" + bytes([i])).digest())}
            for i in range(n)]


def test_blocks_waiting_for_a_parent_are_a_bounded_pool(data: Path, tmp_path: Path) -> None:
    for name in ("validators.parquet", "blocks.parquet"):
        (tmp_path / name).write_bytes((data / name).read_bytes())
    with running(_config(tmp_path, max_waiting_blocks=3)) as node:
        node.wait_ready()
        post = lambda blocks: node("POST", "/api/v1/blocks", json={"blocks": blocks}, headers=AUTH)  # noqa: E731
        too_many = post(_orphans(4, b"a"))
        assert too_many.status_code == 413 and "4 of these blocks would wait" in too_many.json()["detail"]
        assert "BIZRA_MAX_WAITING_BLOCKS=3" in too_many.json()["detail"]
        chain = _orphans(2, b"b")
        assert post(chain).status_code == 200
        full = post(_orphans(2, b"c"))
        assert full.status_code == 429 and "2 blocks already wait" in full.json()["detail"], full.text
        assert node("GET", "/api/v1/head").json()["orphan_blocks"] == 2  # the refused request added nothing
        head = node("GET", "/api/v1/head").json()
        parents = [{"hash": b["parent"], "parent": head["head"]} for b in chain]  # connects both waiting blocks
        assert post(parents + _orphans(3, b"d")).status_code == 200  # 2 leave the pool, 3 join: 3 wait
        assert node("GET", "/api/v1/head").json()["orphan_blocks"] == 3
        assert post(_orphans(1, b"e")).status_code == 429


def test_votes_waiting_for_their_block_are_a_bounded_pool(data: Path, tmp_path: Path) -> None:
    for name in ("validators.parquet", "blocks.parquet"):
        (tmp_path / name).write_bytes((data / name).read_bytes())
    seeds = keymod.derive_seeds(SEED, 8)
    nowhere = [hashlib.sha256(b"nowhere%d" % i).digest() for i in range(3)]
    with running(_config(tmp_path, max_waiting_votes=2)) as node:
        node.wait_ready()
        r = node("POST", "/api/v1/attestations", json=[_vote(seeds, v, 50_000, nowhere[0]) for v in range(3)])
        assert r.status_code == 413 and "BIZRA_MAX_WAITING_VOTES=2" in r.json()["detail"], r.text
        r = node("POST", "/api/v1/attestations", json=[_vote(seeds, v, 50_000, nowhere[1]) for v in range(2)])
        assert r.status_code == 200 and [x["reason"] for x in r.json()["results"]] == ["orphan_target"] * 2
        head = node("GET", "/api/v1/head").json()
        r = node("POST", "/api/v1/attestations", json=[_vote(seeds, 5, 50_001, nowhere[2]),
                                                      _vote(seeds, 6, 50_001, bytes.fromhex(head["head"][2:]))])
        assert r.status_code == 429 and "2 votes already wait" in r.json()["detail"], r.text
        assert node("POST", "/api/v1/attestations",  # a vote for a known block does not wait: accepted
                    json=[_vote(seeds, 6, 50_001, bytes.fromhex(head["head"][2:]))]).json()["accepted"] == 1
        block = {"hash": _hex(nowhere[1]), "parent": head["head"]}
        assert node("POST", "/api/v1/blocks", json={"blocks": [block]}, headers=AUTH).status_code == 200
        assert node("GET", "/api/v1/head").json()["waiting_votes"] == 0  # their block arrived: the pool drained
        r = node("POST", "/api/v1/attestations", json=[_vote(seeds, 5, 50_002, nowhere[2])])
        assert r.status_code == 200 and r.json()["results"][0]["reason"] == "orphan_target"


def test_json_endpoints_refuse_other_types_empty_bodies_and_huge_numbers(api: Api) -> None:
    valid = {"body_hex": "00" * 110, "signature": "00" * 64, "public_key": "00" * 32}
    import json as _json
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "text/json"):
        r = api("POST", "/api/v1/poi/verify", content=_json.dumps(valid).encode(), headers={"content-type": ctype})
        assert r.status_code == 415 and r.json()["detail"].startswith(f"content-type: '{ctype}' not accepted"), r.text
    for url in ("/api/v1/poi/verify", "/api/v1/finality", "/api/v1/poi/generate", "/api/v1/jobs"):
        r = api("POST", url, content=b"", headers={"content-type": "application/json", **AUTH})
        assert r.status_code == 400 and r.json()["detail"] == "body: empty request body, expected a JSON object", (url, r.text)
    fields = {"chain_id": 1, "validator_index": 0, "epoch": 0, "target": "00" * 32, "evidence_root": "00" * 32,
              "poi_score": 0, "timestamp_us": 0, "nonce": 0}
    raw = _json.dumps({"body": fields, "signature": "00" * 64, "public_key": "00" * 32})
    raw = raw.replace('"epoch": 0', '"epoch": 1' + "0" * 5000)  # 10^5000: past Python's own int limit
    r = api("POST", "/api/v1/poi/verify", content=raw.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"].startswith("body.epoch: an integer of 5,001 digits"), r.text
    r = api("POST", "/api/v1/poi/generate", json={"evidence": "e", "nonce": 10**45}, headers=AUTH)
    assert r.status_code == 400 and r.json()["detail"].startswith("nonce: an integer of 46 digits"), r.text
    r = api("POST", "/api/v1/poi/generate", json={"evidence": "e", "nonce": 10**30}, headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"].startswith("nonce: "), r.text  # in reach: the range check
    r = api("POST", "/api/v1/poi/verify", content=_json.dumps(valid).encode(),
            headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 422 and "domain tag" in r.json()["detail"]  # JSON with parameters is still JSON
