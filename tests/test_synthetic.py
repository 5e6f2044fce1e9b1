"""Synthetic data (engine.synthetic): the generated dataset verifies exactly where it was not corrupted and has the structure its model promises; block trees with forks, votes near the main chain and signed rows."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from engine.model.errors import InputError
from engine.model.attestation import BODY_SIZE, binary_to_array, decode_bodies, well_formed_bodies
from engine.synthetic import KIND_NAMES, generate_dataset
from engine.tables.attestations import read_attestations
from engine.tables.blocks import read_blocks
from engine.tables.validators import read_validators
from engine.verification.api import verify_many


def test_generated_dataset_verifies_except_corrupted_rows(small_dataset) -> None:
    out, g = small_dataset
    df = read_attestations(out / "attestations.parquet", fields=True)
    assert df.equals(g.attestations)
    ok = verify_many(binary_to_array(df["body"], BODY_SIZE), binary_to_array(df["signature"], 64),
                     binary_to_array(df["public_key"], 32), threads=2, backend="libsodium")
    assert np.array_equal(ok, ~g.truth["corrupted"])
    kinds = {KIND_NAMES[k] for k in np.unique(g.truth["kind"])}
    assert kinds == set(KIND_NAMES)
    # Decoded columns are exactly the body's fields.
    body = binary_to_array(df["body"], BODY_SIZE)
    names = np.array(KIND_NAMES)[g.truth["kind"]]
    bad_body = ~well_formed_bodies(body)
    assert bad_body[names == "malformed"].all() and np.isin(names[bad_body], ["malformed", "duplicate"]).all()
    decoded = decode_bodies(body, strict=False)
    for name, col in decoded.items():
        got = binary_to_array(df[name], 32) if col.ndim == 2 else df[name].to_numpy()
        assert np.array_equal(got, col), name


def test_generated_dataset_structure(small_dataset) -> None:
    out, g = small_dataset
    validators = read_validators(out / "validators.parquet")
    blocks = read_blocks(out / "blocks.parquet")
    att = g.attestations
    kind = g.truth["kind"]
    names = np.array(KIND_NAMES)[kind]
    assert blocks.height == 80 and validators.height == 24 and att.height == 3000
    # A tree: one genesis (zero parent, height 0), unique hashes, every parent known at height - 1.
    height_of = dict(zip(blocks["hash"].to_list(), blocks["height"].to_list()))
    assert len(height_of) == blocks.height
    genesis = blocks.filter(pl.col("parent") == b"\0" * 32)
    assert genesis.height == 1 and genesis["height"][0] == 0
    for parent, h in zip(blocks["parent"].to_list(), blocks["height"].to_list()):
        assert parent == b"\0" * 32 or height_of[parent] == h - 1
    assert max(height_of.values()) < blocks.height - 1  # forks exist, so the tree is not one chain
    targets = att["target"].to_list()
    known = np.array([t in height_of for t in targets])
    assert not known[names == "orphan_target"].any() and known[names == "honest"].all()
    # Registered keys match except for key mismatches and unknown validators.
    reg = validators["public_key"].to_list()
    vidx = att["validator_index"].to_numpy()
    pks = att["public_key"].to_list()
    registered = np.array([v < len(reg) and reg[v] == pk for v, pk in zip(vidx, pks)])
    assert registered[np.isin(names, ["honest", "bad_signature", "equivocation", "orphan_target", "malformed"])].all()
    assert not registered[np.isin(names, ["key_mismatch", "unknown_validator"])].any()
    assert (vidx[names == "unknown_validator"] >= len(reg)).all()
    # Each equivocation has an earlier vote by the same validator in the same epoch, other target.
    epochs = att["epoch"].to_numpy()
    for i in np.flatnonzero(names == "equivocation"):
        same = np.flatnonzero((vidx == vidx[i]) & (epochs == epochs[i]))
        assert any(targets[j] != targets[i] for j in same)
    # Duplicates are exact copies of another row; ids (SHA-256 of body) repeat only there.
    ids = [hashlib.sha256(b).digest() for b in att["body"].to_list()]
    assert len(set(ids)) == len(ids) - int((names == "duplicate").sum())
    assert np.all(np.diff(att["timestamp_us"].to_numpy().astype(np.int64)) >= 0)


def test_generation_is_deterministic() -> None:
    a = generate_dataset(None, validators=5, blocks=12, attestations=300, seed=3, threads=1, progress=False)
    b = generate_dataset(None, validators=5, blocks=12, attestations=300, seed=3, threads=2, progress=False)
    c = generate_dataset(None, validators=5, blocks=12, attestations=300, seed=4, threads=2, progress=False)
    assert a.attestations.equals(b.attestations) and a.blocks.equals(b.blocks) and a.validators.equals(b.validators)
    assert np.array_equal(a.truth["kind"], b.truth["kind"])
    assert not a.attestations.equals(c.attestations)


def test_tiny_generation_edge_cases() -> None:
    g = generate_dataset(None, validators=1, blocks=1, attestations=50, seed=0, threads=2, progress=False)
    assert g.blocks.height == 1 and g.attestations.height == 50
    e = generate_dataset(None, validators=3, blocks=2, attestations=0, seed=0, progress=False)
    assert e.attestations.height == 0


@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
def test_extreme_rates(rate: float) -> None:
    rates = {k: rate for k in ("bad_signature_rate", "equivocation_rate", "fork_rate", "orphan_rate",
                               "key_mismatch_rate", "unknown_validator_rate", "duplicate_rate", "malformed_rate")}
    for n in (1, 2, 7, 120):
        g = generate_dataset(None, validators=3, blocks=6, attestations=n, seed=n, threads=2, progress=False, **rates)
        assert g.attestations.height == n
        df = g.attestations
        ok = verify_many(binary_to_array(df["body"], BODY_SIZE), binary_to_array(df["signature"], 64),
                         binary_to_array(df["public_key"], 32), backend="libsodium")
        assert np.array_equal(ok, ~g.truth["corrupted"])




def test_chain_with_forks_is_a_tree_listed_parents_first() -> None:
    from engine.synthetic import chain_with_forks, votes_near_main

    h, p, main = chain_with_forks(2000, np.random.default_rng(5), fork_rate=0.2)
    assert h.shape == p.shape == (2000, 32) and not (~h.any(axis=1)).any()  # no zero hash
    index = {bytes(x): i for i, x in enumerate(h)}
    assert len(index) == 2000 and not p[0].any()
    parent = [index[bytes(x)] for x in p[1:]]
    assert all(q < i for i, q in enumerate(parent, 1))  # parents first
    on_main = np.zeros(2000, bool)
    on_main[main] = True
    assert 0.7 < on_main.mean() < 0.9  # about 1 - fork_rate
    assert all(parent[m - 1] == prev for prev, m in zip(main[:-1], main[1:]))  # the main chain is a chain
    same = chain_with_forks(2000, np.random.default_rng(5), fork_rate=0.2)
    assert np.array_equal(same.hashes, h) and np.array_equal(same.main, main)
    given = chain_with_forks(10, np.random.default_rng(1), hashes=np.arange(320, dtype=np.uint8).reshape(10, 32))
    assert given.hashes[3, 0] == 96
    v, e, t = votes_near_main(main, 50, 5, np.random.default_rng(2), every_epoch=True)
    assert v.size == e.size == t.size == 250 and np.isin(t, main).all()
    assert np.array_equal(np.unique(e), np.arange(5))


def test_signed_rows_verify_and_are_seed_stable() -> None:
    from engine.synthetic import signed_attestations, signed_columns

    cols = signed_columns(40, 7, seed=3)
    assert cols.n == 40 and verify_many(cols.msg_data.reshape(40, -1), cols.sigs, cols.pks, backend="libsodium").all()
    assert np.array_equal(signed_columns(40, 7, seed=3).sigs, cols.sigs)
    rows = signed_attestations(30, 4, seed=9, label="t")
    assert verify_many(rows.bodies, rows.signatures, rows.public_keys, backend="libsodium").all()
    assert rows.owner.tolist() == [i % 4 for i in range(30)]
    assert decode_bodies(rows.bodies)["validator_index"].tolist() == rows.owner.tolist()
    other = signed_attestations(30, 4, seed=9, label="u")
    assert not np.array_equal(other.public_keys, rows.public_keys)  # the label picks the keys


def test_validator_columns_share_keys_and_bad_rows_land_where_asked() -> None:
    from engine.synthetic import validator_columns, with_bad_rows

    cols = validator_columns(50, 3, 400, seed=4)
    assert len(cols) == 3 and all(c.owner.max() < 50 for c in cols)
    key_of = {}
    for c in cols:
        assert verify_many(c.messages, c.signatures, c.public_keys, backend="libsodium").all()
        for v, pk in zip(c.owner.tolist(), c.public_keys):
            assert key_of.setdefault(v, bytes(pk)) == bytes(pk)  # one key per validator, every column
    assert np.array_equal(validator_columns(50, 3, 400, seed=4)[2].signatures, cols[2].signatures)

    clean, ok = with_bad_rows(cols[0], "clean", 0.5, 50, seed=1)
    assert ok.all() and verify_many(clean.msg_data.reshape(400, -1), clean.sigs, clean.pks,
                                    backend="libsodium").all()
    scattered, ok = with_bad_rows(cols[0], "scattered", 0.1, 50, seed=1)
    got = verify_many(scattered.msg_data.reshape(400, -1), scattered.sigs, scattered.pks, backend="libsodium")
    assert np.array_equal(got, ok) and 10 < (~ok).sum() < 80
    bad_validators = set()
    for c in cols:
        conc, ok = with_bad_rows(c, "concentrated", 0.2, 50, seed=7)
        bad_validators |= set(c.owner[~ok].tolist())
        assert not (set(c.owner[ok].tolist()) & bad_validators)  # a bad validator fails every row
        assert np.array_equal(verify_many(conc.msg_data.reshape(400, -1), conc.sigs, conc.pks,
                                          backend="libsodium"), ok)
    assert 3 <= len(bad_validators) <= 20
    with pytest.raises(ValueError, match="mode"):
        with_bad_rows(cols[0], "everywhere", 0.1, 50, seed=1)


def test_files_are_the_same_bytes_whatever_the_chunk_size_or_thread_count(tmp_path, monkeypatch) -> None:
    """Streaming is invisible in the output: row groups are cut at fixed row counts (made small
    here so that chunks straddle them), never where a chunk happens to end."""
    import engine.synthetic as synthetic

    monkeypatch.setattr(synthetic, "_ROW_GROUP_ROWS", 2_500)
    params = dict(validators=30, blocks=60, attestations=7_000, seed=5, progress=False, malformed_rate=0.01,
                  equivocation_rate=0.01, duplicate_rate=0.01)
    whole = generate_dataset(None, threads=2, chunk_rows=100_000, **params)
    files = {}
    for chunk_rows, threads in [(1_000, 1), (1_000, 2), (3_000, 2), (2_500, 1), (7_000, 2), (65_536, 2)]:
        out = tmp_path / f"{chunk_rows}-{threads}"
        g = generate_dataset(out, threads=threads, chunk_rows=chunk_rows, **params)
        assert np.array_equal(g.truth["kind"], whole.truth["kind"])
        assert np.array_equal(g.truth["corrupted"], whole.truth["corrupted"])
        files[(chunk_rows, threads)] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    first = next(iter(files.values()))
    assert sorted(first) == ["attestations.parquet", "blocks.parquet", "validators.parquet"]
    assert all(f == first for f in files.values())
    assert pl.read_parquet(tmp_path / "1000-1" / "attestations.parquet").equals(whole.attestations)


def test_written_dataset_is_read_back_only_when_asked(tmp_path) -> None:
    g = generate_dataset(tmp_path, validators=4, blocks=8, attestations=500, seed=1, progress=False, chunk_rows=64)
    assert g.rows == 500 and g.attestations_path == tmp_path / "attestations.parquet"
    assert g.attestations.height == 500 and g.attestations_path is None  # now held
    with pytest.raises(InputError, match="chunk_rows"):
        generate_dataset(None, validators=1, blocks=1, attestations=1, seed=0, chunk_rows=0)


_MEMORY_PROBE = """
import json, sys
import engine.synthetic as synthetic
from engine.synthetic import generate_dataset

def kib(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field))

synthetic._ROW_GROUP_ROWS = 8192  # the default row group alone would hold half of the rows
generate_dataset(sys.argv[1] + "/warm", validators=50, blocks=50, attestations=2_000, seed=1, threads=2,
                 progress=False, chunk_rows=4096)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak so far (imports, the warm-up run) is forgotten: VmHWM restarts at VmRSS
before = kib("VmRSS:")
generate_dataset(sys.argv[1] + "/data", validators=1000, blocks=2000, attestations=int(sys.argv[2]), seed=2,
                 threads=2, progress=False, chunk_rows=4096)
print(json.dumps({"growth": (kib("VmHWM:") - before) * 1024}))
"""


def test_generate_memory_grows_far_slower_than_the_rows_it_writes(tmp_path) -> None:
    """Peak RSS growth while generating 50K and 200K rows (4K-row chunks), each in a fresh
    process: the extra 150K rows may cost at most 120 bytes each (the plan takes about 30),
    whereas holding them costs at least 206 (body, signature and key alone; the whole-table
    generator took about 1.5 KB a row). The difference of two runs cancels what any process
    holds (imports, thread pools); no clock is involved."""
    growth = {}
    for rows in (50_000, 200_000):
        done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(tmp_path / str(rows)), str(rows)],
                              capture_output=True, text=True, timeout=600, check=True)
        growth[rows] = json.loads(done.stdout.splitlines()[-1])["growth"]
    per_row = (growth[200_000] - growth[50_000]) / 150_000
    assert per_row < 120, growth
    assert pl.scan_parquet(tmp_path / "200000" / "data" / "attestations.parquet").select(pl.len()).collect().item() \
        == 200_000
