"""`bizra run` (engine/pipeline/job.py): the fast job against the slow reference (tests/support/job_reference.py)
on small generated datasets where every reason appears, row accounting, chunking invariance
(byte-identical Parquet outputs), bad inputs (one clear error, nothing promoted), the CLI."""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.support import job_reference as ref
from engine.synthetic import generate_dataset
from engine.model.errors import BizraError, Reason
from engine.pipeline.job import JobInputError, add_cli, run_job
from tests.pipeline.conftest import CHUNK

OUTPUTS = ("attestations.parquet", "blocks.parquet", "equivocations.parquet", "report.json")
PARQUET_OUTPUTS = OUTPUTS[:3]


def _flip(b: bytes, i: int) -> bytes:
    return b[:i] + bytes([b[i] ^ 1]) + b[i + 1:]


def _tweak(df: pl.DataFrame) -> pl.DataFrame:
    """Row-level problems the generator does not make: wrong widths, a null body, a decoded
    column that disagrees with the body, and a bad-signature copy of a vote delivered before it
    (which must not make the real vote a duplicate)."""
    rows = df.to_dicts()
    rows[3]["signature"] = rows[3]["signature"][:63]
    rows[5]["epoch"] = rows[5]["epoch"] + 1
    rows[8]["body"] = None
    rows[9]["public_key"] = rows[9]["public_key"] + b"\0"
    rows[11]["target"] = rows[11]["target"][:31]
    bad_copy = dict(rows[40], signature=_flip(rows[40]["signature"], 40))
    rows.insert(20, bad_copy)
    return pl.DataFrame(rows, schema=df.schema)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jobdata")
    generate_dataset(out, validators=40, blocks=60, attestations=1500, seed=7, threads=2, progress=False,
                     bad_signature_rate=0.03, equivocation_rate=0.004, orphan_rate=0.01, key_mismatch_rate=0.01,
                     unknown_validator_rate=0.01, duplicate_rate=0.01, malformed_rate=0.01, fork_rate=0.15)
    att = _tweak(pl.read_parquet(out / "attestations.parquet"))
    att.write_parquet(out / "attestations.parquet")
    return out


@pytest.fixture(scope="module")
def result(dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("jobout")
    report = run_job(dataset, out, threads=2, quiet=True)
    return out, report


def test_pipeline_matches_reference(dataset: Path, result) -> None:
    out, report = result
    att_in = pl.read_parquet(dataset / "attestations.parquet")
    want = ref.run(pl.read_parquet(dataset / "validators.parquet"), pl.read_parquet(dataset / "blocks.parquet"), att_in)
    got = pl.read_parquet(out / "attestations.parquet")
    assert got["reason"].cast(pl.String).to_list() == want["reason"]
    assert got["signature_valid"].to_list() == want["signature_valid"]
    assert got["counted"].to_list() == want["counted"]
    assert {r.value for r in Reason} == set(want["reason"]), "every reason appears in the dataset"
    reasons = got["reason"].cast(pl.String).to_list()
    assert all(reasons[i] == "malformed" for i in (3, 5, 8, 9, 11)), "tweaked rows: widths, null, field mismatch"
    assert reasons[20] == "bad_signature" and reasons[41] not in ("duplicate", "bad_signature"), \
        "a bad-signature copy delivered first does not make the real vote a duplicate"
    assert report.counts == {r.value: want["reason"].count(r.value) for r in Reason}

    g = want["graph"]
    assert report.head == g["head"].hex() and report.finalized_tip == g["tip"].hex()
    blocks = pl.read_parquet(out / "blocks.parquet")
    assert {r["hash"]: r["weight"] for r in blocks.iter_rows(named=True)} == g["weights"]
    assert {r["hash"]: r["finalized_at_epoch"] for r in blocks.iter_rows(named=True) if r["finalized"]} == g["finalized"]
    assert {r["hash"] for r in blocks.iter_rows(named=True) if r["is_head_chain"]} == want["head_chain"]
    ev = pl.read_parquet(out / "equivocations.parquet")
    assert [(r["validator"], r["epoch"], r["target_a"], r["target_b"], r["id_a"], r["id_b"])
            for r in ev.iter_rows(named=True)] == g["evidence"]
    data = json.loads((out / "report.json").read_text())
    assert [(f["epoch"], bytes.fromhex(f["candidate"]), bytes.fromhex(f["finalized_tip"]))
            for f in data["safety_faults"]] == g["faults"]
    # One counted row per counted validator; their weights sum to the genesis subtree weight.
    counted = got.filter("counted")
    assert counted["validator_index"].n_unique() == len(counted)
    w = pl.read_parquet(dataset / "validators.parquet")
    assert counted.join(w, left_on="validator_index", right_on="index")["weight"].sum() == blocks["weight"][0]


@pytest.mark.parametrize("seed,bps", [(2, 6667), (3, 8000)])
def test_reasons_match_reference_other_seeds(tmp_path: Path, seed: int, bps: int) -> None:
    """Other shapes and thresholds, odd chunking, and a block waiting for a parent that never
    arrives (reported, not an error)."""
    generate_dataset(tmp_path, validators=12 + seed * 5, blocks=30, attestations=500 + seed * 100, seed=seed,
                     threads=2, progress=False, bad_signature_rate=0.03, equivocation_rate=0.003 * (seed - 1),
                     orphan_rate=0.02, duplicate_rate=0.03, malformed_rate=0.01, fork_rate=0.3)
    blocks = pl.read_parquet(tmp_path / "blocks.parquet")
    _blocks_with(blocks, [(b"\xee" * 32, b"\xef" * 32, 9)]).write_parquet(tmp_path / "blocks.parquet")
    r = run_job(tmp_path, tmp_path / "out", threads=2, bps=bps, chunk_rows=97, quiet=True)
    want = ref.run(pl.read_parquet(tmp_path / "validators.parquet"), pl.read_parquet(tmp_path / "blocks.parquet"),
                   pl.read_parquet(tmp_path / "attestations.parquet"), bps=bps)
    got = pl.read_parquet(tmp_path / "out" / "attestations.parquet")
    assert got["reason"].cast(pl.String).to_list() == want["reason"]
    assert r.head == want["graph"]["head"].hex() and r.finalized_tip == want["graph"]["tip"].hex()
    assert r.report["totals"]["orphan_blocks"] == 1 and r.report["params"]["bps"] == bps


def test_row_accounting_and_order(dataset: Path, result) -> None:
    out, report = result
    att_in = pl.read_parquet(dataset / "attestations.parquet")
    got = pl.read_parquet(out / "attestations.parquet")
    assert report.rows == len(att_in) == len(got) == sum(report.counts.values())
    assert got.select(att_in.columns).equals(att_in, null_equal=True)
    assert got["counted"].to_list() == (got["reason"] == "ok").to_list()
    data = json.loads((out / "report.json").read_text())
    assert set(data["versions"]) == {"bizra", "numba", "numpy", "polars", "pynacl"}
    assert data["totals"]["rows"] == len(att_in)
    assert data["inputs"]["attestations"]["sha256"] and data["verify"]["rows"] > 0


def test_outputs_identical_for_any_chunking(dataset: Path, result, tmp_path: Path) -> None:
    out, _ = result
    for chunk in (7, 100):
        r = run_job(dataset, tmp_path / str(chunk), threads=2, chunk_rows=chunk, quiet=True)
        for name in PARQUET_OUTPUTS:
            assert (tmp_path / str(chunk) / name).read_bytes() == (out / name).read_bytes(), (chunk, name)
        assert r.counts == result[1].counts


def test_explicit_paths_and_progress_callback(dataset: Path, tmp_path: Path) -> None:
    seen = []
    r = run_job(None, tmp_path / "o", validators=dataset / "validators.parquet", blocks=dataset / "blocks.parquet",
                attestations=dataset / "attestations.parquet", threads=1, chunk_rows=500, quiet=True,
                progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (r.rows, r.rows) and len(seen) == -(-r.rows // 500)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted([*OUTPUTS, ".lock"])  # the lock file stays (engine.pipeline.out_lock)


def test_report_names_inputs_relative_to_out(dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader of report.json resolves input paths against OUT, wherever the job was started,
    and an OUT moved together with its data still finds them."""
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    run_job(dataset, "../o", threads=1, quiet=True)
    inputs = json.loads((tmp_path / "o" / "report.json").read_text())["inputs"]
    for name in ("validators", "blocks", "attestations"):
        assert not Path(inputs[name]["path"]).is_absolute()
        assert (tmp_path / "o" / inputs[name]["path"]).resolve() == (dataset / f"{name}.parquet").resolve()


# ---- bad input: one clear error naming the file, no output promoted ------------------------


def _blocks_with(df: pl.DataFrame, extra: list[tuple[bytes, bytes, int]]) -> pl.DataFrame:
    add = pl.DataFrame({"hash": [h for h, _, _ in extra], "parent": [p for _, p, _ in extra],
                        "height": [t for _, _, t in extra]}, schema=df.schema)
    return pl.concat([df, add])


def _corrupt(path: Path) -> None:
    """Garble the footer (the schema and page index). Zeroed bytes inside a page of random
    binary data are not detectable (Parquet page checksums are optional): such rows become
    malformed or bad_signature, which is the row-level path."""
    raw = bytearray(path.read_bytes())
    raw[-300:-8] = bytes(range(256)) + bytes(36)
    path.write_bytes(bytes(raw))


BAD_INPUTS = {
    "corrupt": ("attestations.parquet", lambda p: _corrupt(p)),
    "truncated": ("attestations.parquet", lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])),
    "not_parquet": ("attestations.parquet", lambda p: p.write_text("body,signature\n")),
    "missing_column": ("attestations.parquet", lambda p: pl.read_parquet(p).drop("signature").write_parquet(p)),
    "wrong_binary_width": ("attestations.parquet", lambda p: pl.read_parquet(p).with_columns(
        pl.col("public_key").bin.slice(0, 16)).write_parquet(p)),
    "wrong_type": ("attestations.parquet", lambda p: pl.read_parquet(p).with_columns(
        pl.col("body").bin.encode("hex")).write_parquet(p)),
    "cycle": ("blocks.parquet", lambda p: _blocks_with(pl.read_parquet(p), [
        (b"\xaa" * 32, b"\xbb" * 32, 7), (b"\xbb" * 32, b"\xaa" * 32, 8)]).write_parquet(p)),
    "two_geneses": ("blocks.parquet", lambda p: _blocks_with(pl.read_parquet(p), [(b"\xcc" * 32, bytes(32), 0)])
                    .write_parquet(p)),
    "duplicate_hash": ("blocks.parquet", lambda p: (lambda df: _blocks_with(df, [
        (df["hash"][5], df["hash"][1], 2)]).write_parquet(p))(pl.read_parquet(p))),
    "wrong_height": ("blocks.parquet", lambda p: (lambda df: _blocks_with(df, [
        (b"\xdd" * 32, df["hash"][0], 5)]).write_parquet(p))(pl.read_parquet(p))),
    "validators_missing_column": ("validators.parquet", lambda p: pl.read_parquet(p).drop("weight").write_parquet(p)),
    "validators_small_order_key": ("validators.parquet", lambda p: pl.read_parquet(p).with_columns(
        pl.when(pl.col("index") == 3).then(pl.lit(b"\x01" + bytes(31))).otherwise(pl.col("public_key"))
        .alias("public_key")).write_parquet(p)),
}
MESSAGES = {"corrupt": "corrupt", "truncated": "Parquet", "not_parquet": "not a Parquet file",
            "missing_column": "missing column", "wrong_binary_width": "expected 32 bytes", "wrong_type": "type",
            "cycle": "cycle", "two_geneses": "two geneses", "duplicate_hash": "duplicate block hash",
            "wrong_height": "wrong_height", "validators_missing_column": "missing column",
            "validators_small_order_key": "small"}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_and_promotes_nothing(dataset: Path, tmp_path: Path, case: str) -> None:
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    name, damage = BAD_INPUTS[case]
    damage(data / name)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(JobInputError) as exc:
        run_job(data, out, threads=1, quiet=True)
    msg = str(exc.value)
    assert isinstance(exc.value, BizraError) and "\n" not in msg
    assert name in msg and MESSAGES[case] in msg, msg
    assert list(out.iterdir()) == []


def test_cli_summary_and_bad_input(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="bizra")
    add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["run", "--data", str(dataset), "--out", str(tmp_path / "o"), "--threads", "1", "--quiet"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "head" in text and "finalized height" in text and "rows/s" in text and "superseded" in text
    args = parser.parse_args(["run", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "p"), "--quiet"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "validators.parquet" in err and not (tmp_path / "p").exists()


def test_empty_attestations(dataset: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    pl.read_parquet(data / "attestations.parquet").clear().write_parquet(data / "attestations.parquet")
    r = run_job(data, tmp_path / "o", threads=1, quiet=True)
    assert r.rows == 0 and sum(r.counts.values()) == 0
    assert len(pl.read_parquet(tmp_path / "o" / "attestations.parquet")) == 0
    assert np.array_equal(pl.read_parquet(tmp_path / "o" / "blocks.parquet")["weight"].to_numpy(), np.zeros(60))


def test_wrong_width_only_in_the_first_rows_is_a_row_problem(dataset: Path, tmp_path: Path, monkeypatch) -> None:
    """The width probe reads the first rows; a column is a schema error only if *every* row
    has the same wrong width, so a probe that sees only bad rows must confirm on the whole file."""
    import engine.tables.attestations as attestations_module

    monkeypatch.setattr(attestations_module, "_WIDTH_PROBE_ROWS", 10)
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    att = pl.read_parquet(data / "attestations.parquet")
    short = pl.Series(range(len(att))) < 10
    att.with_columns(pl.when(short).then(pl.col("public_key").bin.slice(0, 16)).otherwise(pl.col("public_key"))
                     .alias("public_key")).write_parquet(data / "attestations.parquet")
    r = run_job(data, tmp_path / "o", threads=1, quiet=True)
    got = pl.read_parquet(tmp_path / "o" / "attestations.parquet")
    assert got["reason"][:10].to_list() == ["malformed"] * 10 and r.rows == len(att)


# ---- one writer per OUT, and OS errors -----------------------------------------------------------


def _bizra_run(dataset: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "run", "--data", str(dataset), "--out", str(out),
            "--chunk-rows", str(CHUNK), "--threads", "1", "--quiet", *extra]


def test_a_second_run_on_a_busy_out_stops_while_the_first_finishes(dataset: Path, reference: Path,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = subprocess.Popen(_bizra_run(dataset, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while ref.chunk_files(out) < 3 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)  # the first run holds the lock and has started writing chunks
        first.send_signal(signal.SIGSTOP)  # paused mid-run, lock held: however fast the machine, it is busy
        assert first.poll() is None, f"the first run ended too soon: {first.stderr.read()!r}"
        for extra in ((), ("--restart",)):  # --restart must not delete a live run's checkpoint either
            second = subprocess.run(_bizra_run(dataset, out, *extra), capture_output=True, text=True, timeout=300)
            assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
            assert f"{out}: in use by another bizra run (pid {first.pid})" in second.stderr
        first.send_signal(signal.SIGCONT)
        assert first.wait(300) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(30)
    ref.same_outputs(out, reference)


@pytest.fixture
def tmpfs(tmp_path: Path):
    """mount(size, *options) -> a fresh tmpfs folder; unmounted afterwards. Skips (saying why)
    where this process cannot mount one (not root, no CAP_SYS_ADMIN, no mount binary)."""
    mounted: list[Path] = []

    def mount(size: str, *options: str) -> Path:
        where = tmp_path / f"fs{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs", str(where)],
                              capture_output=True, text=True, check=False) if shutil.which("mount") else None
        if done is None or done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() if done else 'no mount command'}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def _footprint(path: Path) -> int:
    """Bytes a tmpfs charges for the files under ``path`` (whole 4 KiB pages)."""
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in path.rglob("*") if p.is_file())


def _no_temp_files(out: Path) -> list[str]:
    return [str(p) for p in out.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name]


def test_a_full_disk_is_one_line_naming_the_path_and_no_temp_file(dataset: Path, reference: Path, tmp_path: Path,
                                                                   tmpfs, monkeypatch) -> None:
    """At the two stages a disk fills up: while chunks are checkpointed, and
    while the outputs are written (a Polars error before, a traceback and exit 1)."""
    # How much the checkpoint takes: a run whose cleanup is skipped keeps its .work.
    sized = tmp_path / "sized"
    with monkeypatch.context() as m:
        m.setattr("engine.pipeline.checkpoint.Checkpoint.clear", lambda self: None)
        run_job(dataset, sized, threads=1, chunk_rows=CHUNK, quiet=True)
    work = _footprint(sized / ".work")
    cases = {"chunks": (work // 2, ".work/chunk-"),  # fills up halfway through the chunks
             "outputs": (work + _footprint(reference) // 3, "attestations.parquet")}  # while writing outputs
    for case, (size, where) in cases.items():
        disk = tmpfs(str(-(-size // 4096) * 4096))
        run = subprocess.run(_bizra_run(dataset, disk / "out"), capture_output=True, text=True, timeout=300)
        assert run.returncode == 2, (case, run.stderr)
        assert run.stderr.count("\n") == 1 and run.stderr.startswith("bizra run: error: "), (case, run.stderr)
        assert where in run.stderr and "No space left on device" in run.stderr, (case, run.stderr)
        assert _no_temp_files(disk / "out") == [], case
        assert not (disk / "out" / "report.json").exists()


def test_a_read_only_filesystem_is_one_line(dataset: Path, tmpfs) -> None:
    ro = tmpfs("1m", "ro")
    run = subprocess.run(_bizra_run(dataset, ro / "out"), capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and run.stderr == f"bizra run: error: {ro / 'out'}: Read-only file system\n"
