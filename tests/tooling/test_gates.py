"""`bizra gates`: argument errors, the verdict logic on hand-made measurements (no timing), and
one real `bizra gates --quick` run in a subprocess whose JSON must carry every gate."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.tooling import gates
from engine.cli import main
from engine.verification.api import usable_cpus
from engine.tooling.gates import (FAIL, GATE_NAMES, PASS, SKIP, Context, Gate, Measurement, exit_code, interpret_audit,
                          judge, regression, run_gates, within_tolerance)

ROOT = Path(__file__).resolve().parents[2]


def _gate(value, target=1.0, higher=True, **kw) -> Gate:
    return Gate("g", "t", lambda ctx: Measurement(value, str(value), **kw), target, higher_is_better=higher)


def _verdicts(gate_list) -> list[str]:
    return [r.verdict for r in run_gates(gate_list, Context(quick=True, threads=1))]


# ---- command line ---------------------------------------------------------------------------


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("argv, needle", [
    (["gates", "--bogus"], "unrecognized arguments: --bogus"),
    (["gates", "--only", "nosuch"], "unknown gate nosuch"),
    (["gates", "--skip", "sign-throughput,nope"], "unknown gate nope"),
    (["gates", "--threads", "two"], "invalid int value"),
])
def test_bad_flags_are_one_line_and_exit_2(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert needle in _one_error_line(capsys)


def test_bad_baseline_and_json_paths_are_one_line_errors(tmp_path, capsys, monkeypatch):
    # Measuring anything would be a bug: every check here comes before the first gate runs.
    monkeypatch.setattr(gates, "run_gates", lambda *a, **k: pytest.fail("measured despite a bad argument"))
    missing = tmp_path / "missing.json"
    assert main(["gates", "--quick", "--baseline", str(missing)]) == 2
    assert _one_error_line(capsys) == f"bizra gates: error: --baseline {missing}: no such file"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["gates", "--quick", "--baseline", str(bad)]) == 2
    assert f"--baseline {bad}: not JSON" in _one_error_line(capsys)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"gates": []}))
    assert main(["gates", "--quick", "--baseline", str(other)]) == 2
    assert "not a `bizra gates --json` output" in _one_error_line(capsys)
    assert main(["gates", "--quick", "--json", str(tmp_path / "no" / "out.json")]) == 2
    assert "does not exist" in _one_error_line(capsys)
    assert main(["gates", "--quick", "--threads", "0"]) == 2
    assert "must be >= 1" in _one_error_line(capsys)


def _fake_table(threads):
    return [Gate("sign-throughput", "t", lambda ctx: Measurement(2.0, "2.0"), 1.0),
            Gate("conformance", "t", lambda ctx: Measurement(3.0, "3 wrong"), 0.0, higher_is_better=False),
            Gate("dependency-audit", "t", lambda ctx: Measurement(None, "-", skip="not installed"))]


def test_a_failing_gate_makes_the_command_exit_1_and_skip_does_not(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(gates, "build_gates", _fake_table)
    out = tmp_path / "g.json"
    assert main(["gates", "--quick", "--json", str(out)]) == 1
    report = json.loads(out.read_text())
    assert [(g["name"], g["verdict"]) for g in report["gates"]] == [
        ("sign-throughput", PASS), ("conformance", FAIL), ("dependency-audit", SKIP)]
    assert report["passed"] is False and report["machine"]["cpus"] == os.cpu_count()
    captured = capsys.readouterr()
    assert "NO-GO: conformance" in captured.err and "SKIP (not installed)" in captured.out
    # Leaving the failing gate out: PASS + SKIPs exit 0.
    assert main(["gates", "--quick", "--skip", "conformance"]) == 0
    assert "SKIP (left out with --skip)" in capsys.readouterr().out
    assert main(["gates", "--quick", "--only", "sign-throughput"]) == 0
    assert "conformance" not in capsys.readouterr().out


# ---- verdict logic --------------------------------------------------------------------------


def test_comparison_direction_and_boundaries():
    assert _verdicts([_gate(1.0), _gate(0.99), _gate(2.0, 2.0, higher=False), _gate(2.01, 2.0, higher=False)]) == [
        PASS, FAIL, PASS, FAIL]


def test_skip_never_fails_and_fail_always_does():
    skip = _gate(None, skip="quick mode")
    wrong = _gate(5.0, fail="honest signatures were rejected")  # a good number cannot rescue it
    assert _verdicts([skip, _gate(1.0)]) == [SKIP, PASS]
    assert exit_code(run_gates([skip, _gate(1.0)], None)) == 0
    results = run_gates([skip, wrong], None)
    assert [r.verdict for r in results] == [SKIP, FAIL] and results[1].reason == "honest signatures were rejected"
    assert exit_code(results) == 1
    assert judge(_gate(None), Measurement(None, "-")).verdict == FAIL  # nothing measured is no pass


def test_a_crashing_measurement_is_a_failed_gate():
    def boom(ctx):
        raise RuntimeError("server\ncrashed")

    (r,) = run_gates([Gate("g", "t", boom)], None)
    assert r.verdict == FAIL and r.reason == "RuntimeError: server crashed"


@pytest.mark.parametrize("current, baseline, ok", [
    (0.9, 1.0, True), (0.8999, 1.0, False), (1.8, 2.0, True), (1.7999, 2.0, False),
    (2.7, 3.0, True), (0.63, 0.7, True), (90.0, 100.0, True), (89.99, 100.0, False), (5.0, 1.0, True),
])
def test_regression_tolerance_is_exactly_ten_percent(current, baseline, ok):
    assert within_tolerance(current, baseline) is ok


def test_regression_gate_judges_every_throughput():
    base = {"throughputs": {"sign": {"vs_libsodium": 2.0}, "verify_batch": {"vs_libsodium": 6.0}}}
    gate = next(g for g in gates.build_gates(1) if g.name == "no-regression")
    at_edge = regression({"sign": {"vs_libsodium": 1.8}, "verify_batch": {"vs_libsodium": 5.4}}, base)
    assert judge(gate, at_edge).verdict == PASS
    one_low = regression({"sign": {"vs_libsodium": 2.5}, "verify_batch": {"vs_libsodium": 5.39}}, base)
    r = judge(gate, one_low)
    assert r.verdict == FAIL and "below: verify_batch" in r.measured
    assert one_low.details["sign"]["ok"] and not one_low.details["verify_batch"]["ok"]
    assert judge(gate, regression({"other": {"vs_libsodium": 1.0}}, base)).verdict == SKIP


def test_regression_gate_skips_without_or_with_a_mismatched_baseline():
    gate = next(g for g in gates.build_gates(1) if g.name == "no-regression")
    assert gate.measure(Context(quick=True, threads=1)).skip == "no --baseline given"
    full_baseline = Context(quick=True, threads=1, baseline={"quick": False, "throughputs": {}})
    assert "differ in --quick" in gate.measure(full_baseline).skip


def _audit_json(*deps) -> str:
    return json.dumps({"dependencies": list(deps), "fixes": []})


def test_audit_verdicts():
    clean = {"name": "numpy", "version": "2.0", "vulns": []}
    editable = {"name": "bizra", "skip_reason": "distribution marked as editable"}
    unknown = {"name": "attrs", "skip_reason": "Dependency not found on PyPI and could not be audited: attrs (26.1.0)"}
    vuln = {"name": "jinja2", "version": "3.0", "vulns": [{"id": "GHSA-1234", "fix_versions": ["3.1"]}]}
    assert judge(_audit_gate(), interpret_audit(0, _audit_json(clean, editable), "")).verdict == PASS
    r = judge(_audit_gate(), interpret_audit(1, _audit_json(clean, vuln, unknown), ""))
    assert r.verdict == FAIL and "jinja2==3.0 (GHSA-1234)" in r.measured
    m = interpret_audit(0, _audit_json(clean, unknown, editable), "")  # pip-audit itself says "no known"
    assert m.skip and "could not judge 1 packages" in m.skip and m.shown == "1 of 2 packages audited"
    m = interpret_audit(1, "", "ConnectionError: HTTPSConnectionPool(host='pypi.org'): Max retries exceeded")
    assert m.skip.startswith("vulnerability database unreachable")
    assert judge(_audit_gate(), interpret_audit(2, "", "usage: pip-audit: bad flag")).verdict == FAIL


def _audit_gate() -> Gate:
    return next(g for g in gates.build_gates(1) if g.name == "dependency-audit")


def test_ratio_targets_scale_with_usable_threads():
    one = {g.name: g.target_value for g in gates.build_gates(1)}
    assert one["sign-throughput"] == 0.9 and one["verify-throughput"] == 3.0
    many = {g.name: g.target_value for g in gates.build_gates(1024)}  # never more than the CPUs
    assert many["verify-throughput"] == 3.0 * min(1024, usable_cpus())


# ---- a real quick run -----------------------------------------------------------------------


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", "gates", "--quick", "--threads", "2", *args],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=600)


def test_quick_run_end_to_end(tmp_path):
    out = tmp_path / "gates.json"
    done = _run("--json", str(out))
    report = json.loads(out.read_text())
    verdicts = {g["name"]: g for g in report["gates"]}
    assert list(verdicts) == GATE_NAMES
    assert all(g["verdict"] in (PASS, FAIL, SKIP) and g["target"] and g["measured"] for g in report["gates"])
    assert done.returncode == (1 if any(g["verdict"] == FAIL for g in report["gates"]) else 0), done.stderr
    # correctness gates are not noisy: they pass on any machine
    assert verdicts["determinism"]["verdict"] == PASS and verdicts["determinism"]["details"]["consensus_achieved"]
    assert verdicts["conformance"]["verdict"] == PASS and verdicts["conformance"]["details"]["vectors"] == 1077
    for name in ("coverage-engine", "coverage-kernels"):
        assert (verdicts[name]["verdict"], verdicts[name]["reason"]) == (SKIP, "quick mode")
    assert verdicts["no-regression"]["reason"] == "no --baseline given"
    assert verdicts["security-scan"]["verdict"] == PASS and verdicts["security-scan"]["value"] == 0  # runs in quick mode too
    assert verdicts["finality-e2e-p95"]["details"]["errors"] == 0
    assert set(report["throughputs"]) == {"sign", "verify_batch", "verify_single"}
    assert report["quick"] is True and report["machine"]["python"] == sys.version.split()[0]
    for name in GATE_NAMES:  # the table on stdout has every row, the progress went to stderr
        assert any(line.startswith(name + " ") for line in done.stdout.splitlines()), name
    assert "bizra gates: measuring conformance" in done.stderr

    again = _run("--only", "no-regression", "--baseline", str(out))
    (row,) = [line for line in again.stdout.splitlines() if line.startswith("no-regression")]
    assert row.rstrip().endswith((PASS, FAIL)) and "of baseline" in row
    assert again.returncode == (1 if row.rstrip().endswith(FAIL) else 0)


# ---- the coverage and audit measurements, on small stand-ins ----------------------------------




