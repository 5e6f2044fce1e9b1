"""kernels/field8.py: which eight-lane field the x8 kernels get, the BIZRA_X8_FIELD override,
and the point and single-check tests passing on the field this CPU does not pick by default
(so both implementations are exercised on every machine)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import kernels.field25519x8 as mul32
import kernels.field25519x8_ifma as ifma
from kernels import field8
from kernels.lanes import HAS_IFMA

ROOT = Path(__file__).resolve().parents[2]


def _python(code, **env):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600)


def _pytest(*files, **env):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           *files], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=900)


def test_default_follows_the_cpu_and_exports_one_implementation():
    if os.environ.get("BIZRA_X8_FIELD"):
        pytest.skip("BIZRA_X8_FIELD is set for this run")
    assert field8.FIELD8 == ("ifma" if HAS_IFMA else "mul32")
    chosen = ifma if field8.FIELD8 == "ifma" else mul32
    for name in field8.__all__:
        if name != "FIELD8":
            assert getattr(field8, name) is getattr(chosen, name), name


def test_both_implementations_export_the_same_names():
    assert set(mul32.__all__) == set(ifma.__all__) == set(field8.__all__) - {"FIELD8"}


def test_an_unknown_override_is_refused_by_name():
    run = _python("import kernels.field8", BIZRA_X8_FIELD="avx9")
    assert run.returncode != 0
    assert "BIZRA_X8_FIELD: expected one of ifma, mul32, got 'avx9'" in run.stderr


def test_ifma_on_a_cpu_without_it_is_refused_compiled_and_allowed_uncompiled():
    # NUMBA_CPU_NAME=generic compiles for a baseline x86-64 with no IFMA, as the image does.
    refused = _python("import kernels.field8", BIZRA_X8_FIELD="ifma", NUMBA_CPU_NAME="generic")
    assert refused.returncode != 0 and "has no AVX-512 IFMA" in refused.stderr
    allowed = _python("import kernels.field8 as f; print(f.FIELD8)", BIZRA_X8_FIELD="ifma",
                      NUMBA_CPU_NAME="generic", NUMBA_DISABLE_JIT="1")
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.strip() == "ifma"


@pytest.mark.parametrize("cpu, features, field", [("generic", None, "mul32"),
                                                  ("znver4", "", "mul32"),
                                                  ("znver4", "+avx512ifma", "ifma")])
def test_the_field_follows_the_features_numba_compiles_for(cpu, features, field):
    # The image's settings: NUMBA_CPU_FEATURES empty unless the build names +avx512ifma.
    env = {"NUMBA_CPU_NAME": cpu, "BIZRA_X8_FIELD": ""}
    if features is not None:
        env["NUMBA_CPU_FEATURES"] = features
    run = _python("import kernels.field8 as f; print(f.FIELD8)", **env)
    assert run.stdout.strip() == field, run.stderr


def test_an_override_gets_a_numba_cache_folder_of_its_own():
    code = "import kernels, numba; print(numba.config.CACHE_DIR)"
    default = _python(code, BIZRA_X8_FIELD="", NUMBA_CACHE_DIR="").stdout.strip()
    override = _python(code, BIZRA_X8_FIELD="mul32", NUMBA_CACHE_DIR="").stdout.strip()
    assert override == os.path.join(default, "x8-mul32")


def test_ifma_arithmetic_uncompiled_on_every_machine():
    run = _pytest("tests/kernels/test_field25519x8_ifma.py", NUMBA_DISABLE_JIT="1")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout


@pytest.mark.slow
def test_points_and_single_checks_on_the_other_field():
    # Compiled with mul32 where the default is IFMA; where the CPU has no IFMA, the IFMA field
    # runs on its NumPy twins instead.
    env = {"BIZRA_X8_FIELD": "mul32"} if HAS_IFMA else {"BIZRA_X8_FIELD": "ifma",
                                                        "NUMBA_DISABLE_JIT": "1"}
    run = _pytest("tests/kernels/test_edwards_x8.py", "tests/kernels/test_verify_x8.py", **env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout
