"""Block messages -> the block tree as parent-before-child flat arrays (docs/design.md, "BlockGraph").

Input: every block message received so far, `(hash, parent, height)` with height -1 where
not given, in any order, duplicates allowed; plus the pinned genesis hash. Output: a status per
message and the accepted tree in *canonical order*: nodes sorted by (height, hash), so
``parent[i] < i`` for every non-genesis node i (the invariant the backward passes in
blockgraph_finality rely on) and siblings appear in ascending hash order.

Algorithm (a level-by-level BFS from genesis over *messages*, so that the result depends only on
the set of messages, never on their arrival order):

1. distinct block hashes -> ids (hash table); parent id of each message (-1: not a block hash);
2. genesis: messages (genesis hash, zero parent) with height -1 or 0 are accepted; a zero parent
   under any other hash is SECOND_GENESIS; a zero hash is ZERO_HASH;
3. level L = 1, 2, ...: every message whose parent was accepted at level L-1 is a candidate for
   its hash; a candidate whose hash is already accepted is DUPLICATE_HASH (hash reuse); one
   with a given height != L is WRONG_HEIGHT; among the remaining candidates of one hash the
   lexicographically smallest parent wins (accepted), candidates with other parents are
   DUPLICATE_HASH;
4. messages never reached stay PENDING (orphans: their parent is unknown or was rejected),
   unless their hash was accepted through another message (then DUPLICATE_HASH).

cost: O(m) hash-table work + O(m) BFS + O(N log N) canonical sort, m messages, N blocks.

``build_tree`` is the one kernel call a recompute makes for blocks: the resolution above, the
hash table of the accepted blocks (for the vote targets) and their children lists.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from kernels.blockgraph_index import (
    argsort_keys,
    key_is_zero,
    key_less,
    table_build_unique,
    table_empty,
    table_insert_distinct,
    table_lookup,
    table_lookup_many,
)

__all__ = [
    "ACCEPTED",
    "PENDING",
    "DUPLICATE_HASH",
    "WRONG_HEIGHT",
    "SECOND_GENESIS",
    "ZERO_HASH",
    "ResolvedBlocks",
    "resolve_blocks",
    "children_csr",
    "BlockTree",
    "build_tree",
]

# Message status codes (engine.consensus.blockgraph.BlockReason mirrors the rejection ones by name).
ACCEPTED = 0
PENDING = 1
DUPLICATE_HASH = 2
WRONG_HEIGHT = 3
SECOND_GENESIS = 4
ZERO_HASH = 5


class ResolvedBlocks(NamedTuple):
    """resolve_blocks' answer: a status per message and the accepted tree in canonical order."""

    status: np.ndarray  # (m,) int8 per message: ACCEPTED, PENDING or a rejection code
    keys: np.ndarray    # (N, 4) uint64 hash keys of the accepted blocks
    parent: np.ndarray  # (N,) int64 parent's node index, -1 for genesis
    height: np.ndarray  # (N,) int64


class BlockTree(NamedTuple):
    """build_tree's answer: the resolution, the table of the accepted blocks' keys (rows of
    ``resolved.keys``; see blockgraph_index) and their children lists as CSR."""

    resolved: ResolvedBlocks
    table: np.ndarray  # int64 slots
    start: np.ndarray  # (N + 1,) int64: the children of x are kids[start[x]:start[x + 1]]
    kids: np.ndarray   # (N - 1,) int64, ascending per parent


@njit(cache=True, nogil=True)
def _build_tree(bh, bp, bheight, genesis, table):
    resolved = resolve_blocks(bh, bp, bheight, genesis)
    table_insert_distinct(table, resolved.keys)
    start, kids = children_csr(resolved.parent, resolved.parent.shape[0])
    return resolved, start, kids


def build_tree(bh, bp, bheight, genesis):
    """resolve_blocks, then the table and children lists of the accepted blocks: one kernel call.
    The table is sized for every message (a bound on the accepted blocks) and allocated by
    NumPy (huge pages, see blockgraph_index.table_empty)."""
    table = table_empty(bh.shape[0])
    resolved, start, kids = _build_tree(bh, bp, bheight, genesis, table)
    return BlockTree(resolved, table, start, kids)


@njit(cache=True, nogil=True)
def children_csr(parent, n):
    """Children lists of a parent array as CSR (start[n+1], child ids ascending per parent).

    Counting sort by parent; entries with parent < 0 are skipped.
    """
    start = np.zeros(n + 1, np.int64)
    for i in range(parent.shape[0]):
        p = parent[i]
        if p >= 0:
            start[p + 1] += 1
    for i in range(n):
        start[i + 1] += start[i]
    fill = start[:-1].copy()
    kids = np.empty(start[n], np.int64)
    for i in range(parent.shape[0]):
        p = parent[i]
        if p >= 0:
            kids[fill[p]] = i
            fill[p] += 1
    return start, kids


@njit(cache=True, nogil=True)
def resolve_blocks(bh, bp, bheight, genesis):
    """Resolve block messages into the accepted tree (see the module docstring).

    bh, bp: (m, 4) uint64 keys of hash and parent; bheight: (m,) int64, -1 = not given;
    genesis: (1, 4) uint64 key of the pinned genesis hash.
    Returns ResolvedBlocks: the status of every message and the accepted nodes in canonical
    (height, hash) order.
    """
    m = bh.shape[0]
    status = np.full(m, PENDING, np.int8)
    table, rep, hid = table_build_unique(bh)
    h = rep.shape[0]
    phid = table_lookup_many(table, bh, bp)  # rows of bh -> distinct ids
    for i in range(m):
        if phid[i] >= 0:
            phid[i] = hid[phid[i]]
    g_row = table_lookup(table, bh, genesis, 0)
    gh = hid[g_row] if g_row >= 0 else np.int64(-1)

    acc_level = np.full(h, -1, np.int64)
    acc_parent = np.full(h, -1, np.int64)
    # Step 2: genesis and the other zero-parent / zero-hash messages.
    for i in range(m):
        if key_is_zero(bh, i):
            status[i] = ZERO_HASH
        elif key_is_zero(bp, i):
            if hid[i] != gh:
                status[i] = SECOND_GENESIS
            elif bheight[i] == -1 or bheight[i] == 0:
                status[i] = ACCEPTED
                acc_level[gh] = 0
            else:
                status[i] = WRONG_HEIGHT
    # Candidate messages grouped by parent id (only those with a real, known parent).
    cand_parent = np.full(m, -1, np.int64)
    for i in range(m):
        if status[i] == PENDING and phid[i] >= 0:
            cand_parent[i] = phid[i]
    start, kids = children_csr(cand_parent, h)

    # Step 3: level-by-level BFS. bfs lists the accepted hash ids level by level; the frontier
    # (the previous level) is the slice bfs[f_lo:f_hi], so it needs no arrays of its own.
    best = np.full(h, -1, np.int64)
    touched = np.empty(h, np.int64)
    bfs = np.empty(h, np.int64)
    level_start = np.empty(h + 2, np.int64)
    nbfs = 0
    level_start[0] = 0
    if gh >= 0 and acc_level[gh] == 0:
        bfs[0] = gh
        nbfs = 1
    cands = np.empty(m, np.int64)
    f_lo = 0
    f_hi = nbfs
    level = 0
    while f_hi > f_lo:
        level += 1
        nt = 0
        nc = 0
        for fi in range(f_lo, f_hi):
            f = bfs[fi]
            for k in range(start[f], start[f + 1]):
                i = kids[k]
                x = hid[i]
                if acc_level[x] >= 0:
                    status[i] = DUPLICATE_HASH
                    continue
                if bheight[i] != -1 and bheight[i] != level:
                    status[i] = WRONG_HEIGHT
                    continue
                cands[nc] = i
                nc += 1
                b = best[x]
                if b < 0:
                    best[x] = i
                    touched[nt] = x
                    nt += 1
                elif key_less(bp, i, bp, b):
                    best[x] = i
        level_start[level] = nbfs
        for t in range(nt):
            x = touched[t]
            acc_level[x] = level
            acc_parent[x] = phid[best[x]]
            bfs[nbfs] = x
            nbfs += 1
        for c in range(nc):
            i = cands[c]
            status[i] = ACCEPTED if phid[i] == acc_parent[hid[i]] else DUPLICATE_HASH
        f_lo = f_hi
        f_hi = nbfs
    # Step 4: never reached, but the hash was accepted through another message.
    for i in range(m):
        if status[i] == PENDING and acc_level[hid[i]] >= 0:
            status[i] = DUPLICATE_HASH

    # Canonical order: the BFS already lists the blocks level by level (= by height); sort each
    # level by hash (insertion sort for the usual 1-3 blocks, argsort_keys for wide levels).
    n_acc = nbfs
    n_levels = level if nbfs else 0
    level_start[n_levels] = nbfs
    ordered = np.empty(n_acc, np.int64)
    for lv in range(n_levels):
        lo = level_start[lv]
        hi = level_start[lv + 1]
        if hi - lo <= 32:
            for a in range(lo, hi):
                x = bfs[a]
                b = a - 1
                while b >= lo and key_less(bh, rep[x], bh, rep[ordered[b]]):
                    ordered[b + 1] = ordered[b]
                    b -= 1
                ordered[b + 1] = x
        else:
            rows = np.empty(hi - lo, np.int64)
            for a in range(lo, hi):
                rows[a - lo] = rep[bfs[a]]
            rows = argsort_keys(bh, rows)
            for a in range(lo, hi):
                ordered[a] = hid[rows[a - lo]]
    node_of_hid = np.full(h, -1, np.int64)
    for pos in range(n_acc):
        node_of_hid[ordered[pos]] = pos
    node_keys = np.empty((n_acc, 4), np.uint64)
    node_parent = np.empty(n_acc, np.int64)
    node_height = np.empty(n_acc, np.int64)
    for pos in range(n_acc):
        x = ordered[pos]
        r = rep[x]
        for w in range(4):
            node_keys[pos, w] = bh[r, w]
        node_height[pos] = acc_level[x]
        p = acc_parent[x]
        node_parent[pos] = node_of_hid[p] if p >= 0 else np.int64(-1)
    return ResolvedBlocks(status, node_keys, node_parent, node_height)
