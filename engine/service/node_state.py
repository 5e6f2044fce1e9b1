"""The live node behind the HTTP API: ``NodeState`` (validators, the BlockGraph, the node key)
and the immutable ``Snapshot`` readers see.

Loading (``NodeState.load``, run on a background thread by engine.service.app):
DIR/validators.parquet (required; engine.tables.validators, the loader ``bizra run`` uses),
DIR/blocks.parquet and DIR/attestations.parquet (optional; rows go through the row checks of
``bizra run``, engine.pipeline.row_checks, and only valid, non-duplicate votes are counted) into
a BlockGraph. The node key is DIR/node_key.secret (0600; created from libsodium's CSPRNG if
missing; only its public key is logged).

Decisions (tested in tests/service/):
- Votes are deduplicated by attestation id (SHA-256 of the body), across requests, for the life
  of the process (a set of ids; 32 bytes + overhead per counted vote).
- The live graph answers for the whole message set; the *reported* finalized chain only ever
  grows: if a late message makes the recomputed chain not extend it, a safety fault is recorded
  (GET /head) and the reported chain is kept (docs/design.md, "Finality": never revert); it then
  stays where it is until the conflict is gone or an operator restarts the node.
- Bounded waiting pools: blocks waiting for their parent and votes waiting for their target
  block are capped (``max_waiting_blocks``, ``max_waiting_votes``: BIZRA_MAX_WAITING_BLOCKS,
  BIZRA_MAX_WAITING_VOTES). A request that would take a pool past its cap is refused whole, before
  anything of it is added: ``PoolFull`` (429, retry once parents or targets arrive) or, when the
  request alone holds more than the cap, ``TooManyWaiting`` (413). The newest are refused; what
  already waits is never evicted, and leaves the pool when its block arrives. The count of
  waiting blocks for a request is an upper bound (a block that would be rejected counts too).
  The startup load is not capped (it is the node's own data) but counts toward the pools.
- Nothing here knows HTTP: errors are domain errors (engine.model.errors) that the service maps
  to status codes.

Example: ``s = NodeState(Path("data")); s.load(); s.snapshot.head``.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.consensus.blockgraph import BlockGraph
from engine.model.attestation import BODY_SIZE, attestation_ids, binary_to_array
from engine.model.chain import CHAIN_ID, epoch_at
from engine.model.errors import BizraError, InputError, Reason, first_line
from engine.pipeline.row_checks import VOTE, check_rows
from engine.pipeline.outputs import REASONS
from engine.tables.attestations import ROW_COLUMNS, AttestationColumns, attestation_columns
from engine.tables.blocks import read_blocks
from engine.tables.decode_limits import MIN_BYTES_PER_ROW, check_parquet_file
from engine.tables.validators import load_validator_table
from engine.verification import keys as keymod
from engine.verification.api import verify_many

__all__ = ["NodeState", "PoolFull", "Snapshot", "TooManyWaiting"]

log = logging.getLogger("bizra.service")


class PoolFull(BizraError):
    """A waiting pool (blocks without their parent, votes without their block) is full; retry later."""


class TooManyWaiting(BizraError):
    """One request holds more waiting items than the pool may ever hold."""


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
_REASON_OF_CODE = np.array([r.value for r in REASONS], dtype=object)  # REASONS are in code order


def _hex(h: bytes | None) -> str | None:
    return None if h is None else "0x" + h.hex()


class NodeState:
    """Validators, the live BlockGraph (guarded by ``lock``: it is not thread-safe) and the node key.

    Example: ``s = NodeState(Path("data")); s.load(); s.snapshot.head``.
    """

    def __init__(self, data_dir: Path, bps: int = 6667, *, max_waiting_blocks: int = 100_000,
                 max_waiting_votes: int = 500_000) -> None:
        self.data_dir, self.bps = Path(data_dir), bps
        self.max_waiting_blocks, self.max_waiting_votes = max_waiting_blocks, max_waiting_votes
        self.waiting_blocks = 0  # blocks waiting for their parent (from the last refresh)
        self.waiting_votes = 0   # counted votes whose target block has not arrived
        self._waiting_by_target: dict[bytes, int] = {}
        self.lock = threading.Lock()
        self.ready, self.error = False, None
        self.snapshot = _EMPTY
        self.chain_id = CHAIN_ID
        self.faults: list[dict[str, Any]] = []
        self._seen: set[bytes] = set()  # attestation ids already counted (dedup by body, never signature)
        self._heights_for = -1

    def current_epoch(self, now_us: int) -> int:
        return epoch_at(now_us)

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
        table = load_validator_table(self.data_dir / "validators.parquet")
        self.weights, self.registered, self.keys = table.weights, table.registered, table.keys
        self.validators = table
        mine = np.flatnonzero((self.keys == np.frombuffer(self.node_public_key, np.uint8)).all(axis=1) & self.registered)
        self.node_index = int(mine[0]) if len(mine) else 0
        self.graph = BlockGraph(self.weights, bps=self.bps)
        blocks = self.data_dir / "blocks.parquet"
        if blocks.exists():
            b = read_blocks(blocks)
            self.add_blocks(list(zip(_rows(b["hash"]), _rows(b["parent"]), b["height"].cast(pl.Int64).to_list())),
                            bounded=False)
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
        not a reason to refuse the whole file. A file whose metadata declares more than its size
        allows (a compression bomb) is refused before any page is decoded."""
        check_parquet_file(path, InputError, MIN_BYTES_PER_ROW)
        try:
            scan = pl.scan_parquet(path).select(list(ROW_COLUMNS))
            n = scan.select(pl.len()).collect().item()
        except Exception as exc:  # Polars raises several unrelated types for a corrupt or odd file
            raise InputError(f"{path}: unreadable attestations ({first_line(exc)})") from None
        tally: dict[str, int] = {}
        for lo in range(0, n, chunk_rows):  # once per chunk
            counts = self.add_attestations(attestation_columns(scan.slice(lo, chunk_rows).collect()), results=False,
                                           bounded=False)
            for reason, k in counts["reasons"].items():
                tally[reason] = tally.get(reason, 0) + k
        log.info("loaded %s: %d rows %s", path, n, tally)

    def _would_wait(self, rows: list[tuple[bytes, bytes, int]]) -> tuple[int, int]:
        """(blocks of ``rows`` that would wait, blocks waiting in all after adding them), an upper
        bound: waiting blocks that the new ones connect leave the pool, rejections are ignored."""
        known = self._heights if self._heights_for >= 0 else {}
        orphans = self.graph.orphan_blocks()
        pending = set(zip(_rows_of(orphans["hash"]), _rows_of(orphans["parent"])))
        new = {(h, p) for h, p, _ in rows if h not in known and p != bytes(32)} - pending
        children: dict[bytes, list[bytes]] = {}
        for h, p in pending | new:
            children.setdefault(p, []).append(h)
        reached, frontier = set(), [p for p in children if p in known]
        while frontier:  # once per block that connects: each hash is expanded at most once
            for h in children.pop(frontier.pop(), ()):
                if h not in reached:
                    reached.add(h)
                    frontier.append(h)
        waiting = {(h, p) for h, p in pending | new if h not in reached}
        return len(waiting & new), len(waiting)

    def add_blocks(self, rows: list[tuple[bytes, bytes, int]], *, bounded: bool = True) -> dict[str, Any]:
        """Ingest (hash, parent, height or -1) rows; per row accepted / waiting / rejected(reason).
        ``bounded``: refuse the request (PoolFull, TooManyWaiting) when it would take the pool of
        blocks waiting for their parent past ``max_waiting_blocks``."""
        if not rows:
            return {"rows": 0, "accepted": 0, "waiting": 0, "rejected": 0, "results": []}
        h, p, ht = zip(*rows)
        with self.lock:
            cap = self.max_waiting_blocks
            if bounded and self.waiting_blocks + len(rows) > cap:  # only then is the exact count needed
                added, after = self._would_wait(rows)
                if added > cap:
                    raise TooManyWaiting(f"blocks: {added:,} of these blocks would wait for their parent, more "
                                         f"than the pool holds (BIZRA_MAX_WAITING_BLOCKS={cap:,}); send parents first")
                if after > cap:
                    raise PoolFull(f"blocks: {self.waiting_blocks:,} blocks already wait for their parent and these "
                                   f"would make {after:,} (BIZRA_MAX_WAITING_BLOCKS={cap:,}); nothing was added, "
                                   "send their parents or retry later")
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

    def add_attestations(self, up: AttestationColumns, *, results: bool = True, bounded: bool = True) -> dict[str, Any]:
        """Check rows like ``bizra run`` (engine.pipeline.row_checks), count the valid, new ones
        as votes; ``orphan_target`` votes are kept and wait for their block. ``bounded``: refuse
        the request (PoolFull, TooManyWaiting) when its votes for unknown blocks would take the
        pool of waiting votes past ``max_waiting_votes``."""
        checks = check_rows(up, self.validators)  # outside the lock: verification is the slow part
        fields, vi = checks.fields, checks.validator
        valid = checks.code == VOTE
        reason = _REASON_OF_CODE[np.where(valid, Reason.OK.code, checks.code)]
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
            targets = fields["target"].tobytes()
            heights = self.snapshot.heights
            unknown = [targets[32 * i:32 * i + 32] for i in new.tolist() if targets[32 * i:32 * i + 32] not in heights]
            cap = self.max_waiting_votes
            if bounded and len(unknown) > cap:
                raise TooManyWaiting(f"attestations: {len(unknown):,} of these votes are for blocks this node does not "
                                     f"know, more than the pool holds (BIZRA_MAX_WAITING_VOTES={cap:,}); send the "
                                     "blocks first")
            if bounded and unknown and self.waiting_votes + len(unknown) > cap:
                raise PoolFull(f"attestations: {self.waiting_votes:,} votes already wait for their block and these "
                               f"would add {len(unknown):,} (BIZRA_MAX_WAITING_VOTES={cap:,}); nothing was added, "
                               "send the blocks or retry later")
            for t in unknown:
                self._waiting_by_target[t] = self._waiting_by_target.get(t, 0) + 1
            self.waiting_votes += len(unknown)
            if len(new):
                self.graph.add_votes(vi[new], fields["epoch"][new].astype(np.int64), fields["target"][new], ids=ids[new])
                self._seen.update(raw[32 * i:32 * i + 32] for i in new.tolist())
                self._refresh()
        heights = self.snapshot.heights
        for i in new.tolist():  # a counted vote whose block has not arrived waits (docs/design.md, "BlockGraph")
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
            for target in [t for t in self._waiting_by_target if t in self._heights]:  # their block arrived
                self.waiting_votes -= self._waiting_by_target.pop(target)
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
            "blocks": len(hashes), "orphan_blocks": len(g.orphan_blocks()["hash"]), "waiting_votes": self.waiting_votes,
            "equivocators": len(g.equivocators()), "total_weight": int(self.weights.sum()),
            "safety_faults": [{"kind": "conflicting_candidate", "epoch": f.epoch, "candidate": _hex(f.candidate),
                               "finalized_tip": _hex(f.finalized_tip)} for f in g.safety_faults()] + self.faults,
        }
        self.waiting_blocks = head_json["orphan_blocks"]
        self.snapshot = Snapshot(self._heights, finalized_at, reported, head, head_json)

    def head_json(self) -> dict[str, Any]:
        return self.snapshot.head_json


def _rows(series: pl.Series) -> list[bytes]:
    return _rows_of(binary_to_array(series, 32))


def _rows_of(hashes: np.ndarray) -> list[bytes]:
    raw = np.ascontiguousarray(hashes).tobytes()
    return [raw[i:i + 32] for i in range(0, len(raw), 32)]
