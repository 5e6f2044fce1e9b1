"""The slow obvious ``bizra run``: the rules of engine/pipeline (row checks, vote reasons) read literally, one row at a time.

Rows are Python dicts, signatures are checked one by one with libsodium (it agrees with ZIP-215
on honest and randomly corrupted signatures, docs/design.md, "Validity rule"), and the BlockGraph results come
from tests/support/blockgraph_reference.py. The fast job is compared against this on every output.
"""
from __future__ import annotations

import json
from pathlib import Path

import hashlib
import struct

import polars as pl

from engine.model.attestation import FIELD_NAMES, AttestationBody
from engine.model.errors import CodecError
from engine.verification.api import verify_one
from tests.support import blockgraph_reference as bgref

ZERO = bytes(32)


def row_reason(row: dict, validators: dict[int, tuple[bytes, int]]) -> tuple[str | None, bool]:
    """(reason or None for a vote, signature_valid) of one attestation row."""
    body, sig, pk = row["body"], row["signature"], row["public_key"]
    widths = (isinstance(body, bytes) and len(body) == 110 and isinstance(sig, bytes) and len(sig) == 64
              and isinstance(pk, bytes) and len(pk) == 32)
    sig_valid = False
    if widths:
        index = struct.unpack_from("<I", body, 14)[0]
        if index in validators and validators[index][0] == pk:
            sig_valid = verify_one(body, sig, pk, backend="libsodium")
    malformed = not widths
    if not malformed:
        try:
            decoded = AttestationBody.decode(body)
        except CodecError:
            malformed = True
        else:
            for f in FIELD_NAMES:
                if f in row and row[f] != getattr(decoded, f):
                    malformed = True
            if decoded.epoch >= 2**63:
                malformed = True
    if malformed:
        return "malformed", sig_valid
    if decoded.validator_index not in validators:
        return "unknown_validator", sig_valid
    if validators[decoded.validator_index][0] != pk:
        return "key_mismatch", sig_valid
    if not sig_valid:
        return "bad_signature", sig_valid
    return None, sig_valid


def run(validators_df: pl.DataFrame, blocks_df: pl.DataFrame, attestations_df: pl.DataFrame, bps: int = 6667):
    """Every output of the job: per-row (reason, signature_valid, counted), blocks, evidence, graph."""
    validators = {r["index"]: (r["public_key"], r["weight"]) for r in validators_df.iter_rows(named=True)}
    weights = [validators.get(i, (None, 0))[1] for i in range(max(validators) + 1)]
    blocks = [(r["hash"], r["parent"], r["height"]) for r in blocks_df.iter_rows(named=True)]
    genesis = next(h for h, p, _ in blocks if p == ZERO)
    rows = list(attestations_df.iter_rows(named=True))
    reasons, valid, votes = [], [], []
    for i, row in enumerate(rows):
        reason, ok = row_reason(row, validators)
        reasons.append(reason)
        valid.append(ok)
        if reason is None:
            b = AttestationBody.decode(row["body"])
            votes.append((i, b.validator_index, b.epoch, b.target, hashlib.sha256(row["body"]).digest()))
    seen, first = set(), []
    for i, v, e, t, vid in votes:
        if vid in seen:
            reasons[i] = "duplicate"
        else:
            seen.add(vid)
            first.append((i, v, e, t, vid))
    graph = bgref.run(weights, bps, genesis, blocks, [(v, e, t, vid) for _, v, e, t, vid in first])
    tree = graph["weights"]  # every accepted block
    excl = graph["exclusion"]
    latest = {}  # validator -> (epoch, row) of its counted vote
    for i, v, e, t, _ in first:
        if v in excl and e >= excl[v]:
            reasons[i] = "equivocation"
        elif t not in tree:
            reasons[i] = "orphan_target"
        elif v not in excl and (v not in latest or e > latest[v][0]):
            latest[v] = (e, i)
    counted_rows = {i for _, i in latest.values()}
    for i, v, e, t, _ in first:
        if reasons[i] is None:
            reasons[i] = "ok" if i in counted_rows else "superseded"
    return {"reason": reasons, "signature_valid": valid, "counted": [r == "ok" for r in reasons],
            "graph": graph, "head_chain": set(bgref.ancestors_or_self(_tree(blocks, tree), graph["head"]))}


def _tree(blocks, accepted):
    """hash -> (parent or None, height) for the accepted blocks (unique hashes in a job input)."""
    return {h: (None if p == ZERO else p, ht) for h, p, ht in blocks if h in accepted}


# ---- comparing a job's outputs with a reference run (resume and cluster tests) -------------

PARQUET_OUTPUTS = ("attestations.parquet", "blocks.parquet", "equivocations.parquet")
TIMING_KEYS = ("seconds", "verify", "rows_per_s", "checkpoint", "params")


def same_outputs(out: Path, ref: Path) -> dict:
    """Assert ``out`` holds byte-identical Parquet outputs and the same report (timings aside) as
    ``ref``, and no checkpoint; return out's report."""
    for name in PARQUET_OUTPUTS:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    got, want = (json.loads((d / "report.json").read_text()) for d in (out, ref))
    for key in TIMING_KEYS:
        got.pop(key), want.pop(key)
    for report, d in ((got, out), (want, ref)):  # input paths are relative to each run's OUT
        for entry in report["inputs"].values():
            entry["path"] = str((d / entry["path"]).resolve())
    assert got == want
    assert not (out / ".work").exists(), "the checkpoint is removed once the outputs are promoted"
    return json.loads((out / "report.json").read_text())


def chunk_files(out: Path) -> int:
    """Finished chunk files in OUT/.work."""
    return len(list((out / ".work").glob("chunk-*.npz"))) if (out / ".work").exists() else 0
