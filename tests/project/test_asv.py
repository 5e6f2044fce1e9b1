"""The asv suite runs: ``asv check`` and a quick ``asv run --python=same`` of one benchmark class
per file, self-contained (own HOME, machine file and results folder under tmp_path; nothing is
written into the repository). asv can exit 0 with a failed benchmark (its value is then null),
so the saved results are checked for a number per benchmark and parameter set.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]

# One cheap benchmark from each file of asv_benchmarks/ (bench_verify twice: ratio and split).
QUICK_SUBSET = (
    r"^bench_sign\.SignMany\.track_sign_speedup"
    r"|^bench_verify\.FixedBatch\.track_ratio_vs_libsodium"
    r"|^bench_verify\.Split\.track_us_per_row"
    r"|^bench_blockgraph\.TimeBlockGraph\.time_incremental_10k_votes"
    r"|^bench_blockgraph\.TimeMultiEpoch\.track_ratio_to_sort"
    r"|^bench_job\.RunJob\.track_rows_per_s"
    r"|^bench_import\.timeraw_import_engine"
)
EXPECTED = {
    "bench_sign.SignMany.track_sign_speedup": 2,
    "bench_verify.FixedBatch.track_ratio_vs_libsodium": 12,
    "bench_verify.Split.track_us_per_row": 4,
    "bench_blockgraph.TimeBlockGraph.time_incremental_10k_votes": 1,
    "bench_blockgraph.TimeMultiEpoch.track_ratio_to_sort": 1,
    "bench_job.RunJob.track_rows_per_s": 1,
    "bench_import.timeraw_import_engine": 1,
}


def _asv_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASV", "PYTHONPATH"))}
    return {**env, "HOME": str(home), "PYTHONUNBUFFERED": "1"}


def _asv(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asv", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _config(tmp: Path, benchmark_dir: Path) -> Path:
    """asv.conf.json with every output folder moved under tmp."""
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    conf.update(repo=str(ROOT), benchmark_dir=str(benchmark_dir), env_dir=str(tmp / "env"),
                results_dir=str(tmp / "results"), html_dir=str(tmp / "html"))
    path = tmp / "asv.conf.json"
    path.write_text(json.dumps(conf))
    return path


def _head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def _machine(tmp: Path) -> dict[str, str]:
    env = _asv_env(tmp / "home")
    (tmp / "home").mkdir()
    done = _asv(["machine", "--yes", "--machine", "ci"], env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return env


def failed_benchmarks(results_dir: Path, machine: str, expected: dict[str, int]) -> list[str]:
    """Names (with the reason) of expected benchmarks that have no finite number per parameter set."""
    files = [p for p in (results_dir / machine).glob("*.json") if p.name != "machine.json"]
    if len(files) != 1:
        return [f"expected one results file in {results_dir / machine}, found {len(files)}"]
    data = json.loads(files[0].read_text())
    column = data["result_columns"].index("result")
    bad = []
    for name, count in expected.items():
        entry = data["results"].get(name)
        values = entry[column] if entry is not None else None
        values = values if isinstance(values, list) else [values]
        if entry is None or len(values) != count:
            bad.append(f"{name}: {len(values) if entry else 0} results, expected {count}")
        elif not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values):
            bad.append(f"{name}: values {values}")
    return bad


def test_asv_check_passes(tmp_path: Path) -> None:
    env = _machine(tmp_path)
    done = _asv(["check", "--python=same", "--config", str(_config(tmp_path, ROOT / "asv_benchmarks"))], env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_asv_quick_run_records_numbers(tmp_path: Path) -> None:
    env = _machine(tmp_path)
    conf = _config(tmp_path, ROOT / "asv_benchmarks")
    done = _asv(["run", "--python=same", "--quick", "--show-stderr", "--machine", "ci", "--set-commit-hash", _head(),
                 "--bench", QUICK_SUBSET, "--config", str(conf)], env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert failed_benchmarks(tmp_path / "results", "ci", EXPECTED) == []


def test_failed_benchmark_is_detected_although_asv_exits_0(tmp_path: Path) -> None:
    """The check above is not vacuous: asv records a benchmark whose setup gives up as NaN and
    still exits 0."""
    suite = tmp_path / "broken_benchmarks"
    suite.mkdir()
    (suite / "__init__.py").write_text("")
    (suite / "bench_broken.py").write_text(
        "def track_fine():\n    return 1.0\n\n"
        "class Broken:\n"
        "    def setup(self):\n        raise NotImplementedError('no data')\n\n"
        "    def track_value(self):\n        return 1.0\n")
    env = _machine(tmp_path)
    conf = _config(tmp_path, suite)
    done = _asv(["run", "--python=same", "--quick", "--machine", "ci", "--set-commit-hash", _head(),
                 "--config", str(conf)], env)
    assert done.returncode == 0, done.stdout + done.stderr
    expected = {"bench_broken.track_fine": 1, "bench_broken.Broken.track_value": 1}
    assert failed_benchmarks(tmp_path / "results", "ci", expected) == [
        "bench_broken.Broken.track_value: values [nan]"]
