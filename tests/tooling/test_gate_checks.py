"""The measurements behind bizra gates: coverage read from a real pytest-cov run, pip-audit judged, and the source-tree check."""
from __future__ import annotations

import json
import subprocess

import pytest

from engine.tooling.gates import Context
from tests.support import ROOT


def test_coverage_measurement_reads_a_real_pytest_cov_run(tmp_path, monkeypatch):
    """The coverage gate runs pytest-cov in a subprocess and reads its JSON report: a passing
    stand-in suite gives a percentage, a failing one is a FAIL that names the test."""
    from engine.tooling import gate_checks

    monkeypatch.setattr(gate_checks, "ROOT", tmp_path)
    (tmp_path / "mod_under_test.py").write_text("def f(x):\n    if x:\n        return 1\n    return 2\n")
    (tmp_path / "test_ok.py").write_text("import mod_under_test\ndef test_f():\n    assert mod_under_test.f(1) == 1\n")
    (tmp_path / "test_bad.py").write_text("def test_broken():\n    assert False\n")
    ctx = Context(quick=False, threads=1)
    m = gate_checks._coverage(ctx, "mod_under_test", ["test_ok.py"], {"PYTHONPATH": str(tmp_path)}, timeout=120)
    assert m.fail is None and m.value == pytest.approx(75.0) and m.details["statements"] == 4
    assert m.details["least_covered"] == {"mod_under_test.py": 75.0}
    m = gate_checks._coverage(ctx, "mod_under_test", ["test_ok.py", "test_bad.py"], {"PYTHONPATH": str(tmp_path)},
                              timeout=120)
    assert m.fail and "test_bad.py::test_broken" in m.fail
    assert gate_checks._coverage(Context(quick=True, threads=1), "x", [], {}, timeout=1).skip == "quick mode"


def test_audit_measurement_runs_pip_audit_and_judges_its_output(monkeypatch):
    from engine.tooling import gate_checks

    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        out = json.dumps({"dependencies": [{"name": "numpy", "version": "2.4.6", "vulns": []}]})
        return subprocess.CompletedProcess(cmd, 0, out, "")

    monkeypatch.setattr(gate_checks.subprocess, "run", fake_run)
    m = gate_checks.measure_audit(Context(quick=False, threads=1))
    assert m.value == 0.0 and m.skip is None and "--skip-editable" in calls[0]
    monkeypatch.setattr(gate_checks.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(gate_checks.shutil, "which", lambda name: None)
    assert gate_checks.measure_audit(Context(quick=False, threads=1)).skip == "pip-audit is not installed"




def test_coverage_gates_skip_without_a_source_tree(monkeypatch):
    """Installed from a wheel there is no tests/ to run: SKIP saying so, never a number."""
    from engine.tooling import gate_checks

    assert gate_checks.source_tree() == ROOT  # this checkout is one
    monkeypatch.setattr(gate_checks, "ROOT", None)
    for measure in (gate_checks.measure_coverage_engine, gate_checks.measure_coverage_kernels):
        for quick in (True, False):
            m = measure(Context(quick=quick, threads=1))
            assert m.value is None and m.skip is not None and "source tree" in m.skip


def test_kernel_coverage_runs_the_files_that_import_nojit():
    from engine.tooling import gate_checks

    files = gate_checks._kernel_test_files(ROOT)
    assert "tests/kernels/test_field25519.py" in files and "tests/kernels/test_ed25519_verify.py" in files
    assert "tests/consensus/test_blockgraph.py" in files
    assert not any("test_cli" in f or "support/" in f for f in files)


def test_security_scan_judges_bandit_output(monkeypatch):
    """The security-scan gate counts what bandit still reports: a medium finding or an unmarked
    low one is a value above the target 0; output that is not bandit's JSON, or files bandit
    could not parse, are a FAIL; without the source tree the gate is SKIP with the reason."""
    from engine.tooling import gate_checks
    from engine.tooling.gates import FAIL, PASS, SKIP, build_gates, judge

    gate = next(g for g in build_gates(1) if g.name == "security-scan")
    finding = {"filename": "engine/x.py", "line_number": 3, "test_id": "B310", "issue_severity": "MEDIUM"}
    low = {**finding, "test_id": "B101", "issue_severity": "LOW"}
    clean = gate_checks.interpret_bandit(0, json.dumps({"results": [], "errors": []}), "")
    assert (clean.value, clean.shown, judge(gate, clean).verdict) == (0.0, "0 high, 0 medium, 0 low unmarked", PASS)
    for results in ([finding], [low]):
        m = gate_checks.interpret_bandit(1, json.dumps({"results": results, "errors": []}), "")
        assert m.value == 1.0 and judge(gate, m).verdict == FAIL and m.details["findings"][0].startswith("engine/x.py:3")
    m = gate_checks.interpret_bandit(2, "", "Traceback\nbandit: boom")
    assert judge(gate, m).verdict == FAIL and "bandit exited 2: bandit: boom" in m.fail
    m = gate_checks.interpret_bandit(0, json.dumps({"results": [], "errors": [{"filename": "a.py", "reason": "syntax"}]}), "")
    assert judge(gate, m).verdict == FAIL and "a.py: syntax" in m.fail
    monkeypatch.setattr(gate_checks, "ROOT", None)
    m = gate_checks.measure_security_scan(Context(quick=False, threads=1))
    assert judge(gate, m).verdict == SKIP and "source tree" in m.skip
