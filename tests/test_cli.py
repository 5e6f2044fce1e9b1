"""`bizra` CLI: happy paths in-process and as a real subprocess, and every bad-input case
(non-zero exit, exactly one line on stderr naming the file and the problem, no output left)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.model.attestation import BODY_SIZE, binary_to_array
from engine.cli import main
from engine.verification.keys import read_secret_keys
from engine.verification.api import verify_many

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    for name in ("BIZRA_VERIFY_BACKEND", "POI_BATCH_VERIFY", "BIZRA_THREADS"):
        if env is None or name not in env:
            full_env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=ROOT, timeout=120)


def test_help_lists_everything(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_cli("--help")
    assert r.returncode == 0
    for word in ("generate", "keygen", "verify", "demo", "BIZRA_VERIFY_BACKEND", "POI_BATCH_VERIFY", "BIZRA_THREADS"):
        assert word in r.stdout
    for cmd in ("generate", "keygen", "verify", "demo"):
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert "--out" in text
        if cmd != "keygen":
            assert all(v in text for v in ("BIZRA_VERIFY_BACKEND", "POI_BATCH_VERIFY", "BIZRA_THREADS"))


def test_keygen_generate_verify_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--out", str(tmp_path / "keys"), "--validators", "5", "--weight", "7", "--seed", "1"]) == 0
    secret = tmp_path / "keys" / "validator_keys.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    printed = capsys.readouterr()
    assert all(bytes(s).hex() not in printed.out + printed.err for s in read_secret_keys(secret))

    data = tmp_path / "data"
    argv = ["generate", "--out", str(data), "--validators", "10", "--blocks", "30", "--attestations", "800",
            "--seed", "5", "--bad-signature-rate", "0.1", "--quiet"]
    assert main(argv) == 0
    assert {p.name for p in data.iterdir()} == {"validators.parquet", "blocks.parquet", "attestations.parquet"}
    out = tmp_path / "verified.parquet"
    assert main(["verify", str(data / "attestations.parquet"), "--out", str(out), "--backend", "libsodium",
                 "--threads", "2"]) == 0
    assert "valid" in capsys.readouterr().out
    df = pl.read_parquet(out)
    src = pl.read_parquet(data / "attestations.parquet")
    assert df.drop("valid").equals(src) and df.schema["valid"] == pl.Boolean
    oracle = verify_many(binary_to_array(src["body"], BODY_SIZE), binary_to_array(src["signature"], 64),
                         binary_to_array(src["public_key"], 32), threads=1, backend="libsodium")
    assert np.array_equal(df["valid"].to_numpy(), oracle)
    assert 0 < (~oracle).sum() < len(oracle)


def test_subprocess_generate_and_verify(tmp_path: Path) -> None:
    data = tmp_path / "d"
    r = run_cli("generate", "--out", str(data), "--validators", "4", "--blocks", "10", "--attestations", "200",
                "--seed", "2")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # not a terminal: no progress bar
    r = run_cli("verify", str(data / "attestations.parquet"), "--out", str(tmp_path / "v.parquet"),
                env={"BIZRA_VERIFY_BACKEND": "libsodium", "BIZRA_THREADS": "2"})
    assert r.returncode == 0, r.stderr
    assert "libsodium, 2 threads" in r.stdout
    assert pl.read_parquet(tmp_path / "v.parquet").height == 200


def test_demo_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path / "demo"), "--attestations", "500", "--validators", "8",
                 "--blocks", "20", "--backend", "libsodium", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "generated 500 attestations" in text and "finalized height" in text
    assert "500 attestations:" in text and "rows/s" in text
    assert "verifier on 500 of these rows, one thread each: numba" in text and "x\n" in text
    for name in ("attestations.parquet", "blocks.parquet", "equivocations.parquet", "report.json"):
        assert (tmp_path / "demo" / name).exists(), name
    assert pl.read_parquet(tmp_path / "demo" / "attestations.parquet").height == 500


# ---- bad input ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("good")
    assert main(["generate", "--out", str(data), "--validators", "3", "--blocks", "5", "--attestations", "50",
                 "--seed", "1", "--quiet"]) == 0
    return data / "attestations.parquet"


def _variant(good_file: Path, tmp_path: Path, name: str) -> Path:
    df = pl.read_parquet(good_file)
    path = tmp_path / "in.parquet"
    if name == "missing":
        return tmp_path / "nope.parquet"
    if name == "directory":
        path.mkdir()
        return path
    if name == "text":
        path.write_text("index,public_key\n1,2\n")
    elif name == "empty":
        path.write_bytes(b"")
    elif name == "truncated":
        path.write_bytes(good_file.read_bytes()[:-40])
    elif name == "corrupt_middle":
        raw = bytearray(good_file.read_bytes())
        raw[8:200] = b"\xff" * 192
        path.write_bytes(bytes(raw))
    elif name == "missing_column":
        df.drop("signature").write_parquet(path)
    elif name == "mistyped_column":
        df.with_columns(pl.col("signature").bin.encode("hex")).write_parquet(path)
    elif name == "short_signature":
        df.with_columns(pl.col("signature").bin.slice(0, 63)).write_parquet(path)
    elif name == "long_body":
        df.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit(b"\0" * 111)).otherwise(pl.col("body"))
                        .alias("body")).write_parquet(path)
    elif name == "null_key":
        df.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise(pl.col("public_key"))
                        .alias("public_key")).write_parquet(path)
    return path


BAD_CASES = {
    "missing": "no such file",
    "directory": "is a directory",
    "text": "not a Parquet file",
    "empty": "not a Parquet file",
    "truncated": "not a Parquet file",
    "corrupt_middle": "Parquet",
    "missing_column": "missing column(s) signature",
    "mistyped_column": "column signature has type String, expected Binary",
    "short_signature": "column signature: expected 64 bytes, got 63",
    "long_body": "column body: expected 110 bytes, got 111 (row 3",
    "null_key": "column public_key has 1 null values",
}


def _assert_clean_failure(rc: int, err: str, src: Path, pattern: str, outdir: Path) -> None:
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert str(src) in lines[0] and pattern in lines[0], lines[0]
    assert not any(p.name.startswith("out") or p.name.endswith(".tmp") for p in outdir.iterdir())


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_verify_bad_input_in_process(case: str, good_file: Path, tmp_path: Path, capsys) -> None:
    src = _variant(good_file, tmp_path, case)
    rc = main(["verify", str(src), "--out", str(tmp_path / "out.parquet"), "--backend", "libsodium"])
    _assert_clean_failure(rc, capsys.readouterr().err, src, BAD_CASES[case], tmp_path)


@pytest.mark.parametrize("case", ["text", "short_signature"])
def test_verify_bad_input_subprocess(case: str, good_file: Path, tmp_path: Path) -> None:
    src = _variant(good_file, tmp_path, case)
    r = run_cli("verify", str(src), "--out", str(tmp_path / "out.parquet"), "--backend", "libsodium")
    _assert_clean_failure(r.returncode, r.stderr, src, BAD_CASES[case], tmp_path)
    assert r.stdout == ""


def test_bad_configuration_and_options(good_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.parquet"
    r = run_cli("verify", str(good_file), "--out", str(out), env={"BIZRA_VERIFY_BACKEND": "gpu"})
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "BIZRA_VERIFY_BACKEND" in r.stderr
    assert main(["verify", str(good_file), "--out", str(tmp_path / "missing-dir" / "o.parquet")]) == 2
    assert "output directory does not exist" in capsys.readouterr().err
    assert main(["verify", str(good_file), "--out", str(tmp_path), "--backend", "libsodium"]) == 2
    assert "is a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--out", str(tmp_path / "g"), "--validators", "0", "--blocks", "1",
              "--attestations", "1", "--seed", "1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--validators" in err[0]
    assert not out.exists() and not (tmp_path / "g").exists()
    (tmp_path / "file").write_text("x")
    assert main(["keygen", "--out", str(tmp_path / "file"), "--validators", "2"]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_unwritable_output_location(good_file: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "plain-file").write_text("x")
    rc = main(["verify", str(good_file), "--out", str(tmp_path / "plain-file" / "o.parquet"), "--backend", "libsodium"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "plain-file" in err[0] and "Traceback" not in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain-file"]




@pytest.mark.parametrize("flag, value, needle", [
    ("--bad-signature-rate", "x", "not a number: 'x'"), ("--bad-signature-rate", "1.5", "must be within 0..1"),
    ("--validators", "many", "not an integer: 'many'"), ("--validators", "0", "must be >= 1"),
    ("--seed", "-3", "must be an integer >= 0"),
])
def test_option_values_are_checked(tmp_path: Path, capsys, flag: str, value: str, needle: str) -> None:
    args = {"--out": str(tmp_path / "d"), "--validators": "2", "--blocks": "2", "--attestations": "2", "--seed": "1"}
    args[flag] = value
    with pytest.raises(SystemExit) as exc:
        main(["generate", *[x for kv in args.items() for x in kv]])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err and err.count("\n") == 1, err


def test_os_errors_and_interrupts_are_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["keygen", "--out", str(blocker / "sub"), "--validators", "2"]) == 2  # a file where a folder must be
    err = capsys.readouterr().err
    assert err.startswith("bizra keygen: error: ") and err.count("\n") == 1, err

    import engine.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli._COMMANDS, "keygen", interrupted)
    assert main(["keygen", "--out", str(tmp_path / "k"), "--validators", "2"]) == 130
    assert capsys.readouterr().err == "bizra keygen: interrupted\n"


def test_weights_command(tmp_path):
    """bizra weights (engine.consensus.poi_weights): read, compute, write, exit 0."""
    att = tmp_path / "att.parquet"
    pl.DataFrame({"validator_index": [0, 1], "epoch": [1, 2], "poi_score": [500_000, 10],
                  "valid": [True, False]}).write_parquet(att)
    out = tmp_path / "w.parquet"
    assert main(["weights", str(att), "--out", str(out), "--lam", "0.5", "--last-epoch", "2"]) == 0
    got = pl.read_parquet(out)
    # epoch 1: I_0 = 0.5; epoch 2: I_0 = 0.25; validator 1 has only an invalid row
    assert got.rows() == [(0, 250_000, 100_000 + 250_000)]
    assert np.all(got["weight"].to_numpy() > 0)




def test_one_version_from_the_package_metadata(capsys) -> None:
    import importlib.metadata

    import engine

    version = importlib.metadata.version("bizra")
    assert engine.__version__ == version
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"bizra {version}"
