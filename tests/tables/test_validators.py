"""The validator table: reading and checking validators.parquet, the dense loader bizra run and bizra serve share, and bizra keygen."""
from __future__ import annotations

import stat

import numpy as np
import polars as pl
import pytest
from nacl.signing import SigningKey

from engine.tables.parquet import write_parquet_atomic
from engine.tables.validators import keygen, read_validators, validators_frame
from engine.model.errors import InputError, KeyAdmissionError
from tests.support.ref_admission import SMALL_ORDER_HEX, ref_reason
from engine.verification.keys import (
    derive_seeds,
    keypairs_from_seeds,
    read_secret_keys,
)


def test_keygen_writes_admissible_validators(tmp_path, capsys) -> None:
    df = keygen(tmp_path, 6, weight=32, seed=9)
    assert df.schema == {"index": pl.UInt32, "public_key": pl.Binary, "weight": pl.Int64}
    assert stat.S_IMODE((tmp_path / "validator_keys.secret").stat().st_mode) == 0o600
    back = read_validators(tmp_path / "validators.parquet")
    assert back.equals(df) and back["weight"].to_list() == [32] * 6
    seeds = read_secret_keys(tmp_path / "validator_keys.secret")
    assert [bytes(SigningKey(bytes(s)).verify_key) for s in seeds] == back["public_key"].to_list()
    assert all(ref_reason(pk) is None for pk in back["public_key"].to_list())
    assert keygen(tmp_path / "again", 6, weight=32, seed=9).equals(df)
    assert not keygen(tmp_path / "random", 6).equals(df)
    out = capsys.readouterr()
    assert all(bytes(s).hex() not in out.out + out.err for s in seeds)


def test_read_validators_rejects_inadmissible_key(tmp_path) -> None:
    pks, _ = keypairs_from_seeds(derive_seeds(1, 3))
    pks[1] = np.frombuffer(bytes.fromhex(SMALL_ORDER_HEX[4]), np.uint8)
    write_parquet_atomic(validators_frame(pks, np.ones(3, np.int64)), tmp_path / "v.parquet")
    with pytest.raises(KeyAdmissionError, match=r"v\.parquet: validator 1 public key c7176a.* small_order"):
        read_validators(tmp_path / "v.parquet")
    assert read_validators(tmp_path / "v.parquet", admit=False).height == 3


def test_keygen_refuses_to_overwrite_secret_keys(tmp_path) -> None:
    keygen(tmp_path, 2, seed=1)
    before = (tmp_path / "validator_keys.secret").read_bytes()
    with pytest.raises(InputError, match="refusing to overwrite"):
        keygen(tmp_path, 2)
    assert (tmp_path / "validator_keys.secret").read_bytes() == before


