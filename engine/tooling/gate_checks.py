"""The measurements behind ``bizra gates`` (engine.tooling.gates holds the gate records, the verdicts,
the table and the command line): each ``measure_*(ctx)`` runs the real code on this machine and
returns a :class:`Measurement`. Shared measurements (one verify run feeds three gates) are
made once per run through ``Context.once``; ``Context.size(full, quick)`` picks the sizes.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess  # nosec B404  # runs pytest, pip-audit and bandit with fixed argv lists, never a shell
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from engine.tooling.serve_process import free_port, start_serve, stop, wait_ready

__all__ = [
    "REGRESSION_PERCENT", "SCANNED", "Context", "Measurement", "all_within", "interpret_audit", "interpret_bandit",
    "regression", "measure_security_scan",
    "throughputs",            "within_tolerance", "measure_audit", "measure_batch_effectiveness",
    "measure_conformance", "measure_coverage_engine", "measure_coverage_kernels",
    "measure_determinism", "measure_finality", "measure_finality_e2e", "measure_regression",
    "measure_sign", "measure_verify", "measure_verify_b64"
]

REGRESSION_PERCENT = 10


def source_tree() -> Path | None:
    """The source checkout this engine runs from (engine/ beside tests/ and pyproject.toml), or
    None for an installed wheel: the coverage gates run the test suite, which only a checkout has."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "tests").is_dir() and (root / "pyproject.toml").is_file() else None


# None when installed from a wheel; tests point it at stand-in trees.
ROOT: Path | None = source_tree()
_NO_TREE = "needs the source tree (tests/ beside engine/): run bizra gates from a checkout"


@dataclasses.dataclass(frozen=True)
class Measurement:
    """What a gate measured: ``value`` is judged, ``shown`` is printed, ``details`` go to JSON.

    ``skip``: why nothing could be measured honestly; ``fail``: a measurement that ran but
    proved the code wrong (bad verdicts, a crashed server), whatever the value.
    """

    value: float | None
    shown: str
    details: dict = dataclasses.field(default_factory=dict)
    skip: str | None = None
    fail: str | None = None


# ---- run context and sizes ----------------------------------------------------------------


@dataclasses.dataclass
class Context:
    quick: bool
    threads: int
    baseline: dict | None = None
    memo: dict = dataclasses.field(default_factory=dict)

    def once(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = fn()
        return self.memo[key]

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def _interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each fn per repeat, run in turns so a burst of load hits all of them alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def _rates(n: int, fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Rows/s of each fn from its best repeat (the least disturbed by other processes, as timeit
    advises), plus the CPU seconds per wall second of one extra run: how many cores it really got."""
    out = {f"{k}_per_s": n / min(v) for k, v in _interleaved(fns, repeats).items()}
    for name, fn in fns.items():
        c, t = time.process_time(), time.perf_counter()
        fn()
        out[f"{name}_cpu_per_wall"] = round((time.process_time() - c) / (time.perf_counter() - t), 2)
    return out


# ---- signing and verification throughput ---------------------------------------------------


def _measure_sign(ctx: Context) -> dict:
    import nacl.signing

    from engine.verification.keys import derive_seeds, sign_many

    n, n_keys = ctx.size(20_000, 2_000), ctx.size(1_000, 200)
    rng = np.random.default_rng(8)
    bodies = rng.integers(0, 256, (n, 110), dtype=np.uint8)
    key_of = rng.integers(0, n_keys, n)
    seeds = derive_seeds("bizra-gates", n_keys)  # test keys: their seed is public
    keys = [nacl.signing.SigningKey(bytes(s)) for s in seeds]
    rows, owners = [bytes(b) for b in bodies], key_of.tolist()
    ours = sign_many(bodies, seeds, key_index=key_of, threads=ctx.threads)
    same = all(keys[owners[i]].sign(rows[i]).signature == ours[i].tobytes() for i in range(0, n, max(1, n // 50)))
    return {"rows": n, "keys": n_keys, "same_signatures": same, **_rates(n, {
        "libsodium": lambda: [keys[k].sign(b) for k, b in zip(owners, rows)],
        "sign_many": lambda: sign_many(bodies, seeds, key_index=key_of, threads=ctx.threads),
    }, ctx.size(5, 1))}


def _measure_verify(ctx: Context) -> dict:
    from engine.verification import numba_backend
    from engine.synthetic import signed_columns
    from engine.verification.api import verify_many
    from engine.verification.sodium_backend import verify_columns_plain

    n, n_keys = ctx.size(16_384, 2_048), ctx.size(1_000, 256)
    cols = signed_columns(n, n_keys, seed=3)
    msgs = cols.msg_data.reshape(n, -1)
    numba_backend.forget_bad_share()  # earlier calls' bad rows must not steer this honest column
    run = {
        "libsodium": lambda: verify_columns_plain(cols),
        "batch": lambda: verify_many(msgs, cols.sigs, cols.pks, threads=ctx.threads, backend="numba", batch=True),
        "single": lambda: verify_many(msgs, cols.sigs, cols.pks, threads=ctx.threads, backend="numba", batch=False),
    }
    all_valid = all(bool(fn().all()) for fn in run.values())  # also warms the key cache and the JIT
    return {"rows": n, "keys": n_keys, "all_valid": all_valid, **_rates(n, run, ctx.size(5, 1))}


def measure_sign(ctx: Context) -> Measurement:
    s = ctx.once("sign", lambda: _measure_sign(ctx))
    ratio = s["sign_many_per_s"] / s["libsodium_per_s"]
    return Measurement(ratio, f"{s['sign_many_per_s']:,.0f}/s = {ratio:.2f}x libsodium 1-thread "
                       f"({s['libsodium_per_s']:,.0f}/s); {s['sign_many_cpu_per_wall']:.1f} cores busy",
                       {**s, "ratio": ratio, "threads": ctx.threads},
                       fail=None if s["same_signatures"] else "sign_many signatures differ from libsodium's")


def measure_verify(ctx: Context) -> Measurement:
    v = ctx.once("verify", lambda: _measure_verify(ctx))
    ratio = v["batch_per_s"] / v["libsodium_per_s"]
    return Measurement(ratio, f"{v['batch_per_s']:,.0f}/s = {ratio:.2f}x libsodium 1-thread "
                       f"({v['libsodium_per_s']:,.0f}/s); {v['batch_cpu_per_wall']:.1f} cores busy",
                       {**v, "ratio": ratio, "threads": ctx.threads},
                       fail=None if v["all_valid"] else "honest signatures were rejected")


def measure_batch_effectiveness(ctx: Context) -> Measurement:
    v = ctx.once("verify", lambda: _measure_verify(ctx))
    ratio = v["batch_per_s"] / v["single_per_s"]
    return Measurement(ratio, f"{ratio:.2f}x (batch {v['batch_per_s']:,.0f}/s, one-by-one {v['single_per_s']:,.0f}/s)",
                       {"ratio": ratio, "batch_per_s": v["batch_per_s"], "single_per_s": v["single_per_s"]},
                       fail=None if v["all_valid"] else "honest signatures were rejected")


def measure_verify_b64(ctx: Context) -> Measurement:
    from engine.synthetic import signed_columns
    from engine.verification.api import verify_many
    from engine.verification.sodium_backend import verify_columns_plain

    cols = signed_columns(64, 64, seed=64)  # every key distinct: the costly shape of a batch
    msgs = cols.msg_data.reshape(64, -1)
    ok = bool(verify_many(msgs, cols.sigs, cols.pks, threads=ctx.threads, backend="numba").all())
    times = _interleaved({
        "batch": lambda: verify_many(msgs, cols.sigs, cols.pks, threads=ctx.threads, backend="numba", batch=True),
        "libsodium": lambda: verify_columns_plain(cols),
    }, ctx.size(300, 30))
    ms = {f"{k}_{q}_ms": float(np.percentile(v, q)) * 1e3 for k, v in times.items() for q in (50, 95)}
    ratio = ms["batch_95_ms"] / ms["libsodium_95_ms"]
    return Measurement(ratio, f"p95 {ms['batch_95_ms']:.2f} ms = {ratio:.2f}x libsodium's p95 for the same 64 "
                       f"({ms['libsodium_95_ms']:.2f} ms; medians {ms['batch_50_ms']:.2f} / "
                       f"{ms['libsodium_50_ms']:.2f} ms)",
                       {**ms, "ratio": ratio, "samples": len(times["batch"])},
                       fail=None if ok else "honest signatures were rejected")


# ---- finality ------------------------------------------------------------------------------


def measure_finality(ctx: Context) -> Measurement:
    from engine.consensus.blockgraph import BlockGraph
    from engine.tooling.determinism import generate

    n_blocks = ctx.size(10_000, 1_000)
    hashes, parents, weights, vv, ve, vt = generate(n_blocks=n_blocks, n_epochs=ctx.size(300, 30))
    g = BlockGraph(weights, genesis=hashes[0].tobytes())
    g.add_blocks(hashes, parents)
    g.add_votes(vv, ve, vt)
    flags = dict(zip((bytes(h) for h in g.block_hashes()), g.finalized_flags().tolist()))
    rng = np.random.default_rng(5)
    picks = rng.integers(0, n_blocks, ctx.size(20_000, 2_000))
    queries = [hashes[i].tobytes() for i in picks] + [rng.bytes(32) for _ in range(len(picks) // 10)]
    g.is_finalized(queries[0])  # builds the O(1) index once, as a live node has it built
    ns, answers, clock = [], [], time.perf_counter_ns
    for q in queries:
        t = clock()
        a = g.is_finalized(q)
        ns.append(clock() - t)
        answers.append(a)
    right = all(a == flags.get(q, False) for q, a in zip(queries, answers))
    p95 = float(np.percentile(ns, 95)) / 1e3
    return Measurement(p95, f"p95 {p95:.2f} us over {len(ns):,} calls ({n_blocks:,} blocks)",
                       {"p50_us": float(np.percentile(ns, 50)) / 1e3, "p95_us": p95,
                        "p99_us": float(np.percentile(ns, 99)) / 1e3, "calls": len(ns), "blocks": n_blocks,
                        "finalized_answers": int(sum(answers))},
                       fail=None if right else "is_finalized disagrees with finalized_flags")


def measure_finality_e2e(ctx: Context) -> Measurement:
    if any(importlib.util.find_spec(m) is None for m in ("fastapi", "uvicorn", "httpx")):
        return Measurement(None, "-", skip="the serve extra is not installed (pip install -e '.[serve]')")
    import httpx
    import polars as pl

    from engine.synthetic import generate_dataset

    with tempfile.TemporaryDirectory(prefix="bizra-gates-") as tmp:
        data, log = Path(tmp) / "data", Path(tmp) / "serve.log"
        generate_dataset(data, validators=ctx.size(64, 8), blocks=ctx.size(400, 32),
                         attestations=ctx.size(8_000, 300), seed=17, threads=ctx.threads, progress=False)
        known = pl.read_parquet(data / "blocks.parquet", columns=["hash"])["hash"].to_list()
        rpc, prom = free_port(), free_port()
        # finality needs no token: nothing secret is passed on
        proc = start_serve(data, {"RPC_PORT": str(rpc), "PROMETHEUS_PORT": str(prom), "METRICS_ENABLED": "1",
                                  "BIZRA_THREADS": str(ctx.threads), "BIZRA_API_TOKEN": ""}, log)  # nosec B105  # no token: off
        url = f"http://127.0.0.1:{rpc}"
        try:
            if not wait_ready(url, proc):
                last = _tail(log.read_text(errors="replace"))
                return Measurement(None, "no server", fail=f"bizra serve not ready: {last}")
            rng = np.random.default_rng(11)
            payloads = [{"block_hash": "0x" + known[i].hex()} for i in rng.integers(0, len(known), ctx.size(600, 60))]
            with httpx.Client(base_url=url, timeout=10) as client:
                for p in payloads[:20]:  # connection set up and first-request paths out of the sample
                    client.post("/api/v1/finality", json=p)
                lat, server_us, errors = [], [], 0
                for p in payloads:
                    t = time.perf_counter()
                    r = client.post("/api/v1/finality", json=p)
                    lat.append(time.perf_counter() - t)
                    if r.status_code == 200:
                        server_us.append(r.json()["latency_us"])
                    else:
                        errors += 1
        finally:
            stop(proc)
    p95 = float(np.percentile(lat, 95)) * 1e3
    return Measurement(p95, f"p95 {p95:.2f} ms over {len(lat)} sequential requests (server side p95 "
                       f"{np.percentile(server_us or [0], 95):.0f} us)",
                       {"p50_ms": float(np.percentile(lat, 50)) * 1e3, "p95_ms": p95, "requests": len(lat),
                        "errors": errors, "server_p95_us": float(np.percentile(server_us or [0], 95))},
                       fail=f"{errors} of {len(lat)} requests failed" if errors else None)


# ---- determinism and conformance ------------------------------------------------------------


def measure_determinism(ctx: Context) -> Measurement:
    from engine.tooling.determinism import run_three_validators

    n_blocks, n_epochs = ctx.size(10_000, 1_000), ctx.size(300, 30)
    run = run_three_validators(n_blocks=n_blocks, n_epochs=n_epochs)
    p = run.proof
    shown = (f"{'3/3 agree' if run.consensus else 'DISAGREE'} at {p['sync_points_agreeing']}/"
             f"{p['sync_points_checked']} sync points, {n_blocks:,} blocks, "
             f"{run.final[0]['finalized_blocks']:,} finalized")
    return Measurement(1.0 if run.consensus else 0.0, shown, p)


def measure_conformance(ctx: Context) -> Measurement:
    from engine.verification.conformance import MODES, conformance_mismatches, load_vectors

    vectors = load_vectors()
    wrong = {mode: conformance_mismatches(vectors, mode, threads=ctx.threads) for mode in MODES}
    n = len(vectors)
    shown = ", ".join(f"{mode} {n - len(w)}/{n}" for mode, w in wrong.items())
    bad = sum(len(w) for w in wrong.values())
    return Measurement(float(bad), shown, {"vectors": n, "mismatches": {k: w[:20] for k, w in wrong.items()}})


# ---- coverage -------------------------------------------------------------------------------


def _kernel_test_files(root: Path) -> list[str]:
    """The kernel tests that can run uncompiled: the files importing tests/support/nojit.py (it
    scales their sizes down under NUMBA_DISABLE_JIT=1)."""
    pattern = re.compile(r"^(from tests\.support import nojit\b|from tests\.support\.nojit import)", re.MULTILINE)
    return sorted(str(p.relative_to(root)) for p in (root / "tests").rglob("test_*.py") if pattern.search(p.read_text()))


def _coverage(ctx: Context, package: str, tests: list[str], extra_env: dict[str, str], timeout: int) -> Measurement:
    if ROOT is None:
        return Measurement(None, "-", skip=_NO_TREE)
    if ctx.quick:
        return Measurement(None, "-", skip="quick mode")
    if importlib.util.find_spec("pytest_cov") is None:
        return Measurement(None, "-", skip="pytest-cov is not installed (pip install -e '.[dev]')")
    with tempfile.TemporaryDirectory(prefix="bizra-cov-") as tmp:
        report = Path(tmp) / "coverage.json"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(ctx.threads),
               f"--cov={package}", f"--cov-report=json:{report}", "--cov-report=", *tests]
        env = {**os.environ, **extra_env, "COVERAGE_FILE": str(Path(tmp) / ".coverage"), "COLUMNS": "200"}
        try:
            done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,  # nosec B603  # fixed argv
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return Measurement(None, "timed out", fail=f"tests did not finish in {timeout} s")
        summary = _tail(done.stdout)
        if not report.exists():
            return Measurement(None, "no report", fail=f"pytest exited {done.returncode}: {summary}")
        data = json.loads(report.read_text())
    totals = data["totals"]
    by_file = sorted((round(f["summary"]["percent_covered"], 1), name) for name, f in data["files"].items())
    pct = float(totals["percent_covered"])
    # a coverage figure from a run with failing tests is not the suite's coverage: FAIL, say why
    return Measurement(pct, f"{pct:.1f}% of {totals['num_statements']:,} statements",
                       {"percent": pct, "statements": totals["num_statements"], "missing": totals["missing_lines"],
                        "tests": tests, "pytest": summary, "failures": _failures(done.stdout),
                        "least_covered": {name: p for p, name in by_file[:8]}},
                       fail=f"tests failed: {summary}{_first_failure(done.stdout)}" if done.returncode else None)


def _failures(stdout: str) -> list[str]:
    return [ln[len("FAILED "):] for ln in stdout.splitlines() if ln.startswith("FAILED ")][:50]


def _first_failure(stdout: str) -> str:
    first = _failures(stdout)[:1]
    return f" (first: {first[0][:120]})" if first else ""


def _tail(text: str) -> str:
    """The last non-empty line (pytest's summary, a server's last log line), without its ===."""
    lines = [ln.strip("= ") for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "(no output)"


def measure_coverage_engine(ctx: Context) -> Measurement:
    return _coverage(ctx, "engine", ["tests"], {}, timeout=1800)


def measure_coverage_kernels(ctx: Context) -> Measurement:
    # Compiled kernels are invisible to coverage: run their unit tests as plain Python
    tests = _kernel_test_files(ROOT) if ROOT is not None else []
    return _coverage(ctx, "kernels", tests, {"NUMBA_DISABLE_JIT": "1"}, timeout=1200)


# ---- dependency audit -----------------------------------------------------------------------

_UNREACHABLE = re.compile(r"connection|max retries|timed? ?out|resolve|name or service|unreachable|"
                          r"serviceerror|temporary failure|network", re.IGNORECASE)


def interpret_audit(returncode: int, stdout: str, stderr: str) -> Measurement:
    """Verdict of one ``pip-audit --format json`` run: FAIL on any known vulnerability, SKIP when
    the database could not judge every installed package, PASS only when it judged all clean."""
    try:
        deps = json.loads(stdout)["dependencies"]
    except (json.JSONDecodeError, KeyError, TypeError):
        line = _tail(stderr)
        if _UNREACHABLE.search(stderr):
            return Measurement(None, "-", skip=f"vulnerability database unreachable: {line}")
        return Measurement(None, "-", fail=f"pip-audit exited {returncode}: {line}")
    vulns = [f"{d['name']}=={d['version']} ({v['id']})" for d in deps for v in d.get("vulns", [])]
    audited = [d for d in deps if "vulns" in d]
    unaudited = [d for d in deps if "vulns" not in d and "editable" not in d.get("skip_reason", "")]
    details = {"packages": len(deps), "audited": len(audited), "unaudited": [d["name"] for d in unaudited],
               "vulnerabilities": vulns}
    if vulns:
        return Measurement(float(len(vulns)), f"{len(vulns)} known: {', '.join(vulns[:5])}", details)
    if unaudited:
        why = unaudited[0].get("skip_reason", "no verdict")
        return Measurement(None, f"{len(audited)} of {len(audited) + len(unaudited)} packages audited", details,
                           skip=f"the vulnerability database could not judge {len(unaudited)} packages "
                                f"(first: {why[:120]})")
    return Measurement(0.0, f"0 known in {len(audited)} packages", details)


def measure_audit(ctx: Context) -> Measurement:
    if ctx.quick:
        return Measurement(None, "-", skip="quick mode (the audit queries the network)")
    env = dict(os.environ)
    if importlib.util.find_spec("pip_audit") is not None:
        cmd = [sys.executable, "-m", "pip_audit"]
    elif shutil.which("pip-audit"):
        cmd = [shutil.which("pip-audit")]
        env["PIPAPI_PYTHON_LOCATION"] = sys.executable  # audit this environment, not the tool's own
    else:
        return Measurement(None, "-", skip="pip-audit is not installed")
    try:
        done = subprocess.run([*cmd, "--format", "json", "--progress-spinner", "off", "--skip-editable"],  # nosec B603  # fixed argv
                              env=env, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        return Measurement(None, "-", skip="vulnerability database unreachable: pip-audit timed out after 300 s")
    return interpret_audit(done.returncode, done.stdout, done.stderr)


# ---- static security scan -------------------------------------------------------------------

SCANNED = ("engine", "kernels")


def interpret_bandit(returncode: int, stdout: str, stderr: str) -> Measurement:
    """Verdict of one ``bandit -r engine kernels -f json`` run: the value is the number of
    findings left (bandit leaves out lines marked ``# nosec <id>``), so PASS means 0 medium or
    high findings and every low one fixed or marked; files bandit could not parse are a FAIL."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        line = (stderr.strip().splitlines() or ["no output"])[-1][:200]
        return Measurement(None, "-", fail=f"bandit exited {returncode}: {line}")
    results = doc.get("results", [])
    count = {s: sum(r.get("issue_severity") == s for r in results) for s in ("HIGH", "MEDIUM", "LOW")}
    details = {"high": count["HIGH"], "medium": count["MEDIUM"], "low": count["LOW"],
               "findings": [f"{r.get('filename')}:{r.get('line_number')} {r.get('test_id')} {r.get('issue_severity')}"
                            for r in results][:50],
               "lines": doc.get("metrics", {}).get("_totals", {}).get("loc")}
    if doc.get("errors"):
        first = doc["errors"][0]
        return Measurement(None, "-", details, fail=f"bandit could not scan {len(doc['errors'])} files "
                           f"(first: {first.get('filename')}: {first.get('reason')})")
    shown = f"{count['HIGH']} high, {count['MEDIUM']} medium, {count['LOW']} low unmarked"
    return Measurement(float(len(results)), shown, details)


def measure_security_scan(ctx: Context) -> Measurement:
    if ROOT is None:
        return Measurement(None, "-", skip=_NO_TREE)
    if importlib.util.find_spec("bandit") is None:
        return Measurement(None, "-", skip="bandit is not installed (pip install -e '.[dev]')")
    cmd = [sys.executable, "-m", "bandit", "-q", "-r", *SCANNED, "-f", "json"]
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,  # nosec B603  # fixed argv
                              timeout=600, check=False)
    except subprocess.TimeoutExpired:
        return Measurement(None, "-", fail="bandit did not finish in 600 s")
    return interpret_bandit(done.returncode, done.stdout, done.stderr)


# ---- regression -----------------------------------------------------------------------------


def within_tolerance(current: float, baseline: float, percent: int = REGRESSION_PERCENT) -> bool:
    """current >= baseline * (1 - percent/100), exactly on the numbers as written in the JSON.

    Example: ``within_tolerance(0.9, 1.0) and not within_tolerance(0.8999, 1.0)``.
    """
    return Fraction(repr(float(current))) * 100 >= Fraction(repr(float(baseline))) * (100 - percent)


def throughputs(memo: dict) -> dict[str, dict[str, float]]:
    """The throughputs measured so far in a run, each with its ratio to that run's libsodium."""
    out = {}
    if "sign" in memo:
        s = memo["sign"]
        out["sign"] = {"per_s": s["sign_many_per_s"], "vs_libsodium": s["sign_many_per_s"] / s["libsodium_per_s"]}
    if "verify" in memo:
        v = memo["verify"]
        for name in ("batch", "single"):
            rate = v[f"{name}_per_s"]
            out[f"verify_{name}"] = {"per_s": rate, "vs_libsodium": rate / v["libsodium_per_s"]}
    return out


def regression(current: dict, baseline: dict, percent: int = REGRESSION_PERCENT) -> Measurement:
    """Every throughput (normalised by libsodium) within ``percent`` of the baseline's."""
    names = [k for k in current if k in baseline.get("throughputs", {})]
    if not names:
        return Measurement(None, "-", skip="the baseline has none of this run's throughputs")
    rows = {k: {"baseline": baseline["throughputs"][k]["vs_libsodium"], "current": current[k]["vs_libsodium"]}
            for k in names}
    for row in rows.values():
        row["ok"] = within_tolerance(row["current"], row["baseline"], percent)
    worst = min(names, key=lambda k: rows[k]["current"] / rows[k]["baseline"])
    ratio = rows[worst]["current"] / rows[worst]["baseline"]
    bad = [k for k in names if not rows[k]["ok"]]
    shown = f"worst {worst} at {ratio:.1%} of baseline" + (f"; below: {', '.join(bad)}" if bad else "")
    return Measurement(ratio, shown, rows)


def measure_regression(ctx: Context) -> Measurement:
    if ctx.baseline is None:
        return Measurement(None, "-", skip="no --baseline given")
    if bool(ctx.baseline.get("quick")) != ctx.quick:
        return Measurement(None, "-", skip="the baseline and this run differ in --quick (different sizes)")
    ctx.once("sign", lambda: _measure_sign(ctx))
    ctx.once("verify", lambda: _measure_verify(ctx))
    return regression(throughputs(ctx.memo), ctx.baseline)


def all_within(m: Measurement) -> bool:
    return all(row["ok"] for row in m.details.values())


