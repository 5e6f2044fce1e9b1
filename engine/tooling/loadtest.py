"""``bizra loadtest``: a bounded load test of a running ``bizra serve`` on loopback, with gates.

How a run goes:

  1. Refuse any URL whose host is not 127.0.0.1, ::1 or localhost (this tool only loads the
     machine it runs on), check GET /readyz, read known block hashes from GET /api/v1/head.
  2. Prepare payloads once, in this process: honest attestations signed here through libsodium
     with seeded test keys (single verify requests as JSON, verify_batch uploads as Arrow IPC
     streams of ``--batch-rows`` rows), finality requests for the known hashes, and generate
     requests when a token is given.
  3. Start ``--processes`` client processes (default: one per CPU, at most ``--users``). One
     Python event loop cannot drive 64 connections fast enough to load a server, so the users
     are spread over processes; each runs its share as asyncio tasks, one keep-alive HTTP/1.1
     connection per user (a minimal client, ``_Connection``: httpx cost more CPU than the server).
  4. A user is a closed loop: send, wait for the answer, check it (status and content: an honest
     row must come back valid), record the latency, optionally pause ``--think``, repeat.
  5. ``--mode phases`` (default) runs the endpoints of ``--mix`` one after another, each alone
     for its weight's share of ``--duration`` (so each endpoint's numbers are its own);
     ``--mode mixed`` runs them together, each request picking an endpoint by weight. A phase
     stops starting requests at its deadline or when its share of ``--max-requests`` is spent;
     requests in flight then finish (each has a ``--timeout``), so the run is bounded.
  6. Report per endpoint requests, errors, p50/p95/p99 latency, requests/s (verify_batch also
     signatures/s), the client's CPU use (is the client the bottleneck?), the load average and,
     with ``--metrics-url``, the server's CPU seconds and average verify batch size; then the
     gates. Exit 1 when a gate fails, 2 on bad arguments.

Gates: no errors (and at least one request answered); verify_batch >= 50,000 signatures/s over
HTTP. Goal (reported, a gate only with ``--strict``): finality p95 <= 2 ms at 64 users.

With ``users`` closed-loop users and no think time, latency is about users / throughput
(Little's law), so a latency goal at 64 users is a throughput requirement; ``--think`` turns the
users into an offered load instead. docs/loadtest.md has the measured tables.

Example::

    bizra loadtest --url http://127.0.0.1:9944 --users 64 --duration 60s --json out.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import os
import queue
import re
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.model.errors import BizraError
from engine.synthetic import signed_attestations
from engine.tooling.loadtest_clients import ENDPOINTS, client_process, share
from engine.verification.api import usable_cpus

__all__ = ["ENDPOINTS", "Gate", "LoadConfig", "add_cli", "cmd_loadtest", "evaluate_gates", "exit_code",
           "parse_duration", "parse_mix", "run_loadtest"]

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_DURATION_S = 3600.0
MAX_USERS = 4096
VERIFY_POOL = 1024  # distinct single-verify requests, cycled through
BATCH_POOL = 4  # distinct verify_batch uploads
N_KEYS = 1024  # signers of the test rows: a batch sees many distinct keys, as a real one would


# ---- arguments ---------------------------------------------------------------------------


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, field: str = "--duration", *, allow_zero: bool = False) -> float:
    """Seconds from ``60s``, ``1.5m``, ``500ms``, ``1h`` or a bare number of seconds.

    Example: ``parse_duration("2m") == 120.0``.
    """
    m = _DURATION.match(text or "")
    if not m:
        raise BizraError(f"{field}: not a duration: {text!r} (examples: 60s, 500ms, 2m)")
    seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    if seconds > MAX_DURATION_S or (seconds <= 0 and not allow_zero):
        raise BizraError(f"{field}: must be {'0' if allow_zero else 'more than 0'}..{MAX_DURATION_S:.0f} s, got {text!r}")
    return seconds


def check_loopback(url: str, field: str = "--url") -> str:
    """The base URL without a trailing slash, if its host is loopback; anything else is refused.

    Example: ``check_loopback("http://localhost:9944/") == "http://localhost:9944"``.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise BizraError(f"{field}: not a URL: {url!r} ({exc})") from None
    if parts.scheme != "http" or not parts.hostname:  # the service speaks plain HTTP on loopback
        raise BizraError(f"{field}: expected http://HOST:PORT, got {url!r}")
    if field == "--url" and parts.path not in ("", "/"):  # requests go to the service's own paths
        raise BizraError(f"{field}: expected http://HOST:PORT without a path, got {url!r}")
    if parts.hostname not in LOOPBACK:
        raise BizraError(f"{field}: refusing non-loopback host {parts.hostname!r}: loadtest only targets "
                         "127.0.0.1, ::1 or localhost")
    return url.rstrip("/")


def parse_mix(text: str | None, *, token: str | None) -> dict[str, float]:
    """Endpoint weights from ``verify=2,finality,verify_batch=0.5`` (a bare name weighs 1).

    Default: every endpoint, generate only when a token is given. Example:
    ``parse_mix("finality", token=None) == {"finality": 1.0}``.
    """
    if not text:
        return {name: 1.0 for name in ENDPOINTS if name != "generate" or token}
    mix: dict[str, float] = {}
    for item in text.split(","):
        name, _, weight = item.strip().partition("=")
        if name not in ENDPOINTS:
            raise BizraError(f"--mix: unknown endpoint {name!r} (known: {', '.join(ENDPOINTS)})")
        if name in mix:
            raise BizraError(f"--mix: {name} given twice")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise BizraError(f"--mix: {name}: weight is not a number: {weight!r}") from None
        if not (w > 0 and math.isfinite(w)):
            raise BizraError(f"--mix: {name}: weight must be > 0, got {weight!r}")
        mix[name] = w
    if "generate" in mix and not token:
        raise BizraError("--mix: generate needs a token (--token or BIZRA_API_TOKEN)")
    return mix


@dataclasses.dataclass(frozen=True)
class LoadConfig:
    """A validated load test. Example: ``LoadConfig.from_args(parser.parse_args([...]))``."""

    url: str
    users: int = 64
    duration_s: float = 60.0
    max_requests: int = 1_000_000
    token: str | None = dataclasses.field(default=None, repr=False)  # never printed
    mix: Mapping[str, float] = dataclasses.field(default_factory=lambda: {"finality": 1.0})
    mode: str = "phases"
    processes: int = 1
    batch_rows: int = 4096
    think_s: float = 0.0
    timeout_s: float = 30.0
    metrics_url: str | None = None
    min_batch_sigs_per_s: float = 50_000.0
    finality_p95_goal_ms: float = 2.0
    strict: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Mapping[str, str] | None = None) -> LoadConfig:
        env = os.environ if env is None else env
        url = check_loopback(args.url)
        metrics_url = check_loopback(args.metrics_url, "--metrics-url") if args.metrics_url else None
        token = args.token or env.get("BIZRA_API_TOKEN") or None
        for name in ("users", "max_requests", "batch_rows"):
            if getattr(args, name) < 1:
                raise BizraError(f"--{name.replace('_', '-')}: must be >= 1, got {getattr(args, name)}")
        if args.users > MAX_USERS:
            raise BizraError(f"--users: at most {MAX_USERS}, got {args.users}")
        if args.batch_rows > 1 << 20:
            raise BizraError(f"--batch-rows: at most {1 << 20}, got {args.batch_rows}")
        processes = args.processes if args.processes is not None else usable_cpus()
        if processes < 1:
            raise BizraError(f"--processes: must be >= 1, got {processes}")
        return cls(url=url, users=args.users, duration_s=parse_duration(args.duration),
                   max_requests=args.max_requests, token=token, mix=parse_mix(args.mix, token=token),
                   mode=args.mode, processes=min(processes, args.users), batch_rows=args.batch_rows,
                   think_s=parse_duration(args.think, "--think", allow_zero=True),
                   timeout_s=parse_duration(args.timeout, "--timeout"), metrics_url=metrics_url,
                   strict=args.strict)

    def phases(self) -> list[dict[str, Any]]:
        """[{mix, seconds, quota}]: one phase per endpoint (``phases``) or one for all (``mixed``).

        Durations and request quotas are shared out by weight; every phase gets >= 1 request.
        """
        total = sum(self.mix.values())
        if self.mode == "mixed":
            return [{"mix": dict(self.mix), "seconds": self.duration_s, "quota": self.max_requests}]
        return [{"mix": {name: 1.0}, "seconds": self.duration_s * w / total,
                 "quota": max(1, int(self.max_requests * w / total))} for name, w in self.mix.items()]


def add_cli(sub: Any) -> argparse.ArgumentParser:
    """Register ``bizra loadtest``; the command is ``cmd_loadtest``."""
    p = sub.add_parser(
        "loadtest", help="bounded load test of a local bizra serve, with gates",
        description="Load a running `bizra serve` on loopback (127.0.0.1, ::1, localhost only) with "
        "concurrent users for a bounded time and number of requests; print p50/p95/p99 latency and "
        "throughput per endpoint and check the gates: no errors, verify_batch >= 50,000 signatures/s "
        "over HTTP; goal: finality p95 <= 2 ms at 64 users. Exit 1 when a gate fails.")
    p.add_argument("--url", required=True, help="the API, e.g. http://127.0.0.1:9944 (loopback only)")
    p.add_argument("--users", type=int, default=64, help="concurrent users (closed loop), default 64")
    p.add_argument("--duration", default="60s", help="total run time, e.g. 60s, 2m (default 60s)")
    p.add_argument("--max-requests", type=int, default=1_000_000, help="stop after this many requests")
    p.add_argument("--token", default=None, help="Bearer token for generate (default: BIZRA_API_TOKEN)")
    p.add_argument("--mix", default=None,
                   help="endpoints and weights, e.g. verify=1,verify_batch=1,finality=2,generate=1 "
                        "(default: all; generate only with a token)")
    p.add_argument("--mode", choices=["phases", "mixed"], default="phases",
                   help="phases: one endpoint at a time, duration shared by weight (default); "
                        "mixed: all at once, requests picked by weight")
    p.add_argument("--processes", type=int, default=None, help="client processes (default: CPUs)")
    p.add_argument("--batch-rows", type=int, default=4096, help="rows per verify_batch upload (4096)")
    p.add_argument("--think", default="0", help="pause of each user between requests (default 0)")
    p.add_argument("--timeout", default="30s", help="per-request timeout (default 30s)")
    p.add_argument("--metrics-url", default=None,
                   help="the service's metrics, e.g. http://127.0.0.1:9464/metrics: adds server CPU "
                        "seconds and the average verify batch size to the report")
    p.add_argument("--strict", action="store_true", help="goals (finality p95) fail the run too")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON to this file")
    p.set_defaults(func=cmd_loadtest)
    return p


# ---- payloads (built once, in the parent) ------------------------------------------------


def _arrow_upload(bodies: Any, sigs: Any, pks: Any) -> bytes:
    import io

    import polars as pl

    from engine.model.attestation import binary_column

    frame = pl.DataFrame([binary_column("body", bodies), binary_column("signature", sigs),
                          binary_column("public_key", pks)])
    buf = io.BytesIO()
    frame.write_ipc_stream(buf)
    return buf.getvalue()


def _known_hashes(url: str, timeout: float) -> list[str]:
    """Head and finalized tip from GET /api/v1/head, after GET /readyz said the node is ready."""
    import httpx

    with httpx.Client(base_url=url, timeout=timeout, trust_env=False) as c:
        try:
            ready = c.get("/readyz")
            if ready.status_code != 200:
                raise BizraError(f"--url: {url} is not ready (GET /readyz: {ready.status_code} {ready.text[:120]})")
            head = c.get("/api/v1/head").json()
        except httpx.HTTPError as exc:
            raise BizraError(f"--url: cannot reach {url} ({type(exc).__name__}: {exc})") from None
    return list(dict.fromkeys(h for h in (head.get("head"), head.get("finalized_tip")) if h))


def build_payloads(config: LoadConfig, hashes: Sequence[str]) -> dict[str, list[bytes]]:
    """Request bodies per endpoint of the mix (each user cycles through its endpoint's list)."""
    out: dict[str, list[bytes]] = {}
    if "verify" in config.mix:
        b, s, k, *_ = signed_attestations(VERIFY_POOL, N_KEYS, seed=101, label="loadtest")
        out["verify"] = [json.dumps({"body_hex": b[i].tobytes().hex(), "signature": s[i].tobytes().hex(),
                                     "public_key": k[i].tobytes().hex()}).encode() for i in range(len(b))]
    if "verify_batch" in config.mix:
        n = config.batch_rows
        rows = max(1, min(BATCH_POOL, 65_536 // n)) * n  # bounded signing time
        b, s, k, *_ = signed_attestations(rows, N_KEYS, seed=202, label="loadtest")
        out["verify_batch"] = [_arrow_upload(b[i:i + n], s[i:i + n], k[i:i + n]) for i in range(0, len(b), n)]
    if "finality" in config.mix:
        if not hashes:
            raise BizraError(f"{config.url}: GET /api/v1/head names no block, so finality has nothing to check")
        out["finality"] = [json.dumps({"block_hash": h}).encode() for h in hashes]
    if "generate" in config.mix:
        out["generate"] = [json.dumps({"evidence": f"loadtest evidence {i}"}).encode() for i in range(64)]
    return out


# ---- the run ------------------------------------------------------------------------------


def _scrape(url: str | None) -> dict[str, float]:
    """Unlabelled samples of the service's metrics page (empty without --metrics-url)."""
    if not url:
        return {}
    import httpx

    try:
        text = httpx.get(url, timeout=10, trust_env=False).text
    except httpx.HTTPError as exc:
        raise BizraError(f"--metrics-url: cannot read {url} ({type(exc).__name__})") from None
    out = {}
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) >= 2 and not line.startswith("#") and "{" not in parts[0]:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                continue
    return out


def _summarize(name: str, parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    import numpy as np

    lat = np.concatenate([np.frombuffer(p["latency"], np.float64) for p in parts])
    server = np.concatenate([np.frombuffer(p["server_us"], np.float64) for p in parts])
    errors = sum(p["errors"] for p in parts)
    examples: Counter[str] = Counter()
    for p in parts:
        examples.update(p["examples"])
    start = min(p["start"] for p in parts)
    end = max([p["end"] for p in parts] + [start])
    seconds = end - start
    requests = len(lat) + errors
    out: dict[str, Any] = {
        "endpoint": name, "requests": requests, "ok": len(lat), "errors": errors,
        "error_examples": dict(examples.most_common(5)), "start": start, "seconds": seconds,
        "requests_per_s": requests / seconds if seconds > 0 else 0.0,
    }
    q = np.percentile(lat, [50, 95, 99]) * 1e3 if len(lat) else [math.nan] * 3
    out.update(p50_ms=float(q[0]), p95_ms=float(q[1]), p99_ms=float(q[2]))
    sq = np.percentile(server, [50, 95]) / 1e3 if len(server) else [math.nan] * 2
    out.update(server_p50_ms=float(sq[0]), server_p95_ms=float(sq[1]))
    if name == "verify_batch":
        out["signatures"] = sum(p["rows"] for p in parts)
        out["signatures_per_s"] = out["signatures"] / seconds if seconds > 0 else 0.0
    return out


def run_loadtest(config: LoadConfig) -> dict[str, Any]:
    """Run the load test; returns the results (``endpoints``, ``client``, ``server``, ``gates``...).

    Example: ``run_loadtest(LoadConfig(url="http://127.0.0.1:9944", users=4, duration_s=2))``.
    """
    hashes = _known_hashes(config.url, config.timeout_s)
    payloads = build_payloads(config, hashes)
    phases = config.phases()
    users = share(config.users, config.processes)
    plan = {"url": config.url, "phases": phases, "users": users, "payloads": payloads, "token": config.token,
            "think_s": config.think_s, "batch_rows": config.batch_rows, "timeout_s": config.timeout_s,
            "quotas": [share(p["quota"], config.processes) for p in phases]}
    ctx = mp.get_context("spawn")  # no fork of a process that holds Polars/Numba thread pools
    barrier, out = ctx.Barrier(config.processes), ctx.Queue()
    load_before, metrics_before = os.getloadavg(), _scrape(config.metrics_url)
    procs = [ctx.Process(target=client_process, args=(plan, i, barrier, out), name=f"bizra-loadtest-{i}",
                         daemon=True) for i in range(config.processes)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    # Bounded: spawning, every phase, then each request still in flight may take its timeout.
    budget = 60 + config.duration_s + len(phases) * (config.timeout_s + 5) + 5 * config.think_s
    reports = []
    try:
        for _ in procs:
            reports.append(out.get(timeout=max(1.0, t0 + budget - time.monotonic())))
    except queue.Empty:  # a client hung or died without reporting
        dead = [f"{p.name} exit {p.exitcode}" for p in procs if p.exitcode not in (None, 0)]
        raise BizraError(f"client processes did not finish within {budget:.0f} s ({', '.join(dead) or 'hung'})") from None
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    wall = time.monotonic() - t0
    failed = [r["error"] for r in reports if "error" in r]
    if failed:
        raise BizraError(f"a client process failed: {failed[0]}")
    metrics_after, load_after = _scrape(config.metrics_url), os.getloadavg()

    endpoints = {}
    for k, phase in enumerate(phases):
        for name in phase["mix"]:
            endpoints[name] = _summarize(name, [r["phases"][k][name] for r in reports])
    cpu = sum(r["cpu_s"] for r in reports)
    active = max(e["seconds"] + e["start"] for e in endpoints.values()) - min(e["start"] for e in endpoints.values())
    results: dict[str, Any] = {
        "config": {**{k: v for k, v in dataclasses.asdict(config).items() if k != "token"},
                   "mix": dict(config.mix), "token_given": config.token is not None},
        "endpoints": endpoints,
        "client": {"processes": config.processes, "users": config.users, "cpu_seconds": cpu, "wall_seconds": wall,
                   "load_seconds": active, "cores_used": cpu / active if active > 0 else 0.0, "cpus": usable_cpus()},
        "load_average": {"before": list(load_before), "after": list(load_after)},
        "server": _server_delta(metrics_before, metrics_after),
    }
    gates = evaluate_gates(results, config)
    results["gates"] = [dataclasses.asdict(g) for g in gates]
    results["exit_code"] = exit_code(gates, strict=config.strict)
    return results


def _server_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    if not before or not after:
        return {}
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    out = {"cpu_seconds": d.get("process_cpu_seconds_total", math.nan),
           "verify_many_calls": d.get("bizra_poi_verify_batch_size_count", math.nan),
           "verify_many_rows": d.get("bizra_poi_verify_batch_size_sum", math.nan)}
    calls = out["verify_many_calls"]
    out["avg_batch_rows"] = out["verify_many_rows"] / calls if calls and calls > 0 else math.nan
    return out


# ---- gates and report ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Gate:
    """One check of a run: ``passed`` is None when the endpoint it needs was not run.
    ``required`` gates decide the exit code; goals only with ``--strict``."""

    name: str
    required: bool
    passed: bool | None
    value: str


def evaluate_gates(results: Mapping[str, Any], config: LoadConfig) -> list[Gate]:
    """The verdicts for a run's results (pure: tests feed it synthetic results).

    Example: ``exit_code(evaluate_gates({"endpoints": {}}, cfg))`` is 1: nothing was answered.
    """
    eps = results["endpoints"]
    errors = sum(e["errors"] for e in eps.values())
    answered = sum(e["ok"] for e in eps.values())
    gates = [Gate("no errors", True, errors == 0 and answered > 0,
                  f"{errors:,} errors in {answered + errors:,} requests")]
    batch = eps.get("verify_batch")
    floor = config.min_batch_sigs_per_s
    gates.append(Gate(f"verify_batch >= {floor:,.0f} signatures/s over HTTP", True,
                      None if batch is None else batch["signatures_per_s"] >= floor,
                      "not run" if batch is None else f"{batch['signatures_per_s']:,.0f} signatures/s"))
    fin = eps.get("finality")
    goal = config.finality_p95_goal_ms
    gates.append(Gate(f"finality p95 <= {goal:g} ms at {config.users} users (goal)", False,
                      None if fin is None else fin["p95_ms"] <= goal,
                      "not run" if fin is None else f"p95 {fin['p95_ms']:.2f} ms"))
    return gates


def exit_code(gates: Sequence[Gate], *, strict: bool = False) -> int:
    """1 when a gate that counts failed (goals count with ``strict``), else 0."""
    return int(any(g.passed is False and (g.required or strict) for g in gates))


def _ms(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:,.2f}"  # NaN: no answered request


def _client_verdict(client: Mapping[str, Any]) -> str:
    """Whether the load generator itself was the bottleneck: each process is one event loop, so
    one busy core per process means the requests waited for the client, not the server."""
    busy = client["cores_used"] / max(1, client["processes"])
    if busy >= 0.8:
        return f"client-bound ({busy:.0%} of a core per process): these figures understate the server"
    return f"not client-bound ({busy:.0%} of a core per process)"


def format_report(results: Mapping[str, Any]) -> str:
    """The plain-text table ``bizra loadtest`` prints."""
    c = results["config"]
    lines = [(f"bizra loadtest {c['url']}: {c['users']} users in {results['client']['processes']} client processes, "
              f"{c['duration_s']:g} s ({c['mode']}), think {c['think_s'] * 1e3:g} ms"), ""]
    head = f"{'endpoint':<13}{'requests':>10}{'errors':>8}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}" \
           f"{'srv p95':>9}{'sigs/s':>10}"
    lines += [head, "-" * len(head)]
    for e in results["endpoints"].values():
        sigs = f"{e['signatures_per_s']:,.0f}" if "signatures_per_s" in e else ""
        lines.append(f"{e['endpoint']:<13}{e['requests']:>10,}{e['errors']:>8,}{e['requests_per_s']:>10,.0f}"
                     f"{_ms(e['p50_ms']):>9}{_ms(e['p95_ms']):>9}{_ms(e['p99_ms']):>9}{_ms(e['server_p95_ms']):>9}{sigs:>10}")
        for what, n in e["error_examples"].items():
            lines.append(f"    {n:,} x {what}")
    cl = results["client"]
    lines += ["", "srv p95: the latency_us the service reports (handler time, without queueing and HTTP)",
              (f"client: {cl['cpu_seconds']:.1f} CPU s in {cl['load_seconds']:.1f} s = {cl['cores_used']:.2f} of "
               f"{cl['cpus']} cores in {cl['processes']} processes: " + _client_verdict(cl)),
              "load average before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}".format(
                  *results["load_average"]["before"], *results["load_average"]["after"])]
    s = results.get("server") or {}
    if s:
        lines.append(f"server: {s['cpu_seconds']:.1f} CPU s; {s['verify_many_calls']:,.0f} verify_many calls, "
                     f"average batch {s['avg_batch_rows']:,.1f} rows")
    lines.append("")
    for g in results["gates"]:
        verdict = "n/a " if g["passed"] is None else ("PASS" if g["passed"] else ("FAIL" if g["required"] else "MISS"))
        lines.append(f"{verdict}  {g['name']}: {g['value']}")
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    """NaN (an endpoint without answers) as null: strict JSON readers reject NaN."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def cmd_loadtest(args: argparse.Namespace) -> int:
    """``bizra loadtest``: bad arguments raise BizraError (exit 2 via the CLI); gates decide 0 or 1."""
    config = LoadConfig.from_args(args)
    if args.json is not None and not args.json.parent.is_dir():
        raise BizraError(f"--json: {args.json.parent}: no such directory")
    results = run_loadtest(config)
    print(format_report(results))
    if args.json is not None:
        args.json.write_text(json.dumps(_json_safe(results), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()
    return results["exit_code"]
