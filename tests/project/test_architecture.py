"""The architecture is a contract, not a habit: import-linter checks the layers, the forbidden
web-framework imports and the absence of import cycles (pyproject.toml, [tool.importlinter]);
and no function takes a long list of positional arguments (state travels in named structures)."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]
MAX_POSITIONAL = 8


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(LINT, cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=300)


def test_import_contracts_hold() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "4 kept, 0 broken" in done.stdout, done.stdout[-2000:]


@pytest.mark.parametrize("module, line, contract", [
    ("engine/model/chain.py", "import engine.pipeline.job", "engine is layered"),
    ("engine/tables/parquet.py", "import fastapi", "the web framework is imported only under engine.service"),
    ("kernels/int128.py", "import engine.model.errors", "kernels are the bottom layer"),
    ("engine/service/config.py", "import engine.service.app", "no import cycles"),
])
def test_a_broken_contract_fails(tmp_path: Path, module: str, line: str, contract: str) -> None:
    """The same check on a copy of the tree with one forbidden import added: it must fail."""
    for name in ("engine", "kernels"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "vectors"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / module, "a") as f:
        f.write(f"\n{line}  # noqa\n")
    done = _lint(tmp_path)
    assert done.returncode != 0
    broken = [ln for ln in done.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(contract in ln for ln in done.stdout.splitlines()) and broken, done.stdout[-3000:]


def _positional(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    names = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    return len([n for n in names if n not in ("self", "cls")])


def test_no_function_takes_more_than_eight_positional_arguments() -> None:
    """engine/, the BlockGraph kernels and the verification pipeline kernels (their inputs are
    named tuples). The arithmetic kernels' helpers take the algorithm's own variables (SHA-512's
    round takes its eight working variables a..h, an MSM its groups of points and scalars),
    which is how the algorithms name them."""
    too_many = []
    pipeline = ("blockgraph_*.py", "ed25519_verify.py", "verify_x8.py")
    for path in sorted([*(ROOT / "engine").rglob("*.py"),
                        *(p for pattern in pipeline for p in (ROOT / "kernels").glob(pattern))]):
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _positional(node) > MAX_POSITIONAL:
                too_many.append(f"{rel}:{node.lineno} {node.name} ({_positional(node)})")
    assert too_many == [], "\n".join(too_many)


def test_every_module_has_a_test_file_named_after_it() -> None:
    """tests/ mirrors the package: engine/<sub>/<module>.py is tested in tests/<sub>/test_<module>.py,
    engine/<module>.py in tests/test_<module>.py, kernels/<k>.py in tests/kernels/test_<k>.py."""
    missing = []
    for path in sorted([*(ROOT / "engine").rglob("*.py"), *(ROOT / "kernels").glob("*.py")]):
        if path.name == "__init__.py":
            continue
        rel = path.relative_to(ROOT)
        parts = rel.parts[1:-1] if rel.parts[0] == "engine" else ("kernels",)
        test = ROOT / "tests" / Path(*parts) / f"test_{path.stem}.py" if parts else ROOT / "tests" / f"test_{path.stem}.py"
        if not test.is_file():
            missing.append(f"{rel} -> {test.relative_to(ROOT)}")
    assert missing == [], "\n".join(missing)


def test_readme_organisation_matches_the_tree_and_the_contract() -> None:
    import re
    import tomllib

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## How the code is organised"):readme.index("## Layout")]
    named = set(re.findall(r"`engine/([a-z_]+)(?:/|\.py)`", section.split("Where to add")[0]))
    children = {p.stem for p in (ROOT / "engine").iterdir()
                if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert named == children, f"README names {sorted(named)}, engine/ holds {sorted(children)}"
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    in_contract = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    assert in_contract == children and contract["exhaustive"] is True
