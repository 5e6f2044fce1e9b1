"""Real Prometheus scraping a real ``bizra serve``: the runbook's PromQL, every Grafana panel
query and the recording rules must return data consistent with the traffic the test sent.

Both servers run on loopback on free ports; Prometheus (the Debian package, on PATH) scrapes
every second and evaluates rules every second. Under CI=true a missing ``prometheus`` binary is
a failure: .ci/run installs it. Exactness: every series is scraped once at 0 before the traffic
(the test waits for that sample), so within the test's [1m] windows all of a target's series
share their first and last sample times and ratios of ``rate()`` equal ratios of the counters.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from tests.support.serve_helpers import ROOT, free_port, log_tail, start_serve, stop, wait_ready

from engine.synthetic import generate_dataset
from engine.service.metrics import LATENCY_BUCKETS

TOKEN = "prometheus-e2e-token"
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "bizra-dashboard.json"
# Grafana's global variables, as a panel would run them over a short window.
GRAFANA_VARS = {"$__rate_interval": "1m", "${__rate_interval}": "1m", "$__interval_ms": "60000",
                "${__interval_ms}": "60000", "$__interval": "1m", "${__interval}": "1m",
                "$__range_s": "60", "${__range_s}": "60", "$__range_ms": "60000", "${__range_ms}": "60000",
                "$__range": "1m", "${__range}": "1m"}

# The traffic, and what every counter must read after it.
GENERATE = 5
VERIFY_GOOD, VERIFY_BAD = 8, 4
BATCH_GOOD, BATCH_BAD = 4, 2
FINALITY_KNOWN, FINALITY_UNKNOWN = 6, 3
VERIFY_ROWS = VERIFY_GOOD + VERIFY_BAD + BATCH_GOOD + BATCH_BAD
VERIFY_FAILS = VERIFY_BAD + BATCH_BAD
# Sequential single verifies never coalesce: one verify_many call each, plus one for the batch.
VERIFY_MANY_CALLS = VERIFY_GOOD + VERIFY_BAD + 1
FINALITY = FINALITY_KNOWN + FINALITY_UNKNOWN


def _prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        message = "the prometheus binary is not on PATH (Debian package `prometheus`; .ci/run installs it)"
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _wait(what: str, probe: Callable[[], Any], timeout_s: float, logs: Callable[[], str] = str,
          done: Callable[[Any], bool] = bool) -> Any:
    """Poll ``probe`` until ``done(result)``; after ``timeout_s`` fail naming ``what`` and the last result."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        last = probe()
        if done(last):
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})\n{logs()}")


class Prom:
    """The Prometheus HTTP API of one test server."""

    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log = url, log
        self.http = httpx.Client(base_url=url, timeout=10, trust_env=False)

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = self.http.get("/api/v1/query", params={"query": expr})
        doc = r.json()
        assert r.status_code == 200 and doc["status"] == "success", f"{expr}: {r.status_code} {r.text[:300]}"
        return doc["data"]["result"]

    def scalar(self, expr: str) -> float | None:
        """The value of a one-sample result; None while it has none yet."""
        result = self.query(expr)
        assert len(result) <= 1, f"{expr}: expected one series, got {result}"
        return float(result[0]["value"][1]) if result else None

    def logs(self) -> str:
        return f"--- prometheus log tail ---\n{log_tail(self.log)}"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prom-e2e")
    generate_dataset(out, validators=6, blocks=16, attestations=120, seed=21, threads=2, progress=False)
    return out


@pytest.fixture
def stack(data: Path, tmp_path: Path) -> Iterator[tuple[httpx.Client, Prom, bool]]:
    """(API client, Prometheus, whether rules.yaml was loaded): both processes killed afterwards."""
    binary = _prometheus_binary()
    rpc, metrics, prom_port = free_port(), free_port(), free_port()
    serve_log, prom_log = tmp_path / "serve.log", tmp_path / "prometheus.log"
    rules = RULES.exists()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "bizra", "static_configs": [{"targets": [f"127.0.0.1:{metrics}"]}]}],
        **({"rule_files": [str(RULES)]} if rules else {}),
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    serve = start_serve(data, {"RPC_PORT": str(rpc), "PROMETHEUS_PORT": str(metrics), "METRICS_ENABLED": "1",
                               "BIZRA_API_TOKEN": TOKEN, "BIZRA_THREADS": "1"}, serve_log)
    prom_proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=info"],
        cwd=tmp_path, stdout=prom_log.open("wb"), stderr=subprocess.STDOUT)
    prom = Prom(f"http://127.0.0.1:{prom_port}", prom_log)
    url = f"http://127.0.0.1:{rpc}"
    api = httpx.Client(base_url=url, timeout=30, trust_env=False)
    try:
        wait_ready(url, serve, serve_log)

        def prom_ready() -> bool:
            assert prom_proc.poll() is None, f"prometheus exited with {prom_proc.returncode}\n{prom.logs()}"
            try:
                return prom.http.get("/-/ready").status_code == 200
            except httpx.TransportError:
                return False

        _wait("Prometheus to be ready", prom_ready, 30, prom.logs)
        yield api, prom, rules
    finally:
        api.close()
        prom.http.close()
        stop(prom_proc)
        stop(serve)
        # Captured output: pytest shows it only when the test fails.
        print(f"{prom.logs()}\n--- bizra serve log tail ---\n{log_tail(serve_log)}")


def _corrupt(hex_sig: str) -> str:
    return hex_sig[:-2] + ("00" if hex_sig[-2:] != "00" else "01")


def _send_traffic(api: httpx.Client, data: Path) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    signed = []
    for i in range(GENERATE):
        r = api.post("/api/v1/poi/generate", json={"evidence": f"e2e {i}"}, headers=auth)
        assert r.status_code == 200, r.text
        signed.append({k: r.json()[k] for k in ("body_hex", "signature", "public_key")})
    rows = [signed[i % GENERATE] for i in range(VERIFY_GOOD)]
    rows += [{**s, "signature": _corrupt(s["signature"])} for s in (signed * VERIFY_BAD)[:VERIFY_BAD]]
    for row in rows:
        assert api.post("/api/v1/poi/verify", json=row).json()["valid"] == (row in signed)
    batch = [{"body": s["body_hex"], "signature": s["signature"], "public_key": s["public_key"]}
             for s in (signed * BATCH_GOOD)[:BATCH_GOOD]]
    batch += [{**b, "signature": _corrupt(b["signature"])} for b in batch[:BATCH_BAD]]
    r = api.post("/api/v1/poi/verify_batch", json=batch)
    assert r.status_code == 200 and r.json()["valid_rows"] == BATCH_GOOD, r.text
    hashes = ["0x" + h.hex() for h in pl.read_parquet(data / "blocks.parquet")["hash"].to_list()]
    for i in range(FINALITY_KNOWN):
        assert api.post("/api/v1/finality", json={"block_hash": hashes[i % len(hashes)]}).status_code == 200
    for i in range(FINALITY_UNKNOWN):
        assert api.post("/api/v1/finality", json={"block_hash": f"0x{i + 1:064x}"}).status_code == 404


def _grafana_exprs() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target, Grafana's variables filled in."""
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    out = []
    for panel in panels(json.loads(DASHBOARD.read_text())["panels"]):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if not expr:
                continue
            for var in sorted(GRAFANA_VARS, key=len, reverse=True):
                expr = expr.replace(var, GRAFANA_VARS[var])
            assert "$" not in expr, f"panel {panel.get('title')!r}: unknown variable left in {expr!r}"
            out.append((str(panel.get("title")), expr))
    return out


def test_runbook_promql_dashboard_and_rules_against_real_prometheus(stack: tuple[httpx.Client, Prom, bool],
                                                                    data: Path) -> None:
    api, prom, rules_loaded = stack
    # A zero sample of every series first, so the rates below cover all of the traffic.
    _wait("a first scrape of the service", lambda: prom.scalar('up{job="bizra"}') == 1
          and prom.scalar("bizra_poi_verify_total") == 0, 30, prom.logs)
    _send_traffic(api, data)
    expected = {"bizra_poi_generate_total": GENERATE, "bizra_poi_verify_total": VERIFY_ROWS,
                "bizra_poi_verify_fail_total": VERIFY_FAILS, "bizra_finality_checks_total": FINALITY,
                "bizra_finality_check_seconds_count": FINALITY, "bizra_poi_verify_batch_size_count": VERIFY_MANY_CALLS,
                "bizra_poi_verify_batch_size_sum": VERIFY_ROWS}

    _wait(f"Prometheus to scrape the traffic {expected}", lambda: {name: prom.scalar(name) for name in expected},
          20, prom.logs, done=lambda got: got == expected)
    # One more scrape, so the per-route series (born with the traffic) have two samples to rate.
    after = prom.scalar('timestamp(up{job="bizra"})')
    _wait("one more scrape", lambda: (prom.scalar('timestamp(up{job="bizra"})') or 0) > (after or 0), 10, prom.logs)

    # histogram_quantile(0.99, ...): inside the bucket that holds the 99th percentile check.
    p99 = prom.scalar("histogram_quantile(0.99, rate(bizra_finality_check_seconds_bucket[1m]))")
    buckets = sorted((float(s["metric"]["le"]), float(s["value"][1]))
                     for s in prom.query("bizra_finality_check_seconds_bucket"))
    assert [le for le, _ in buckets] == [*LATENCY_BUCKETS, math.inf]
    rank = 0.99 * FINALITY
    upper = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    lower_le = buckets[upper - 1][0] if upper else 0.0
    assert p99 is not None and 0 < p99 and lower_le <= p99 <= buckets[upper][0] < math.inf, (p99, buckets)

    # rate(bizra_poi_generate_total[1m]): positive, and its increase covers every signature made.
    assert (prom.scalar("rate(bizra_poi_generate_total[1m])") or 0) > 0
    assert (prom.scalar("increase(bizra_poi_generate_total[1m])") or 0) >= GENERATE * (1 - 1e-9)

    # The verify success ratio, from rates and from the counters.
    good = 1 - VERIFY_FAILS / VERIFY_ROWS
    ratio = prom.scalar("1 - sum(rate(bizra_poi_verify_fail_total[1m])) / sum(rate(bizra_poi_verify_total[1m]))")
    assert ratio == pytest.approx(good, rel=1e-9)
    assert prom.scalar("1 - bizra_poi_verify_fail_total / bizra_poi_verify_total") == pytest.approx(good, rel=1e-12)

    # Average batch size from the histogram: rows / verify_many calls.
    avg = prom.scalar("rate(bizra_poi_verify_batch_size_sum[1m]) / rate(bizra_poi_verify_batch_size_count[1m])")
    assert avg == pytest.approx(VERIFY_ROWS / VERIFY_MANY_CALLS, rel=1e-9)
    assert prom.scalar('bizra_http_requests_total{route="/api/v1/finality", status="404"}') == FINALITY_UNKNOWN

    # Every Grafana panel query returns data.
    if DASHBOARD.exists():
        empty = [(title, expr) for title, expr in _grafana_exprs() if not prom.query(expr)]
        assert not empty, f"dashboard panels without data: {empty}"

    # Rules: every group loaded and healthy, every recording rule produces data.
    if rules_loaded:
        groups = prom.http.get("/api/v1/rules").json()["data"]["groups"]
        assert groups and all(g["file"] == str(RULES) for g in groups)

        def evaluated() -> list[dict[str, Any]]:
            rules = [r for g in prom.http.get("/api/v1/rules").json()["data"]["groups"] for r in g["rules"]]
            done = all(not r.get("lastEvaluation", "0001").startswith("0001") for r in rules)  # Go's zero time
            return rules if done else []

        rules = _wait("every rule to be evaluated", evaluated, 10, prom.logs)
        bad = [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"]
        assert not bad, f"unhealthy rules: {bad}"
        recording = [r["name"] for r in rules if r["type"] == "recording"]
        assert recording, f"{RULES} has no recording rules"
        missing = [name for name in recording if not _has_data(prom, name)]
        assert not missing, f"recording rules without data: {missing}"


def _has_data(prom: Prom, name: str, timeout_s: float = 10) -> bool:
    """Whether a recording rule's series appears (rules run every second, after the scrapes)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if prom.query(name):
            return True
        time.sleep(0.2)
    return False


def _series(m: Any) -> set[str]:
    return {line.rsplit(" ", 1)[0] for line in m.exposition().decode().splitlines() if line and not line.startswith("#")}


def test_invented_methods_and_paths_add_no_series() -> None:
    """Label values come from closed sets. 1,000 requests with invented
    methods to invented paths (before: one series each, for good) leave the series unchanged."""
    import anyio

    from engine.service.metrics import Metrics, RequestMetrics

    async def app(scope: dict, receive: Any, send: Any) -> None:  # no route matches anything here
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    metrics = Metrics()
    transport = httpx.ASGITransport(app=RequestMetrics(app, metrics))

    async def traffic(n: int, start: int) -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            for i in range(start, start + n):
                await c.request(f"X{i}" + "Y" * (i % 50), f"/invented/{i}/{'z' * (i % 300)}")

    anyio.run(traffic, 1, 0)
    before = _series(metrics)
    anyio.run(traffic, 1000, 1)
    assert _series(metrics) == before
    assert metrics.registry.get_sample_value("bizra_http_requests_total",
                                             {"method": "other", "route": "other", "status": "404"}) == 1001
