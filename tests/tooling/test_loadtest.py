"""``bizra loadtest``: argument checks (loopback only, bounded), the gate verdicts, and short real
runs against a ``bizra serve`` subprocess whose own counters must match what the tool sent."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.serve_helpers import free_port, start_serve, stop, wait_ready

from engine.tooling import loadtest
from engine.cli import main
from engine.synthetic import generate_dataset
from engine.model.errors import BizraError

TOKEN = "loadtest-token-7"


def _run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["loadtest", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


# ---- arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://10.0.0.1:9944", "http://example.com", "http://[::2]:9944",
                                 "http://127.0.0.2:9944", "http://0.0.0.0:9944"])
def test_non_loopback_url_is_refused_in_one_line(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, err = _run_cli(capsys, "--url", url, "--duration", "1s")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("bizra loadtest: error: --url: refusing non-loopback host"), err


@pytest.mark.parametrize("url", ["https://127.0.0.1:9944", "ftp://localhost/", "127.0.0.1:9944", "http://127.0.0.1:port",
                                 "http://127.0.0.1:9944/api/v1"])
def test_url_that_is_not_plain_http_is_refused(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, _, err = _run_cli(capsys, "--url", url)
    assert code == 2 and err.startswith("bizra loadtest: error: --url:") and err.count("\n") == 1, err


def test_loopback_urls_are_accepted_and_normalized() -> None:
    assert loadtest.check_loopback("http://127.0.0.1:9944/") == "http://127.0.0.1:9944"
    assert loadtest.check_loopback("http://[::1]:9944") == "http://[::1]:9944"
    assert loadtest.check_loopback("http://localhost:1") == "http://localhost:1"


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60.0), ("500ms", 0.5), ("2m", 120.0), ("1.5", 1.5),
                                               ("1h", 3600.0), (" 3 s ", 3.0)])
def test_durations_parse(text: str, seconds: float) -> None:
    assert loadtest.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10x", "", "s", "-5s", "0s", "0", "2h", "1e3", "nan"])
def test_bad_duration_is_one_line_error(capsys: pytest.CaptureFixture[str], text: str) -> None:
    code, _, err = _run_cli(capsys, "--url", "http://127.0.0.1:9", f"--duration={text}")
    assert code == 2 and err.startswith("bizra loadtest: error: --duration:") and err.count("\n") == 1, err


@pytest.mark.parametrize(("argv", "message"), [
    (["--users", "0"], "--users: must be >= 1"),
    (["--users", "5000"], "--users: at most"),
    (["--max-requests", "0"], "--max-requests: must be >= 1"),
    (["--batch-rows", "0"], "--batch-rows: must be >= 1"),
    (["--processes", "0"], "--processes: must be >= 1"),
    (["--think=-1s"], "--think: not a duration"),
    (["--mix", "verify,teleport"], "--mix: unknown endpoint 'teleport'"),
    (["--mix", "verify=0"], "--mix: verify: weight must be > 0"),
    (["--mix", "verify=x"], "--mix: verify: weight is not a number"),
    (["--mix", "finality,finality"], "--mix: finality given twice"),
    (["--mix", "generate"], "--mix: generate needs a token"),
    (["--metrics-url", "http://192.168.1.1:9464/metrics"], "--metrics-url: refusing non-loopback host"),
])
def test_bad_arguments_are_one_line_errors(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                           argv: list[str], message: str) -> None:
    monkeypatch.delenv("BIZRA_API_TOKEN", raising=False)
    code, out, err = _run_cli(capsys, "--url", "http://127.0.0.1:9", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err, err


def test_default_mix_has_generate_only_with_a_token() -> None:
    assert list(loadtest.parse_mix(None, token=None)) == ["verify", "verify_batch", "finality"]
    assert list(loadtest.parse_mix(None, token="t")) == ["verify", "verify_batch", "finality", "generate"]
    assert loadtest.parse_mix("finality=3, verify", token=None) == {"finality": 3.0, "verify": 1.0}


def test_phases_share_duration_and_requests_by_weight() -> None:
    cfg = loadtest.LoadConfig(url="http://127.0.0.1:1", duration_s=60, max_requests=100,
                              mix={"verify": 1.0, "finality": 3.0})
    assert cfg.phases() == [{"mix": {"verify": 1.0}, "seconds": 15.0, "quota": 25},
                            {"mix": {"finality": 1.0}, "seconds": 45.0, "quota": 75}]
    mixed = dataclasses.replace(cfg, mode="mixed").phases()
    assert mixed == [{"mix": {"verify": 1.0, "finality": 3.0}, "seconds": 60, "quota": 100}]


def test_token_comes_from_the_environment_and_is_never_in_the_config_repr() -> None:
    parser = argparse.ArgumentParser()
    loadtest.add_cli(parser.add_subparsers())
    args = parser.parse_args(["loadtest", "--url", "http://127.0.0.1:9944"])
    cfg = loadtest.LoadConfig.from_args(args, env={"BIZRA_API_TOKEN": "s3cret"})
    assert cfg.token == "s3cret" and "generate" in cfg.mix and "s3cret" not in repr(cfg)
    assert cfg.processes <= cfg.users


def test_unreachable_server_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run_cli(capsys, "--url", f"http://127.0.0.1:{free_port()}", "--mix", "finality")
    assert code == 2 and "--url: cannot reach" in err and err.count("\n") == 1, err


# ---- gate verdicts on synthetic results ----------------------------------------------------


def _endpoint(name: str, requests: int, errors: int = 0, p95_ms: float = 1.0, sigs_per_s: float | None = None) -> dict:
    e = {"endpoint": name, "requests": requests, "ok": requests - errors, "errors": errors, "p50_ms": p95_ms / 2,
         "p95_ms": p95_ms, "p99_ms": p95_ms * 2, "server_p50_ms": 0.01, "server_p95_ms": 0.02, "requests_per_s": 100.0,
         "error_examples": {"HTTP 500: x": errors} if errors else {}, "seconds": 1.0, "start": 0.0}
    if sigs_per_s is not None:
        e.update(signatures=int(sigs_per_s), signatures_per_s=sigs_per_s)
    return e


CFG = loadtest.LoadConfig(url="http://127.0.0.1:9944", users=64)


def _verdict(endpoints: list[dict], strict: bool = False) -> tuple[int, list[loadtest.Gate]]:
    gates = loadtest.evaluate_gates({"endpoints": {e["endpoint"]: e for e in endpoints}}, CFG)
    return loadtest.exit_code(gates, strict=strict), gates


def test_all_gates_pass() -> None:
    code, gates = _verdict([_endpoint("verify", 10), _endpoint("verify_batch", 5, sigs_per_s=60_000),
                            _endpoint("finality", 10, p95_ms=1.5)])
    assert code == 0 and [g.passed for g in gates] == [True, True, True]


def test_one_error_fails_the_run() -> None:
    code, gates = _verdict([_endpoint("verify", 10, errors=1), _endpoint("verify_batch", 5, sigs_per_s=60_000)])
    assert code == 1 and gates[0].passed is False and "1 errors in 15 requests" in gates[0].value


def test_slow_verify_batch_fails_the_run() -> None:
    code, gates = _verdict([_endpoint("verify_batch", 5, sigs_per_s=49_999.0)])
    assert code == 1 and gates[1].passed is False and gates[1].required


def test_finality_goal_miss_fails_only_when_strict() -> None:
    endpoints = [_endpoint("finality", 10, p95_ms=2.5)]
    code, gates = _verdict(endpoints)
    assert code == 0 and gates[2].passed is False and not gates[2].required
    assert _verdict(endpoints, strict=True)[0] == 1


def test_endpoints_not_run_are_not_applicable_and_nothing_answered_fails() -> None:
    code, gates = _verdict([_endpoint("finality", 3)])
    assert code == 0 and gates[1].passed is None and gates[1].value == "not run"
    assert _verdict([])[0] == 1  # no request answered is no evidence of anything


def test_report_shows_every_endpoint_and_the_failed_gate() -> None:
    endpoints = [_endpoint("verify", 10), _endpoint("verify_batch", 5, errors=2, sigs_per_s=1_000)]
    results: dict[str, Any] = {
        "config": {"url": CFG.url, "users": 64, "duration_s": 60.0, "mode": "phases", "think_s": 0.0},
        "endpoints": {e["endpoint"]: e for e in endpoints},
        "client": {"processes": 2, "cpu_seconds": 3.0, "load_seconds": 10.0, "cores_used": 0.3, "cpus": 2},
        "load_average": {"before": [1.0, 1.0, 1.0], "after": [2.0, 1.5, 1.2]}, "server": {},
    }
    results["gates"] = [g.__dict__ for g in loadtest.evaluate_gates(results, CFG)]
    text = loadtest.format_report(results)
    assert "\nverify " in text and "\nverify_batch " in text and "2 x HTTP 500: x" in text
    assert "FAIL  no errors: 2 errors in 15 requests" in text
    assert "FAIL  verify_batch >= 50,000 signatures/s over HTTP: 1,000 signatures/s" in text
    assert "n/a   finality p95" in text


# ---- real runs against bizra serve --------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(API URL, metrics URL) of a bizra serve subprocess with a token."""
    data = tmp_path_factory.mktemp("loadtest-data")
    generate_dataset(data, validators=6, blocks=16, attestations=60, seed=5, threads=2, progress=False)
    rpc, metrics = free_port(), free_port()
    log = data / "serve.log"
    proc = start_serve(data, {"RPC_PORT": str(rpc), "PROMETHEUS_PORT": str(metrics), "BIZRA_API_TOKEN": TOKEN,
                              "BIZRA_THREADS": "1"}, log)
    try:
        wait_ready(f"http://127.0.0.1:{rpc}", proc, log)
        yield f"http://127.0.0.1:{rpc}", f"http://127.0.0.1:{metrics}/metrics"
    finally:
        stop(proc)


def _counters(metrics_url: str) -> dict[str, float]:
    text = httpx.get(metrics_url, timeout=10, trust_env=False).text
    return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
            if line.startswith("bizra_") and "{" not in line.split(" ")[0]}


def test_short_real_run_has_no_errors_and_its_counts_add_up(served: tuple[str, str], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    url, metrics = served
    per_endpoint, batch_rows = 12, 64
    before = _counters(metrics)
    # --duration is only the bound: the run ends when the request quota is spent.
    code, out, err = _run_cli(capsys, "--url", url, "--users", "3", "--processes", "2", "--duration", "40s",
                              "--max-requests", str(4 * per_endpoint), "--batch-rows", str(batch_rows),
                              "--token", TOKEN, "--metrics-url", metrics, "--json", str(tmp_path / "r.json"))
    results = json.loads((tmp_path / "r.json").read_text())
    after = _counters(metrics)
    assert err == "", err
    eps = results["endpoints"]
    assert list(eps) == ["verify", "verify_batch", "finality", "generate"]
    for e in eps.values():
        assert (e["requests"], e["ok"], e["errors"]) == (per_endpoint, per_endpoint, 0), e
        assert 0 < e["p50_ms"] <= e["p95_ms"] <= e["p99_ms"]
        assert e["endpoint"] in out
    assert eps["verify_batch"]["signatures"] == per_endpoint * batch_rows
    # The service counted exactly what the tool sent (nothing else talks to this server meanwhile).
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    assert delta["bizra_poi_verify_total"] == per_endpoint * (1 + batch_rows)
    assert delta["bizra_poi_verify_fail_total"] == 0
    assert delta["bizra_finality_checks_total"] == delta["bizra_poi_generate_total"] == per_endpoint
    assert results["server"]["verify_many_rows"] == per_endpoint * (1 + batch_rows)
    assert not math.isnan(results["server"]["cpu_seconds"])
    # Gates: no errors passed; the exit code is what the verdicts say (a tiny run may miss the floor).
    gates = {g["name"].split(" ")[0]: g for g in results["gates"]}
    assert gates["no"]["passed"] is True
    assert code == int(any(g["passed"] is False and g["required"] for g in results["gates"])) == results["exit_code"]


def test_real_run_counts_rejected_requests_as_errors(served: tuple[str, str], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = served
    code, out, _ = _run_cli(capsys, "--url", url, "--users", "2", "--processes", "1", "--duration", "40s",
                            "--max-requests", "5", "--mix", "generate", "--token", "wrong-token",
                            "--json", str(tmp_path / "r.json"))
    e = json.loads((tmp_path / "r.json").read_text())["endpoints"]["generate"]
    assert code == 1 and (e["requests"], e["ok"], e["errors"]) == (5, 0, 5)
    assert e["p50_ms"] is None  # no answered request: null in the JSON, not NaN
    assert list(e["error_examples"]) == [next(k for k in e["error_examples"] if k.startswith("HTTP 401"))]
    assert "FAIL  no errors: 5 errors in 5 requests" in out
    assert "wrong-token" not in out


def test_loadtest_errors_surface_as_bizra_errors() -> None:
    with pytest.raises(BizraError, match="refusing non-loopback"):
        loadtest.check_loopback("http://8.8.8.8:53")


@pytest.mark.parametrize(("cores", "verdict"), [(0.3, "not client-bound (15% of a core per process)"),
                                                (1.8, "client-bound (90% of a core per process)")])
def test_report_says_whether_the_client_was_the_bottleneck(cores: float, verdict: str) -> None:
    assert loadtest._client_verdict({"cores_used": cores, "processes": 2}).startswith(verdict)
