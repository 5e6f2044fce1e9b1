"""The analysis notebooks run end to end on small data, and are committed clean.

Each notebook is executed with nbclient in a kernel started from this interpreter (a kernelspec
written under tmp_path, so a user's own ``python3`` kernel cannot be picked up instead); its
``parameters`` cell is replaced by small sizes, and the summary.json it leaves is checked.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "bizra-test-python"


@pytest.fixture(scope="module")
def kernel_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("jupyter")
    spec = base / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bizra tests", "language": "python"}))
    return base


def execute(name: str, parameters: str, cwd: Path, kernel_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the notebook as Jupyter would, with matplotlib's inline backend chosen by the
    environment (headless: it renders PNGs into the cell outputs, no display needed); every
    cell that draws a figure must show it."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: expected one cell tagged 'parameters'"
    tagged[0].source = parameters
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    NotebookClient(nb, kernel_name=KERNEL, timeout=300, resources={"metadata": {"path": str(cwd)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors == []
    plotting = [c for c in nb.cells if c.cell_type == "code" and "plt.subplots(" in c.source]
    assert plotting, f"{name}: no plotting cell found"
    for cell in plotting:
        shown = [o for o in cell.outputs if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})]
        assert shown, f"{name}: a plotting cell shows no figure:\n{cell.source[:200]}"


@pytest.mark.parametrize("name", ["verify_throughput.ipynb", "finality_analysis.ipynb"])
def test_committed_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


def test_verify_throughput(tmp_path: Path, kernel_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    execute("verify_throughput.ipynb", "batch_sizes = [1, 16, 128]\nrepeat = 2\nprofile_rows = 512\nout_dir = 'out'\n",
            tmp_path, kernel_path, monkeypatch)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    curve = summary["curve"]
    assert sorted((r["batch"], r["keys"]) for r in curve) == [
        (b, k) for b in (1, 16, 128) for k in ("cached", "distinct")]
    for r in curve:
        assert r["numba_per_s"] > 0 and r["libsodium_per_s"] > 0
        assert r["ratio"] == pytest.approx(r["numba_per_s"] / r["libsodium_per_s"])
    assert summary["profile_rows"] == 512
    raw = summary["split_raw_us_per_row"]
    assert set(raw) == {"decompress_r", "sha512", "prepare", "batch_equation"}
    assert all(v > 0 for v in raw.values())
    # the whole prepare includes decompressing R and hashing, measured on the same rows
    assert raw["prepare"] > raw["sha512"]
    assert summary["figures"] == ["throughput_vs_batch.png", "time_split.png"]
    assert all((tmp_path / "out" / f).stat().st_size > 10_000 for f in summary["figures"])


def check_finality_summary(s: dict, report: dict, rows: int, blocks: int) -> None:
    assert s["rows_in"] == s["rows_out"] == rows
    assert sum(s["reason_counts"].values()) == rows
    assert s["reason_counts"] == {k: v for k, v in report["counts"].items() if v}
    assert s["blocks"] == blocks
    assert s["lag"]["blocks"] > 0 and 0 <= s["lag"]["min"] <= s["lag"]["median"] <= s["lag"]["max"]
    assert s["finalized_height"] == report["finalized_height"] > 0
    chain = s["head_chain"]
    assert chain["weight_non_increasing"] and 0 < chain["genesis_weight_share"] <= 1
    assert chain["blocks"] == chain["top_height"] + 1  # one block per height from genesis
    assert s["forks"]["count"] > 0 and s["forks"]["blocks"] + chain["blocks"] <= s["blocks"]
    assert s["equivocations"]["rows"] == report["totals"]["equivocations"] > 0
    assert s["equivocations"]["per_epoch_sum"] == s["equivocations"]["rows"]
    assert s["reasons_per_epoch_rows"] == rows - s["reason_counts"].get("malformed", 0)
    assert s["figures"] == ["finality_lag.png", "fork_shapes.png", "head_chain_weight.png", "per_epoch.png"]


def test_finality_analysis_generates_and_runs(tmp_path: Path, kernel_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    execute("finality_analysis.ipynb",
            "run_dir = None\nwork_dir = 'demo'\nvalidators, blocks, attestations, seed = 40, 200, 4000, 3\n"
            "fork_rate, equivocation_rate = 0.15, 0.005\nout_dir = 'out'\n", tmp_path, kernel_path, monkeypatch)
    report = json.loads((tmp_path / "demo" / "run" / "report.json").read_text())
    check_finality_summary(json.loads((tmp_path / "out" / "summary.json").read_text()), report, 4000, 200)


def test_finality_analysis_loads_an_existing_run(tmp_path: Path, kernel_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 small_dataset) -> None:
    """As after `make demo`: the job was started elsewhere with relative paths (`bizra run --data
    demo-out/data --out demo-out` from the repository root), the notebook runs in notebooks/ and is
    pointed at `../demo-out`."""
    import os

    from engine.pipeline.job import run_job

    data, generated = small_dataset
    (tmp_path / "repo" / "notebooks").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo")
    report = run_job(os.path.relpath(data), "demo-out", quiet=True).report
    monkeypatch.chdir(tmp_path)
    notebooks = tmp_path / "repo" / "notebooks"
    execute("finality_analysis.ipynb", "run_dir = '../demo-out'\nout_dir = 'out'\n", notebooks, kernel_path,
            monkeypatch)
    assert not (notebooks / "finality-demo").exists()
    check_finality_summary(json.loads((notebooks / "out" / "summary.json").read_text()), report,
                           generated.attestations.height, generated.blocks.height)
