"""BlockGraph: votes, LMD subtree weights, GHOST head and per-epoch finality (docs/design.md,
"BlockGraph", "Finality", "Head").

The state is the *set* of messages received so far (blocks, votes) plus the configuration
(validator weights, threshold, genesis). Every answer is a pure function of that set: the
messages are kept as columns (chunks as received), and the first query after new messages runs
the Numba kernels (kernels/blockgraph_blocks, blockgraph_votes, blockgraph_finality), one kernel
call for the blocks (build_tree) and one for the votes (walk_votes):

- new blocks: the tree is re-resolved and the epoch walk redone over every vote;
- new votes whose epochs all come after the last walked epoch (a live feed): the walk continues
  from its saved state over the new votes only; earlier views cannot change, so this is exact;
- any other new vote (a late one): the walk is redone over every vote.

Delivery order, chunking and duplicates therefore cannot change any result (property-tested).
A service that must never *revert* a finalized tip it already reported compares successive
``finalized_chain()`` results: this class always answers for the whole message set.

Example::

    g = BlockGraph(np.array([5, 3, 2], np.int64), bps=6667)
    g.add_blocks([genesis, b1], [bytes(32), genesis])
    g.add_votes([0, 1], [1, 1], [b1, b1])
    g.head() == b1 and g.is_finalized(b1) and g.finalized_at(b1) == 1

Decisions where docs/design.md is silent (tested in tests/consensus/test_blockgraph*.py):

- Genesis is pinned: the ``genesis`` argument, else the first zero-parent block ever added. Any
  other zero-parent block is SECOND_GENESIS. Order independence holds for any delivery order once
  the genesis is pinned (or when only one zero-parent block exists).
- Hash reuse: a hash announced with two parents keeps the version reached first by a BFS from
  genesis (lower height), ties to the lexicographically smaller parent; the others are
  DUPLICATE_HASH. A given height that is not parent height + 1 is WRONG_HEIGHT.
- A vote whose target is unknown waits: the validator's latest vote is its latest vote for a
  *known* block. Equivocation is judged on the signed votes alone (targets known or not).
- Epochs are u64 on the wire; epochs >= 2^63 are rejected (EPOCH_OUT_OF_RANGE); validator
  indices outside the table (including u64 values >= 2^63, reported as -1) are
  UNKNOWN_VALIDATOR.
- Evidence: one record per equivocating (validator, epoch), with the two smallest distinct
  targets, each with the smallest attestation id among the votes for it; orphan votes are the
  waiting votes of (validator, epoch) pairs that are not equivocations.
- Block messages whose parent never connects to genesis are orphans (they wait); a block whose
  parent was rejected is an orphan too.
- ``weight(h)`` of an unknown block is 0; ``head()``/``finalized_tip()`` are None until the
  genesis block is known.
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib

import numpy as np

from kernels.blockgraph_blocks import (
    DUPLICATE_HASH,
    PENDING,
    SECOND_GENESIS,
    WRONG_HEIGHT,
    ZERO_HASH,
    build_tree,
)
from kernels.blockgraph_finality import (
    TIP,
    Evidence,
    Exclusions,
    Faults,
    Tree,
    WalkFound,
    finalized_many,
    walk_init,
    walk_votes,
    weights_total_fits,
)
from engine.consensus.messages import MessageColumns, hash_keys, hashes_to_array, key_hashes, or_words
from kernels.blockgraph_index import table_empty
from kernels.blockgraph_votes import VOTE_BAD_EPOCH, VOTE_UNKNOWN_VALIDATOR, VoteColumns

__all__ = ["BlockGraph", "GraphReason", "SafetyFault", "Equivocation", "hashes_to_array"]

_FORMAT = 1
_ZERO32 = bytes(32)


class GraphReason(str, enum.Enum):
    """Why a block or vote message is rejected (never counted, never waiting)."""

    DUPLICATE_HASH = "duplicate_hash"
    WRONG_HEIGHT = "wrong_height"
    SECOND_GENESIS = "second_genesis"
    ZERO_HASH = "zero_hash"
    UNKNOWN_VALIDATOR = "unknown_validator"
    EPOCH_OUT_OF_RANGE = "epoch_out_of_range"


_BLOCK_REASON = {
    DUPLICATE_HASH: GraphReason.DUPLICATE_HASH,
    WRONG_HEIGHT: GraphReason.WRONG_HEIGHT,
    SECOND_GENESIS: GraphReason.SECOND_GENESIS,
    ZERO_HASH: GraphReason.ZERO_HASH,
}
_VOTE_REASON = {
    VOTE_UNKNOWN_VALIDATOR: GraphReason.UNKNOWN_VALIDATOR,
    VOTE_BAD_EPOCH: GraphReason.EPOCH_OUT_OF_RANGE,
}


@dataclasses.dataclass(frozen=True)
class SafetyFault:
    """candidate(epoch) conflicts with the finalized tip of that moment; never applied."""

    epoch: int
    candidate: bytes
    finalized_tip: bytes


@dataclasses.dataclass(frozen=True)
class Equivocation:
    """Evidence: `validator` signed targets `target_a` != `target_b` in `epoch`."""

    validator: int
    epoch: int
    target_a: bytes
    target_b: bytes
    id_a: bytes
    id_b: bytes


def _nothing_found() -> WalkFound:
    empty = np.zeros(0, np.int64)
    return WalkFound(Faults(empty, empty, empty), Exclusions(empty, empty), Evidence(empty, empty, empty, empty), empty)


def _joined(old: WalkFound, new: WalkFound) -> WalkFound:
    """Column by column, the records of two walks (new after old)."""
    return WalkFound(*(type(a)(*(np.concatenate(pair) for pair in zip(a, b))) if isinstance(a, tuple)
                       else np.concatenate([a, b]) for a, b in zip(old, new)))


def _sorted(records: tuple, *keys: str) -> tuple:
    """A NamedTuple of columns, rows sorted by the named columns (first = primary, stable)."""
    order = np.lexsort(tuple(getattr(records, k) for k in reversed(keys)))
    return type(records)(*(col[order] for col in records))


class BlockGraph:
    """Blocks + verified votes -> head, weights, finality (docs/design.md, "BlockGraph").

    ``weights``: int64 per validator index (>= 0, total < 2^64); ``bps``: finality threshold in
    basis points, 5000 < bps <= 10000 (6667 default, 8000 "economic"); ``genesis``: optional
    32-byte genesis hash to pin (else the first zero-parent block added).
    """

    def __init__(self, weights, bps: int = 6667, genesis: bytes | None = None):
        w = np.asarray(weights)
        if w.ndim != 1 or w.dtype.kind not in "iu":
            raise ValueError("weights must be a 1-D integer array")
        if w.dtype.kind == "i" and w.size and int(w.min()) < 0:
            raise ValueError("validator weights must be >= 0")
        wu = w.astype(np.uint64)  # a copy: the state owns it
        if not weights_total_fits(wu):
            raise ValueError("total validator weight must be < 2^64")
        if not (5000 < int(bps) <= 10000):
            raise ValueError("bps must satisfy 5000 < bps <= 10000")
        self._weights = wu
        self._bps = int(bps)
        self._genesis = None if genesis is None else bytes(genesis)
        if self._genesis is not None and len(self._genesis) != 32:
            raise ValueError("genesis must be 32 bytes")
        self._blocks = MessageColumns({"hash": (np.uint64, (4,)), "parent": (np.uint64, (4,)),
                                 "height": (np.int64, ())})
        self._votes = MessageColumns({"validator": (np.int64, ()), "epoch": (np.int64, ()),
                                "target": (np.uint64, (4,))})
        self._ids = None  # id keys, materialised on the first chunk that carries ids
        self._blocks_dirty = True
        self._votes_dirty = True
        self._scalar = None
        self._walked = 0

    # ---- input -------------------------------------------------------------------------------
    def add_blocks(self, hashes, parents, heights=None) -> None:
        """Add block messages (any order, chunking, duplicates); height -1 or None = not given."""
        h = hashes_to_array(hashes)
        p = hashes_to_array(parents)
        if h.shape != p.shape:
            raise ValueError("hashes and parents must have the same length")
        if heights is None:
            hts = np.full(h.shape[0], -1, np.int64)
        else:
            hts = np.array(heights, dtype=np.int64).reshape(-1)  # a copy: the state owns it
            if hts.shape[0] != h.shape[0]:
                raise ValueError("heights must have one entry per block")
        if h.shape[0] == 0:
            return
        hk, pk = hash_keys(h), hash_keys(p)
        if self._genesis is None:
            roots = np.flatnonzero((or_words(pk) == 0) & (or_words(hk) != 0))
            if roots.size:
                self._genesis = h[roots[0]].tobytes()
        self._blocks.append(hash=hk, parent=pk, height=hts)
        self._blocks_dirty = True
        self._scalar = None

    def add_votes(self, validators, epochs, targets, ids=None) -> None:
        """Add verified votes (validator, epoch, target) in any order, chunking, duplicates.

        ``ids``: optional 32-byte attestation ids (SHA-256 of the body), kept for evidence.
        """
        t = hashes_to_array(targets)
        v = np.asarray(validators).reshape(-1)
        e = np.asarray(epochs).reshape(-1)
        if not (v.shape[0] == e.shape[0] == t.shape[0]):
            raise ValueError("validators, epochs and targets must have the same length")
        if v.dtype.kind == "u":
            v = np.where(v > np.iinfo(np.int64).max, -1, v.astype(np.int64))
        v = v.astype(np.int64)
        if e.dtype.kind == "u":
            e = np.where(e > np.uint64(np.iinfo(np.int64).max), -1, e.astype(np.int64))
        e = e.astype(np.int64)
        i = None if ids is None else hash_keys(hashes_to_array(ids))
        if i is not None and i.shape[0] != t.shape[0]:
            raise ValueError("ids must have one entry per vote")
        if t.shape[0] == 0:
            return
        if i is not None and self._ids is None:
            self._ids = MessageColumns({"id": (np.uint64, (4,))})
            self._ids.append(id=np.zeros((self._votes.n, 4), np.uint64))
        self._votes.append(validator=v, epoch=e, target=hash_keys(t))
        if self._ids is not None:
            self._ids.append(id=np.zeros((t.shape[0], 4), np.uint64) if i is None else i)
        self._votes_dirty = True
        self._scalar = None

    # ---- computation -------------------------------------------------------------------------
    def _ensure(self) -> None:
        if self._blocks_dirty:
            g = hash_keys(np.frombuffer(self._genesis or _ZERO32, np.uint8).reshape(1, 32))
            built = build_tree(self._blocks["hash"], self._blocks["parent"], self._blocks["height"], g)
            resolved = built.resolved
            self._block_status = resolved.status
            self._node_keys, self._parent, self._height = resolved.keys, resolved.parent, resolved.height
            self._built = built
            self._blocks_dirty = False
            self._reset_walk()
        if self._votes_dirty:
            self._walk_new_votes()
            self._votes_dirty = False
            self._scalar = None

    def _reset_walk(self) -> None:
        """Forget every vote walked so far (the tree changed, or a vote came in late)."""
        if self._node_keys.shape[0]:
            b = self._built
            self._tree = Tree(self._parent, self._height, b.start, b.kids, b.table, self._node_keys)
        else:  # no genesis yet: walk a one-node stand-in tree that no vote targets (every valid
            # vote waits), so exclusions, evidence and orphan votes are still reported
            self._tree = Tree(np.full(1, -1, np.int64), np.zeros(1, np.int64), np.zeros(2, np.int64),
                              np.zeros(0, np.int64), table_empty(0), self._node_keys)
        self._walk = walk_init(self._tree, self._weights)
        self._walked = 0
        self._vote_status = np.zeros(0, np.int8)
        self._found = _nothing_found()
        self._votes_dirty = True

    def _walk_new_votes(self) -> None:
        """Continue the epoch walk with the votes received since the last one when they all
        come after the last walked epoch (exact: earlier views are unaffected); otherwise
        (a late vote) redo the walk over every vote."""
        if max(self._votes.n, self._node_keys.shape[0], self._weights.shape[0]) >= 2**31:
            raise ValueError("BlockGraph holds fewer than 2^31 votes, blocks and validators")
        start = self._walked
        walked = walk_votes(self._tree, self._walk, self._weights, self._vote_columns(start), self._bps)
        if walked is None:
            self._reset_walk()  # a vote at or before the last walked epoch: redo everything
            self._walk_new_votes()
            return
        status, found, head = walked
        ev = found.evidence  # rows of this walk's columns -> rows of every vote
        found = found._replace(evidence=ev._replace(row_a=ev.row_a + start, row_b=ev.row_b + start),
                               orphans=found.orphans + start)
        self._found = _joined(self._found, found)
        self._vote_status = np.concatenate([self._vote_status, status])
        self._walked = self._votes.n
        n = self._node_keys.shape[0]
        walk = self._walk
        self._weight, self._finalized_at = walk.weight[:n], walk.finalized_at[:n]
        self._chain = walk.chain if n else np.zeros(0, np.int64)
        self._tip = int(walk.scalars[TIP]) if n else -1
        self._head = int(head) if n else -1
        self._faults = self._found.faults
        self._exclusions = _sorted(self._found.exclusions, "validator")
        self._evidence = _sorted(self._found.evidence, "validator", "epoch")
        self._orphan_vote_rows = self._found.orphans

    def _vote_columns(self, start: int) -> VoteColumns:
        """The vote rows start..n."""
        v = self._votes
        ids = (np.zeros((v.n - start, 4), np.uint64) if self._ids is None  # calloc: free pages
               else self._ids.since(start, "id"))
        return VoteColumns(v.since(start, "validator"), v.since(start, "epoch"), v.since(start, "target"), ids)

    def _vote_ids(self) -> np.ndarray:
        """(n, 4) id keys of the votes (all zero where none were given)."""
        if self._ids is None:
            return np.zeros((self._votes.n, 4), np.uint64)  # calloc: untouched pages are free
        return self._ids["id"]

    def _scalar_index(self):
        """Python-side index for the scalar queries (built once per recompute, lazily)."""
        self._ensure()
        if self._scalar is None:
            raw = key_hashes(self._node_keys).tobytes()
            index = {raw[k:k + 32]: i for i, k in enumerate(range(0, len(raw), 32))}
            self._scalar = (index, self._height.tolist(), self._chain.tolist(),
                            self._weight.tolist(), self._finalized_at.tolist())
        return self._scalar

    def _hash(self, i: int) -> bytes | None:
        return None if i < 0 else key_hashes(self._node_keys[i:i + 1]).tobytes()

    # ---- scalar queries ----------------------------------------------------------------------
    def head(self) -> bytes | None:
        """GHOST head from the finalized tip under the final view."""
        self._ensure()
        return self._hash(int(self._head))

    def finalized_tip(self) -> bytes | None:
        """Deepest finalized block (genesis until something is finalized)."""
        self._ensure()
        return self._hash(int(self._tip))

    def weight(self, block_hash: bytes) -> int:
        """Final-view subtree weight of a block (0 for an unknown hash)."""
        index, _, _, weight, _ = self._scalar_index()
        i = index.get(bytes(block_hash))
        return 0 if i is None else weight[i]

    def is_finalized(self, block_hash: bytes) -> bool:
        """O(1): the finalized chain stored by height holds this block; unknown hash -> False."""
        if self._scalar is None:
            self._scalar_index()
        index, height, chain, _, _ = self._scalar
        i = index.get(block_hash if type(block_hash) is bytes else bytes(block_hash))
        return i is not None and chain[height[i]] == i

    def finalized_at(self, block_hash: bytes) -> int | None:
        """Epoch at which the block became final (None: genesis, not final, or unknown)."""
        index, height, chain, _, fat = self._scalar_index()
        i = index.get(bytes(block_hash))
        if i is None or chain[height[i]] != i or fat[i] < 0:
            return None
        return fat[i]

    def equivocators(self) -> np.ndarray:
        """Sorted validator indices excluded for equivocation."""
        self._ensure()
        return self._exclusions.validator.copy()

    def exclusion_epochs(self) -> np.ndarray:
        """Per validator, the epoch from which it is excluded (-1: never)."""
        self._ensure()
        out = np.full(self._weights.shape[0], -1, np.int64)
        out[self._exclusions.validator] = self._exclusions.epoch
        return out

    def equivocation_evidence(self) -> list[Equivocation]:
        """One record per equivocating (validator, epoch), sorted by (validator, epoch)."""
        self._ensure()
        ev = self._evidence
        pairs = np.stack([ev.row_a, ev.row_b], axis=1).reshape(-1)  # vote rows a, b of each record
        tk = key_hashes(self._votes["target"][pairs]).reshape(-1, 2, 32)  # only the evidence rows: not a copy of every vote
        ids = key_hashes(self._vote_ids()[pairs]).reshape(-1, 2, 32)
        return [Equivocation(int(v), int(e), tk[i, 0].tobytes(), tk[i, 1].tobytes(), ids[i, 0].tobytes(),
                             ids[i, 1].tobytes())
                for i, (v, e) in enumerate(zip(ev.validator.tolist(), ev.epoch.tolist()))]

    def safety_faults(self) -> list[SafetyFault]:
        """Epochs whose candidate conflicted with the finalized tip, ascending."""
        self._ensure()
        f = self._faults
        return [SafetyFault(int(e), self._hash(c), self._hash(t))
                for e, c, t in zip(f.epoch.tolist(), f.candidate.tolist(), f.tip.tolist())]

    # ---- columnar queries (canonical order: by (height, hash)) -------------------------------
    def block_hashes(self) -> np.ndarray:
        """(N, 32) uint8 hashes of the accepted blocks in canonical (height, hash) order."""
        self._ensure()
        return key_hashes(self._node_keys)

    def parent_indices(self) -> np.ndarray:
        """Row of each block's parent in block_hashes() (-1 for genesis)."""
        self._ensure()
        return self._parent.copy()

    def heights(self) -> np.ndarray:
        self._ensure()
        return self._height.copy()

    def block_weights(self) -> np.ndarray:
        """uint64 final-view subtree weights, aligned with block_hashes()."""
        self._ensure()
        return self._weight.copy()

    def finalized_flags(self) -> np.ndarray:
        self._ensure()
        n = self._node_keys.shape[0]
        if n == 0:
            return np.zeros(0, bool)
        return self._chain[self._height] == np.arange(n)

    def finalized_at_epochs(self) -> np.ndarray:
        """int64 epoch each block became final, -1 where none (genesis, or not final)."""
        self._ensure()
        return np.where(self.finalized_flags(), self._finalized_at, -1)

    def finalized_chain(self) -> np.ndarray:
        """(k, 32) hashes of the finalized chain, genesis first."""
        self._ensure()
        c = self._chain[self._chain >= 0] if self._chain.size else self._chain
        return key_hashes(self._node_keys[c])

    def is_finalized_many(self, hashes) -> np.ndarray:
        """Vectorised is_finalized over (n, 32) hashes -> bool array."""
        self._ensure()
        q = hash_keys(hashes_to_array(hashes))
        if self._node_keys.shape[0] == 0:
            return np.zeros(q.shape[0], bool)
        return finalized_many(self._built.table, self._node_keys, self._chain, self._height, q)

    # ---- orphans and rejections --------------------------------------------------------------
    def orphan_blocks(self) -> dict:
        """Blocks still waiting for their parent: {'hash', 'parent', 'height'}, deduplicated."""
        self._ensure()
        return self._blockkey_hashes(self._block_status == PENDING, with_reason=False)

    def rejected_blocks(self) -> dict:
        """Rejected block messages: {'hash', 'parent', 'height', 'reason'} (GraphReason values)."""
        self._ensure()
        return self._blockkey_hashes(self._block_status > PENDING, with_reason=True)

    def orphan_votes(self) -> dict:
        """Votes waiting for their target block: {'validator', 'epoch', 'target'}."""
        self._ensure()
        rows = np.sort(self._orphan_vote_rows)
        return self._votekey_hashes(rows, with_reason=False)

    def rejected_votes(self) -> dict:
        """Rejected votes: {'validator', 'epoch', 'target', 'reason'} (GraphReason values)."""
        self._ensure()
        return self._votekey_hashes(np.flatnonzero(self._vote_status > 0), with_reason=True)

    def _blockkey_hashes(self, mask, with_reason):
        h = key_hashes(self._blocks["hash"][mask])
        p = key_hashes(self._blocks["parent"][mask])
        ht = self._blocks["height"][mask]
        st = self._block_status[mask]
        table = np.concatenate([h, p, ht.astype(">i8").view(np.uint8).reshape(-1, 8),
                                st.astype(np.uint8).reshape(-1, 1)], axis=1)
        uniq = np.unique(table, axis=0) if table.shape[0] else table
        out = {"hash": uniq[:, :32].copy(), "parent": uniq[:, 32:64].copy(),
               "height": uniq[:, 64:72].copy().view(">i8").reshape(-1).astype(np.int64)}
        if with_reason:
            out["reason"] = np.array([_BLOCK_REASON[int(s)].value for s in uniq[:, 72]], object)
        return out

    def _votekey_hashes(self, rows, with_reason):
        v = self._votes["validator"][rows]
        e = self._votes["epoch"][rows]
        t = key_hashes(self._votes["target"][rows])
        st = self._vote_status[rows]
        table = np.concatenate([v.astype(">i8").view(np.uint8).reshape(-1, 8),
                                e.astype(">i8").view(np.uint8).reshape(-1, 8), t,
                                st.astype(np.uint8).reshape(-1, 1)], axis=1)
        uniq = np.unique(table, axis=0) if table.shape[0] else table
        out = {"validator": uniq[:, :8].copy().view(">i8").reshape(-1).astype(np.int64),
               "epoch": uniq[:, 8:16].copy().view(">i8").reshape(-1).astype(np.int64),
               "target": uniq[:, 16:48].copy()}
        if with_reason:
            out["reason"] = np.array([_VOTE_REASON[int(s)].value for s in uniq[:, 48]], object)
        return out

    # ---- persistence and digest --------------------------------------------------------------
    def save(self, path) -> None:
        """Write the configuration and every message received (npz) so a service can restart."""
        with open(path, "wb") as f:
            np.savez(f, format=np.int64(_FORMAT), weights=self._weights, bps=np.int64(self._bps),
                     genesis=np.frombuffer(self._genesis or b"", np.uint8),
                     b_hash=self._blocks["hash"], b_parent=self._blocks["parent"],
                     b_height=self._blocks["height"], v_validator=self._votes["validator"],
                     v_epoch=self._votes["epoch"], v_target=self._votes["target"],
                     v_id=self._vote_ids())

    @classmethod
    def load(cls, path) -> "BlockGraph":
        """Rebuild a BlockGraph written by save(); answers are identical."""
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != _FORMAT:
                raise ValueError(f"unsupported BlockGraph state format {int(z['format'])}")
            gen = z["genesis"].tobytes() or None
            g = cls(z["weights"], int(z["bps"]), gen)
            if z["b_hash"].shape[0]:
                g._blocks.append(hash=z["b_hash"], parent=z["b_parent"], height=z["b_height"])
            if z["v_validator"].shape[0]:
                g._votes.append(validator=z["v_validator"], epoch=z["v_epoch"],
                                target=z["v_target"])
                if z["v_id"].any():
                    g._ids = MessageColumns({"id": (np.uint64, (4,))})
                    g._ids.append(id=z["v_id"])
        return g

    def state_digest(self) -> str:
        """SHA-256 (hex) of every result in canonical order: identical states, identical digests."""
        self._ensure()
        h = hashlib.sha256()
        # exclusions and faults as (k, 2) and (k, 3) rows, as this digest has always hashed them
        for arr in (self._node_keys, self._parent, self._height, self._weight,
                    self.finalized_at_epochs(), self.finalized_flags(), np.stack(self._exclusions, axis=1),
                    np.stack(self._faults, axis=1), np.array([self._tip, self._head], np.int64)):
            a = np.ascontiguousarray(arr)
            h.update(str(a.shape).encode())
            h.update(a.astype(a.dtype.newbyteorder("<")).tobytes())
        for ev in self.equivocation_evidence():
            h.update(repr(dataclasses.astuple(ev)).encode())
        return h.hexdigest()
