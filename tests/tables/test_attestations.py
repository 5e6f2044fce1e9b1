"""The attestations table: rows as fixed-width columns (a bad row is marked, never fatal) and the
file check that refuses what no row could survive."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.model.errors import CodecError, InputError
from engine.tables.attestations import attestation_columns, check_attestations_file, read_attestations
from engine.tables.parquet import write_parquet_atomic


def test_columns_of_a_generated_table(small_dataset) -> None:
    out, g = small_dataset
    df = read_attestations(out / "attestations.parquet", fields=True)
    cols = attestation_columns(df)
    assert len(cols) == df.height and cols.widths_ok.all()
    malformed = np.array(g.truth["kind"]) == 7  # KIND_NAMES.index("malformed")
    assert not cols.well_formed[malformed].any() and cols.well_formed[~malformed].mean() > 0.95


def test_a_bad_row_is_marked_not_fatal(small_dataset) -> None:
    out, _ = small_dataset
    df = pl.read_parquet(out / "attestations.parquet").head(6)
    short_sig = pl.Series(range(6)) == 1
    disagree = pl.Series(range(6)) == 3
    df = df.with_columns(pl.when(short_sig).then(pl.col("signature").bin.slice(0, 10)).otherwise(pl.col("signature")),
                         pl.when(disagree).then(pl.col("epoch") + 1).otherwise(pl.col("epoch")))
    cols = attestation_columns(df)
    assert cols.widths_ok.tolist() == [True, False, True, True, True, True]
    assert not cols.well_formed[[1, 3]].any()  # wrong width; a decoded column that disagrees with the body
    assert not cols.signature[1].any()  # zero-filled
    only_rows = attestation_columns(df.select("body", "signature", "public_key"))
    assert only_rows.well_formed[3]  # without the decoded columns the body alone decides
    with pytest.raises(CodecError, match="public_key: missing column"):
        attestation_columns(df.drop("public_key"))


def test_file_check(small_dataset, tmp_path) -> None:
    out, g = small_dataset
    assert check_attestations_file(out / "attestations.parquet") == g.attestations.height
    df = pl.read_parquet(out / "attestations.parquet")
    write_parquet_atomic(df.drop("signature"), tmp_path / "missing.parquet")
    write_parquet_atomic(df.with_columns(pl.col("epoch").cast(pl.Float64)), tmp_path / "float.parquet")
    write_parquet_atomic(df.with_columns(pl.col("public_key").bin.slice(0, 31)), tmp_path / "width.parquet")
    for name, problem in {"missing": "missing column", "float": "column epoch has type Float64, expected an integer",
                          "width": "column public_key: expected 32 bytes, every row has 31"}.items():
        with pytest.raises(InputError, match=problem):
            check_attestations_file(tmp_path / f"{name}.parquet")
