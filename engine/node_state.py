"""The live node behind the HTTP API: ``NodeState`` (validators, the BlockGraph, the node key),
the immutable ``Snapshot`` readers see, and attestation uploads (``Upload``, ``parse_upload``:
JSON rows, Arrow IPC stream or Parquet file -> columns).

Loading (``NodeState.load``, run on a background thread by engine.service_app): DIR/validators.parquet
(required), DIR/blocks.parquet and DIR/attestations.parquet (optional; rows are checked like
``bizra run`` and only valid, non-duplicate votes are counted) into a BlockGraph. The node key is
DIR/node_key.secret (0600; created from libsodium's CSPRNG if missing; only its public key is
logged).

Decisions (tested in tests/test_service*.py):
- Votes are deduplicated by attestation id (SHA-256 of the body), across requests, for the life
  of the process (a set of ids; 32 bytes + overhead per counted vote).
- The live graph answers for the whole message set; the *reported* finalized chain only ever
  grows: if a late message makes the recomputed chain not extend it, a safety fault is recorded
  (GET /head) and the reported chain is kept (DESIGN section 5: never revert); it then stays
  where it is until the conflict is gone or an operator restarts the node.
- ``parse_upload`` raises HTTP errors (400 for a body that is not JSON or not a readable
  Arrow/Parquet upload, 415 for another media type) and CodecError (422) for a JSON row with
  bad hex or a wrong length; an Arrow/Parquet row with a wrong width or a body that does not
  decode is only marked not well-formed.

Example: ``s = NodeState(Path("data")); s.load(); s.snapshot.head``.
"""
from __future__ import annotations

import dataclasses
import io
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from fastapi import HTTPException

from engine import keys as keymod
from engine.attestation import (
    BODY_SIZE,
    attestation_ids,
    binary_to_array,
    decode_bodies,
    well_formed_bodies,
)
from engine.blockgraph import BlockGraph
from engine.dataset import (
    CHAIN_ID,
    EPOCH_US,
    GENESIS_TIME_US,
    read_blocks,
    read_validators,
)
from engine.errors import BizraError, CodecError, InputError, Reason, first_line
from engine.verify import verify_many

__all__ = ["NodeState", "Snapshot", "Upload", "parse_upload"]

log = logging.getLogger("bizra.service")


# ---- uploads: JSON rows, Arrow IPC stream, Parquet -> columns ---------------------------


@dataclasses.dataclass(frozen=True)
class Upload:
    """Attestation columns of one request; ``well_formed`` is False where a width is wrong or the
    body does not decode (Arrow/Parquet rows only: in JSON such a row is a 422)."""

    body: np.ndarray  # (n, 110) uint8
    signature: np.ndarray  # (n, 64) uint8
    public_key: np.ndarray  # (n, 32) uint8
    well_formed: np.ndarray  # bool[n]


_WIDTHS = {"body": BODY_SIZE, "signature": 64, "public_key": 32}
_MEDIA = {"application/vnd.apache.arrow.stream": ("Arrow IPC stream", pl.read_ipc_stream),
          "application/vnd.apache.parquet": ("Parquet file", pl.read_parquet)}


def _json_rows(raw: bytes) -> dict[str, np.ndarray]:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the parser's stack
        raise HTTPException(400, f"body: invalid JSON ({exc})") from None
    rows = doc.get("attestations") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise CodecError("body: expected a JSON list of attestations")
    cols: dict[str, list[Any]] = {name: [] for name in _WIDTHS}
    for i, row in enumerate(rows):  # JSON has no columns: one pass to pick the fields, then columns
        if not isinstance(row, dict):
            raise CodecError(f"[{i}]: expected an object, got {type(row).__name__}")
        extra = set(row) - {"body", "body_hex", "signature", "public_key"}
        if extra:
            raise CodecError(f"[{i}].{min(extra)}: unknown field")
        if ("body" in row) == ("body_hex" in row):
            raise CodecError(f"[{i}].body: give exactly one of body or body_hex")
        for name in _WIDTHS:
            value = row.get(name, row.get("body_hex")) if name == "body" else row.get(name)
            if not isinstance(value, str) or not value.isascii():  # isascii: no lone surrogates reach Polars
                field = name if name != "body" or "body" in row else "body_hex"
                raise CodecError(f"[{i}].{field}: expected a hex string, got {type(value).__name__} {value!r:.40}")
            cols[name].append(value)
    out = {}
    for name, width in _WIDTHS.items():  # hex decoding as Polars expressions over the column
        s = pl.Series(name, cols[name], dtype=pl.String).str.strip_prefix("0x").str.strip_prefix("0X")
        bad = ~s.str.contains(f"^[0-9a-fA-F]{{{2 * width}}}$")
        if bad.any():
            row = int(bad.arg_max())
            raise CodecError(f"[{row}].{name}: bad hex or not {width} bytes: {cols[name][row][:40]!r}")
        out[name] = binary_to_array(s.str.decode("hex"), width, name) if len(s) else np.zeros((0, width), np.uint8)
    return out


def _fixed(df: pl.DataFrame, name: str, width: int) -> tuple[np.ndarray, np.ndarray]:
    if name not in df.columns:
        raise CodecError(f"{name}: missing column")
    col = df[name]
    if col.dtype != pl.Binary:
        raise CodecError(f"{name}: expected a binary column, got {col.dtype}")
    ok = (col.bin.size() == width).fill_null(False).to_numpy()
    arr = np.zeros((len(col), width), np.uint8)
    if ok.any():
        arr[ok] = binary_to_array(col.filter(pl.Series(ok)), width, name)
    return arr, ok


# Every honest row carries a 64-byte signature of its own, which no encoding shrinks: an upload
# claiming far more rows than its bytes allow is a decompression bomb, refused before decoding.
_MIN_BYTES_PER_ROW = 48


def _check_parquet_rows(raw: bytes) -> None:
    """413 when the Parquet footer declares more rows than ``raw`` could honestly hold."""
    try:
        rows = pl.scan_parquet(io.BytesIO(raw)).select(pl.len()).collect().item()  # the footer only
    except Exception:  # unreadable: the full read below answers 400 with the reason
        return
    limit = max(1024, len(raw) // _MIN_BYTES_PER_ROW)
    if rows > limit:
        raise HTTPException(413, f"body: Parquet upload declares {rows:,} rows, more than {limit:,} for its "
                            f"{len(raw):,} bytes (each row carries a 64-byte signature)")


def parse_upload(content_type: str, raw: bytes) -> Upload:
    """Columns from a JSON list (hex), an Arrow IPC stream or a Parquet file.

    Example: ``parse_upload("application/json", b'[{"body": "0x..", "signature": "..", "public_key": ".."}]')``.
    """
    media = content_type.split(";")[0].strip().lower()
    if media in ("", "application/json"):
        c = _json_rows(raw)
        ok = np.ones(len(c["body"]), bool)
    elif media in _MEDIA:
        what, read = _MEDIA[media]
        if media == "application/vnd.apache.parquet":
            _check_parquet_rows(raw)
        try:
            df = read(io.BytesIO(raw))
        except Exception as exc:  # Polars raises several unrelated types for a corrupt upload
            raise HTTPException(400, f"body: not a readable {what} ({first_line(exc, 120)})") from None
        c, ok = {}, np.ones(len(df), bool)
        for name, width in _WIDTHS.items():
            c[name], good = _fixed(df, name, width)
            ok &= good
    else:
        raise HTTPException(415, f"content-type: {media!r} not accepted (application/json, {', '.join(_MEDIA)})")
    ok &= well_formed_bodies(c["body"])
    return Upload(c["body"], c["signature"], c["public_key"], ok)

# ---- live node state ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What readers see: replaced whole after every change, never mutated, so finality checks
    read it without the lock. ``finalized_at`` is the *reported* finalized chain."""

    heights: dict[bytes, int]
    finalized_at: dict[bytes, int | None]
    chain: tuple[bytes, ...]
    head: bytes | None
    head_json: dict[str, Any]


_EMPTY = Snapshot({}, {}, (), None, {})
_MAX_VALIDATOR_INDEX = 1 << 24  # as bizra run


def _hex(h: bytes | None) -> str | None:
    return None if h is None else "0x" + h.hex()


class NodeState:
    """Validators, the live BlockGraph (guarded by ``lock``: it is not thread-safe) and the node key.

    Example: ``s = NodeState(Path("data")); s.load(); s.snapshot.head``.
    """

    def __init__(self, data_dir: Path, bps: int = 6667) -> None:
        self.data_dir, self.bps = Path(data_dir), bps
        self.lock = threading.Lock()
        self.ready, self.error = False, None
        self.snapshot = _EMPTY
        self.chain_id = CHAIN_ID
        self.faults: list[dict[str, Any]] = []
        self._seen: set[bytes] = set()  # attestation ids already counted (dedup by body, never signature)
        self._heights_for = -1

    def current_epoch(self, now_us: int) -> int:
        return max(0, (now_us - GENESIS_TIME_US) // EPOCH_US)

    def load(self) -> None:
        """Node key, validators, blocks, attestations; sets ``ready`` or ``error`` (logged)."""
        try:
            self._load_key()
            self._load_data()
            self.ready = True
            log.info("ready: %d blocks, head %s", len(self.snapshot.heights), _hex(self.snapshot.head))
        except (BizraError, OSError, ValueError) as exc:  # expected: a bad or missing input file
            self.error = " ".join(str(exc).split())
            log.error("loading %s failed: %s", self.data_dir, self.error)
        except Exception as exc:  # a bug: still say so on /readyz instead of loading forever
            self.error = f"internal error: {type(exc).__name__}: {exc}"
            log.exception("loading %s failed", self.data_dir)

    def _load_key(self) -> None:
        path = self.data_dir / "node_key.secret"
        if not path.exists():
            keymod.write_secret_keys(path, keymod.random_seeds(1))  # libsodium CSPRNG, file 0600
            log.info("created node key %s", path)
        seeds = keymod.read_secret_keys(path)
        if len(seeds) != 1:
            raise InputError(f"{path}: expected exactly one key, found {len(seeds)}")
        self.node_seed = seeds
        self.node_public_key = keymod.keypairs_from_seeds(seeds)[0][0].tobytes()
        log.info("node public key 0x%s", self.node_public_key.hex())  # never the secret

    def _load_data(self) -> None:
        df = read_validators(self.data_dir / "validators.parquet")
        idx = df["index"].to_numpy().astype(np.int64)
        size = int(idx.max()) + 1 if len(idx) else 1
        if size > _MAX_VALIDATOR_INDEX:  # the tables below are indexed by validator index
            raise InputError(f"validators.parquet: validator index {size - 1} too large (max {_MAX_VALIDATOR_INDEX - 1})")
        self.weights = np.zeros(size, np.int64)
        self.weights[idx] = df["weight"].to_numpy()
        self.registered = np.zeros(size, bool)
        self.registered[idx] = True
        self.keys = np.zeros((size, 32), np.uint8)
        self.keys[idx] = binary_to_array(df["public_key"], 32)
        mine = np.flatnonzero((self.keys == np.frombuffer(self.node_public_key, np.uint8)).all(axis=1) & self.registered)
        self.node_index = int(mine[0]) if len(mine) else 0
        self.graph = BlockGraph(self.weights, bps=self.bps)
        blocks = self.data_dir / "blocks.parquet"
        if blocks.exists():
            b = read_blocks(blocks)
            if len(b) and b["height"].max() >= 2**63:
                raise InputError(f"{blocks}: height {b['height'].max()} out of range")
            self.add_blocks(list(zip(_rows(b["hash"]), _rows(b["parent"]), b["height"].cast(pl.Int64).to_list())))
        atts = self.data_dir / "attestations.parquet"
        if atts.exists():
            self._load_attestations(atts)
        with self.lock:
            self._refresh()
        self._warm_up()

    def _warm_up(self) -> None:
        """One honest verification before ready, so the first request does not pay for loading the
        verifier's compiled kernels (seconds on a cold Numba cache)."""
        body = np.zeros((1, BODY_SIZE), np.uint8)
        sig = keymod.sign_many(body, self.node_seed, threads=1)
        verify_many(body, sig, np.frombuffer(self.node_public_key, np.uint8).reshape(1, 32))

    def _load_attestations(self, path: Path, chunk_rows: int = 262_144) -> None:
        """Stream the file in chunks; a row with a wrong width is malformed (as in ``bizra run``),
        not a reason to refuse the whole file."""
        try:
            scan = pl.scan_parquet(path).select(list(_WIDTHS))
            n = scan.select(pl.len()).collect().item()
        except Exception as exc:  # Polars raises several unrelated types for a corrupt or odd file
            raise InputError(f"{path}: unreadable attestations ({first_line(exc)})") from None
        tally: dict[str, int] = {}
        for lo in range(0, n, chunk_rows):  # once per chunk
            df = scan.slice(lo, chunk_rows).collect()
            (body, ok_b), (sig, ok_s), (pk, ok_k) = (_fixed(df, name, w) for name, w in _WIDTHS.items())
            counts = self.add_attestations(Upload(body, sig, pk, ok_b & ok_s & ok_k & well_formed_bodies(body)),
                                           results=False)
            for reason, k in counts["reasons"].items():
                tally[reason] = tally.get(reason, 0) + k
        log.info("loaded %s: %d rows %s", path, n, tally)

    def add_blocks(self, rows: list[tuple[bytes, bytes, int]]) -> dict[str, Any]:
        """Ingest (hash, parent, height or -1) rows; per row accepted / waiting / rejected(reason)."""
        if not rows:
            return {"rows": 0, "accepted": 0, "waiting": 0, "rejected": 0, "results": []}
        h, p, ht = zip(*rows)
        with self.lock:
            self.graph.add_blocks(list(h), list(p), np.array(ht, np.int64))
            rejected = self.graph.rejected_blocks()
            why = {(a.tobytes(), b.tobytes()): r for a, b, r in zip(rejected["hash"], rejected["parent"], rejected["reason"])}
            orphans = self.graph.orphan_blocks()
            waiting = {(a.tobytes(), b.tobytes()) for a, b in zip(orphans["hash"], orphans["parent"])}
            self._refresh()
        results = []
        for hh, pp, _ in rows:  # once per submitted block: the response is per row anyway
            reason = why.get((hh, pp))
            status = "rejected" if reason else ("waiting" if (hh, pp) in waiting else "accepted")
            results.append({"hash": _hex(hh), "status": status, "reason": reason})
        tally = {k: sum(r["status"] == k for r in results) for k in ("accepted", "waiting", "rejected")}
        return {"rows": len(rows), **tally, "results": results}

    def add_attestations(self, up: Upload, *, results: bool = True) -> dict[str, Any]:
        """Check rows like ``bizra run`` (malformed > unknown_validator > key_mismatch > bad_signature),
        count the valid, new ones as votes; ``orphan_target`` votes are kept and wait for their block."""
        fields = decode_bodies(up.body, strict=False)
        wf = up.well_formed & (fields["epoch"] <= np.uint64(2**63 - 1))
        vi = fields["validator_index"].astype(np.int64)
        known = vi < len(self.registered)
        safe = np.where(known, vi, 0)
        known &= self.registered[safe]
        key_ok = known & (up.public_key == self.keys[safe]).all(axis=1)
        check = np.flatnonzero(wf & key_ok)
        valid = np.zeros(len(vi), bool)
        if len(check):  # outside the lock: verification is the slow part and needs no graph
            valid[check] = verify_many(up.body[check], up.signature[check], up.public_key[check])
        reason = np.select([~wf, ~known, ~key_ok, ~valid], [Reason.MALFORMED.value, Reason.UNKNOWN_VALIDATOR.value,
                           Reason.KEY_MISMATCH.value, Reason.BAD_SIGNATURE.value], Reason.OK.value).astype(object)
        ids = attestation_ids(up.body)
        good = np.flatnonzero(valid)
        first = np.zeros(len(vi), bool)  # first valid row of each body: an invalid earlier copy does not count
        first[good[np.unique(ids[good].view("V32").reshape(-1), return_index=True)[1]]] = True
        with self.lock:
            raw = ids.tobytes()
            seen = np.zeros(len(vi), bool)
            seen[good] = [raw[32 * i:32 * i + 32] in self._seen for i in good.tolist()]
            dup = valid & (seen | ~first)
            reason[dup] = Reason.DUPLICATE.value
            new = np.flatnonzero(valid & ~dup)
            if len(new):
                self.graph.add_votes(vi[new], fields["epoch"][new].astype(np.int64), fields["target"][new], ids=ids[new])
                self._seen.update(raw[32 * i:32 * i + 32] for i in new.tolist())
                self._refresh()
        heights = self.snapshot.heights
        targets = fields["target"].tobytes()
        for i in new.tolist():  # a counted vote whose block has not arrived waits (DESIGN section 5)
            if targets[32 * i:32 * i + 32] not in heights:
                reason[i] = Reason.ORPHAN_TARGET.value
        accepted = valid & ~dup
        values, counts = np.unique(reason.astype(str), return_counts=True) if len(vi) else ([], [])
        out = {"rows": len(vi), "accepted": int(accepted.sum()), "reasons": dict(zip(map(str, values), map(int, counts)))}
        if results:  # per row, for a request; the startup load only wants the tally
            out["results"] = [{"id": "0x" + ids[i].tobytes().hex(), "accepted": bool(accepted[i]), "reason": reason[i]}
                              for i in range(len(vi))]
        return out

    def _refresh(self) -> None:
        """Recompute (under the lock) and publish a new Snapshot; the reported chain only grows."""
        g = self.graph
        hashes = g.block_hashes()
        raw = hashes.tobytes()
        if len(hashes) != self._heights_for:  # the height index changes only when blocks are accepted
            self._heights = {raw[32 * i:32 * i + 32]: h for i, h in enumerate(g.heights().tolist())}
            self._heights_for = len(hashes)
        flags = g.finalized_flags()
        fat = g.finalized_at_epochs()[flags].tolist()
        final = hashes[flags]
        order = np.argsort(g.heights()[flags], kind="stable").tolist()
        chain = [final[i].tobytes() for i in order]  # genesis first: index = height
        old = self.snapshot
        finalized_at = old.finalized_at
        # Before ready nothing was reported: loading chunk by chunk may reorder finality freely.
        extends = tuple(chain[:len(old.chain)]) == old.chain
        if extends or not self.ready:
            finalized_at = dict(old.finalized_at) if extends else {}
            for i in order[len(old.chain) if extends else 0:]:
                finalized_at[final[i].tobytes()] = fat[i] if fat[i] >= 0 else None
            reported = tuple(chain)
        else:  # never revert what was reported: keep it and say so (once per distinct recomputed tip)
            reported = old.chain
            recomputed = _hex(chain[-1] if chain else None)
            if not self.faults or self.faults[-1]["recomputed_tip"] != recomputed:
                fault = {"kind": "late_message_conflict", "reported_tip": _hex(old.chain[-1]),
                         "recomputed_tip": recomputed, "detected_at": time.time()}
                self.faults.append(fault)
                log.warning("finalized chain would revert; kept the reported one: %s", fault)
        head, tip = g.head(), reported[-1] if reported else None
        head_json = {
            "head": _hex(head), "head_height": self._heights.get(head) if head else None,
            "head_weight": g.weight(head) if head else 0,
            "finalized_tip": _hex(tip), "finalized_height": len(reported) - 1 if reported else None,
            "finalized_at_epoch": finalized_at.get(tip) if tip else None,
            "blocks": len(hashes), "orphan_blocks": len(g.orphan_blocks()["hash"]),
            "equivocators": len(g.equivocators()), "total_weight": int(self.weights.sum()),
            "safety_faults": [{"kind": "conflicting_candidate", "epoch": f.epoch, "candidate": _hex(f.candidate),
                               "finalized_tip": _hex(f.finalized_tip)} for f in g.safety_faults()] + self.faults,
        }
        self.snapshot = Snapshot(self._heights, finalized_at, reported, head, head_json)

    def head_json(self) -> dict[str, Any]:
        return self.snapshot.head_json


def _rows(series: pl.Series) -> list[bytes]:
    raw = binary_to_array(series, 32).tobytes()
    return [raw[i:i + 32] for i in range(0, len(raw), 32)]
