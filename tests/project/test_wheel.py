"""The wheel stands on its own: built with ``pip wheel --no-deps .``, installed into a fresh
virtualenv in a temporary folder, and run from another directory (no checkout on sys.path), it
runs ``bizra demo`` and ``bizra gates --quick`` with the conformance gate PASS and the gates
that need the source tree SKIP, saying so.

Slow (a venv, dependencies from the pip cache or the package index, a cold Numba compile), and
run in CI like every other test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_wheel_in_a_fresh_venv_runs_demo_and_gates(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NUMBA_CACHE_DIR", "BIZRA_VECTORS_DIR",
                                                            "VIRTUAL_ENV", "COVERAGE_PROCESS_START")}
    dist, venv, elsewhere = tmp_path / "dist", tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
         tmp_path, env, 600)
    (wheel,) = dist.glob("bizra-*.whl")
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env, 300)
    py, bizra = venv / "bin" / "python", venv / "bin" / "bizra"
    _run([str(py), "-m", "pip", "install", "-q", str(wheel)], elsewhere, env, 1200)

    # the package runs from site-packages, with its vectors, and no checkout in sight
    where = _run([str(py), "-c", "import engine, engine.verification.conformance as c; "
                  "print(engine.__file__); print(c.vectors_dir())"], elsewhere, env, 120).stdout.split()
    assert str(venv) in where[0] and str(ROOT) not in where[0] and (Path(where[1]) / "expected_zip215.json").is_file()

    demo = _run([str(bizra), "demo", "--out", str(elsewhere / "demo"), "--attestations", "3000", "--validators", "40",
                 "--blocks", "60", "--quiet"], elsewhere, env, 1200)
    assert "finalized height" in demo.stdout
    for name in ("attestations.parquet", "blocks.parquet", "equivocations.parquet", "report.json",
                 "data/attestations.parquet"):
        assert (elsewhere / "demo" / name).is_file(), name
    assert json.loads((elsewhere / "demo" / "report.json").read_text())["totals"]["rows"] == 3000

    gates = subprocess.run([str(bizra), "gates", "--quick", "--only", "conformance,coverage-engine,coverage-kernels",
                            "--threads", "2", "--json", str(elsewhere / "gates.json")], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=1200)
    report = {g["name"]: g for g in json.loads((elsewhere / "gates.json").read_text())["gates"]}
    assert report["conformance"]["verdict"] == "PASS", gates.stdout + gates.stderr
    assert report["conformance"]["details"]["vectors"] == 1077
    for name in ("coverage-engine", "coverage-kernels"):
        assert report[name]["verdict"] == "SKIP" and "source tree" in report[name]["reason"], report[name]
    assert gates.returncode == 0, gates.stdout + gates.stderr
