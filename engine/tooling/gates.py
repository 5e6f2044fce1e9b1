"""``bizra gates``: the release GO/NO-GO table, every gate measured on the machine it runs on.

A gate is a small record (:class:`Gate`): a name, a target, a ``measure(ctx)`` function that
runs the real code and returns a :class:`Measurement`, and a verdict rule (the value against
``target_value``, or a rule of its own). :func:`judge` turns a measurement into PASS, FAIL or
SKIP (a skip always says why and never fails the run); :func:`exit_code` is 1 when any gate
failed. Measurements shared by several gates (one verify run feeds three of them) are made
once per run through ``ctx.once``.

Throughput targets are ratios against libsodium measured in the same run on the same data
(docs/design.md, "Tests and benchmarks": these machines are shared and noisy), so they hold on any machine; the
latency targets are the runbook's goals. docs/gates.md explains each target.

Example::

    bizra gates --quick --json gates.json     # seconds: reduced sizes, coverage and audit skipped
    bizra gates --json gates.json --baseline previous.json
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


from engine.model.errors import InputError
from engine.tooling.gate_checks import (
    REGRESSION_PERCENT,
    Context, Measurement, all_within, interpret_audit, interpret_bandit, measure_audit,
    measure_batch_effectiveness, measure_conformance, measure_coverage_engine,
    measure_coverage_kernels, measure_determinism, measure_finality, measure_finality_e2e,
    measure_regression, measure_security_scan, measure_sign, measure_verify, measure_verify_b64, regression,
    throughputs, within_tolerance,
)
from engine.verification.api import resolve_threads, usable_cpus

__all__ = ["Gate", "Measurement", "Result", "add_cli", "build_gates", "cmd_gates", "exit_code",
           "interpret_audit", "interpret_bandit", "judge", "load_baseline", "regression", "run_gates", "within_tolerance"]

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
COVERAGE_TARGET = 95.0
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Gate:
    """One row of the table. ``higher_is_better``: PASS iff value >= target_value (else <=)."""

    name: str
    target: str
    measure: Callable[[Any], Measurement]
    target_value: float = 0.0
    higher_is_better: bool = True
    rule: Callable[[Measurement], bool] | None = None  # replaces the comparison when given


@dataclasses.dataclass(frozen=True)
class Result:
    name: str
    target: str
    measured: str
    verdict: str
    reason: str
    value: float | None
    details: dict
    seconds: float


def judge(gate: Gate, m: Measurement, seconds: float = 0.0) -> Result:
    """PASS/FAIL/SKIP of one measurement. Example: ``judge(g, Measurement(None, "-", skip="x")).verdict == "SKIP"``."""
    if m.skip is not None:
        verdict, reason = SKIP, m.skip
    elif m.fail is not None:
        verdict, reason = FAIL, m.fail
    elif gate.rule is not None:
        verdict, reason = (PASS if gate.rule(m) else FAIL), ""
    elif m.value is None:
        verdict, reason = FAIL, "nothing measured"
    else:
        ok = m.value >= gate.target_value if gate.higher_is_better else m.value <= gate.target_value
        verdict, reason = (PASS if ok else FAIL), ""
    return Result(gate.name, gate.target, m.shown, verdict, reason, m.value, m.details, round(seconds, 3))


def exit_code(results: list[Result]) -> int:
    """1 if any gate failed, else 0 (SKIP never fails a run)."""
    return 1 if any(r.verdict == FAIL for r in results) else 0


def run_gates(gates: list[Gate], ctx: Any, say: Callable[[str], None] = lambda _: None) -> list[Result]:
    """Measure and judge each gate in order; a crashing measurement is that gate's FAIL."""
    results = []
    for gate in gates:
        say(f"measuring {gate.name} ...")
        t = time.perf_counter()
        try:
            m = gate.measure(ctx)
        except Exception as exc:  # a gate that cannot run is a failed gate, never a silent pass
            m = Measurement(None, "error", fail=f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300])
        r = judge(gate, m, time.perf_counter() - t)
        results.append(r)
        say(f"{gate.name}: {r.verdict} ({r.measured}){' - ' + r.reason if r.reason else ''} [{r.seconds:.1f} s]")
    return results


# ---- the table ------------------------------------------------------------------------------


def build_gates(threads: int) -> list[Gate]:
    """The gates in table order; ratio targets scale with the threads a machine can run at once."""
    cores = min(threads, usable_cpus())
    sign_target, verify_target = round(0.9 * cores, 2), 3.0 * cores
    return [
        Gate("sign-throughput", f">= {sign_target:.2f}x libsodium 1-thread (0.9 x {cores} threads)",
             measure_sign, sign_target),
        Gate("verify-throughput", f">= {verify_target:.1f}x libsodium 1-thread (3 x {cores} threads)",
             measure_verify, verify_target),
        Gate("batch-effectiveness", ">= 2.0x our one-by-one verify", measure_batch_effectiveness, 2.0),
        Gate("verify-b64-p95", "p95 <= 1.0x libsodium's p95 for the same 64", measure_verify_b64, 1.0,
             higher_is_better=False),
        Gate("finality-p95", "p95 <= 2 us per is_finalized call", measure_finality, 2.0, higher_is_better=False),
        Gate("finality-e2e-p95", "p95 <= 2 ms per POST /api/v1/finality", measure_finality_e2e, 2.0,
             higher_is_better=False),
        Gate("determinism", "3 of 3 validators agree at every sync point", measure_determinism, 1.0),
        Gate("conformance", "every ZIP-215 verdict, single and batch", measure_conformance, 0.0,
             higher_is_better=False),
        Gate("coverage-engine", f">= {COVERAGE_TARGET:.0f}% of engine/ (test suite)", measure_coverage_engine,
             COVERAGE_TARGET),
        Gate("coverage-kernels", f">= {COVERAGE_TARGET:.0f}% of kernels/ (unit tests, NUMBA_DISABLE_JIT=1)",
             measure_coverage_kernels, COVERAGE_TARGET),
        Gate("dependency-audit", "0 known vulnerabilities (pip-audit)", measure_audit, 0.0, higher_is_better=False),
        Gate("security-scan", "0 findings in engine/, kernels/ (bandit; lows fixed or # nosec with a reason)",
             measure_security_scan, 0.0, higher_is_better=False),
        Gate("no-regression", f"every throughput >= {100 - REGRESSION_PERCENT}% of baseline (vs libsodium)",
             measure_regression, rule=all_within),
    ]


GATE_NAMES = [g.name for g in build_gates(1)]


def load_baseline(path: Path) -> dict:
    """A previous ``--json`` output; one clear InputError for anything else."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"--baseline {path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"--baseline {path}: is a directory") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"--baseline {path}: not JSON ({getattr(exc, 'msg', exc)})") from None
    ok = isinstance(data, dict) and isinstance(data.get("throughputs"), dict) and all(
        isinstance(v, dict) and isinstance(v.get("vs_libsodium"), (int, float)) for v in data["throughputs"].values())
    if not ok:
        raise InputError(f"--baseline {path}: not a `bizra gates --json` output (no throughputs)")
    return data


def describe_machine() -> dict:
    """CPUs, load, Python and library versions: what a reader needs to compare two runs."""
    model = platform.processor()
    try:
        model = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                     if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for pkg in ("bizra", "numpy", "numba", "pynacl", "polars", "fastapi", "uvicorn", "httpx", "pip-audit"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"cpus": os.cpu_count(), "usable_cpus": usable_cpus(), "cpu_model": model,
            "platform": platform.platform(), "python": platform.python_version(),
            "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None, "versions": versions}


def format_table(results: list[Result]) -> str:
    head = ("gate", "target", "measured", "verdict")
    rows = [(r.name, r.target, r.measured, r.verdict + (f" ({r.reason})" if r.reason else "")) for r in results]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3] for row in [head, *rows])


def _write_json(path: Path, report: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True, default=float) + "\n")
    os.replace(tmp, path)


# ---- command line ---------------------------------------------------------------------------


def _gate_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in GATE_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown gate {', '.join(unknown) or repr(text)} "
                                         f"(gates: {', '.join(GATE_NAMES)})")
    return names


def add_cli(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``bizra gates``; the command is :func:`cmd_gates`."""
    p = sub.add_parser("gates", help="measure the release gates on this machine and print GO/NO-GO",
                       description="Measure every release gate (throughput against libsodium in the same run, "
                       "finality and verify latency, 3-validator determinism, conformance vectors, coverage, "
                       "dependency audit, regression against --baseline) and print one row per gate. Exit 1 "
                       "when a gate fails, 0 otherwise (SKIP does not fail). Progress goes to stderr.",
                       epilog=f"gates: {', '.join(GATE_NAMES)}. See docs/gates.md for each target.")
    p.add_argument("--quick", action="store_true", help="reduced sizes (seconds); coverage and audit skipped")
    p.add_argument("--json", type=Path, metavar="FILE", help="write every gate, the throughputs and the machine")
    p.add_argument("--baseline", type=Path, metavar="FILE", help="a previous --json output: throughputs within 10%%")
    p.add_argument("--threads", type=int, default=None, help="worker threads (default: BIZRA_THREADS, else CPUs)")
    p.add_argument("--only", type=_gate_list, action="append", metavar="GATE[,GATE]", help="run only these gates")
    p.add_argument("--skip", type=_gate_list, action="append", metavar="GATE[,GATE]",
                   help="leave these out (reported as SKIP)")
    return p


def _selected(args: argparse.Namespace, gates: list[Gate]) -> list[Gate]:
    only = {n for group in args.only or [] for n in group}
    skip = {n for group in args.skip or [] for n in group}
    out = []
    for g in gates:
        if only and g.name not in only:
            continue
        if g.name in skip:
            reason = "left out with --skip"
            g = dataclasses.replace(g, measure=lambda _ctx, r=reason: Measurement(None, "-", skip=r))
        out.append(g)
    return out


def cmd_gates(args: argparse.Namespace) -> int:
    threads = resolve_threads(args.threads)
    baseline = load_baseline(args.baseline) if args.baseline is not None else None
    if args.json is not None and not args.json.parent.is_dir():
        raise InputError(f"--json {args.json}: folder {args.json.parent} does not exist")

    def say(msg: str) -> None:
        print(f"bizra gates: {msg}", file=sys.stderr, flush=True)

    ctx = Context(quick=args.quick, threads=threads, baseline=baseline)
    machine = describe_machine()
    say(f"{'quick' if args.quick else 'full'} run, {threads} threads, {machine['usable_cpus']} CPUs, "
        f"load {machine['load_avg_1m']}")
    t0 = time.perf_counter()
    results = run_gates(_selected(args, build_gates(threads)), ctx, say)
    print(format_table(results))
    code = exit_code(results)
    if args.json is not None:
        report = {"format": FORMAT_VERSION, "quick": args.quick, "threads": threads, "passed": code == 0,
                  "seconds": round(time.perf_counter() - t0, 1), "machine": machine,
                  "load_avg_1m_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
                  "throughputs": throughputs(ctx.memo),
                  "gates": [dataclasses.asdict(r) for r in results]}
        _write_json(args.json, report)
        say(f"wrote {args.json}")
    say("GO" if code == 0 else "NO-GO: " + ", ".join(r.name for r in results if r.verdict == FAIL))
    return code
