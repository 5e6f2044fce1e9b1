"""Per-epoch LMD weights, finality walk and GHOST head over the canonical block arrays.

Input: the tree from blockgraph_blocks (nodes in (height, hash) order, ``parent[i] < i``), the
validator weights, and the vote rows. ``walk_votes`` is one kernel call per recompute: it
classifies the rows and orders them by epoch (blockgraph_votes: sorted copies, or the runs of
rows that already come grouped by epoch), walks the epochs and finds the head. A process that
loads few kernels starts fast: each cached kernel costs milliseconds to load on its first call.

Algorithm (proto-array style, Lighthouse `compute_deltas` + `apply_score_changes`):

1. for each epoch E that occurs in the votes, ascending (one bucket of rows):
   a. one pass over the bucket's rows, no sort: a validator's first row in E leads and its
      delta is applied at once (latest vote moves from block c to block t: delta[c] -= w,
      delta[t] += w); a later row with the same target is a re-delivery; a different target is
      an equivocation: after the pass its leader is undone, evidence is recorded, and at its
      first equivocation the validator is excluded (delta[c] -= w, total -= w). A vote for an
      unknown block waits (an orphan row; the validator keeps its previous vote). Only
      validators voting in E are touched;
   b. one backward pass from the largest touched index down to 0 turns the deltas into subtree
      sums (a child's delta is pushed into its parent before the parent is visited). It is
      deferred while no block can qualify (the genesis weight, tracked as a scalar, is below
      the threshold: typical of the first epochs of a job), and done before c. otherwise;
   c. candidate(E) = deepest block with weight * 10000 >= total * bps. With bps > 5000 at most
      one child of a block qualifies, so the qualifying blocks form a path from genesis and the
      walk "step to the qualifying child" finds its end. If the finalized tip qualifies, the walk
      starts at the tip, otherwise at genesis;
   d. candidate strict descendant of the tip -> new tip, finalized at E with every block between;
      equal or ancestor (chain[height[c]] == c) -> nothing; otherwise a safety fault (E,
      candidate, tip) is recorded and the tip stays.
2. head: from the tip, step to the child with the greatest (weight, hash); siblings share a height
   and are stored in ascending hash order, so "larger index" breaks weight ties.

Weights are uint64: the total is below 2^64 (checked by the engine: 10^7 validators x 2^40
fits), and deltas wrap modulo 2^64, which is exact because every true partial sum after a pass is
in [0, 2^64). The quorum test never forms the 128-bit products: with q, r = divmod(total, 10000),

    weight * 10000 >= total * bps  <=>  weight >= q * bps + ceil(r * bps / 10000)

because weight is an integer; q * bps <= total and r * bps < 10^8, so every term fits in uint64.
The threshold is computed once per epoch (`quorum_threshold`, checked against Python ints).

cost: O(votes + sum over epochs of (max touched index + walk length)) + O(N) head;
a job with hundreds of epochs over 10^4..10^5 blocks stays in the tens of milliseconds.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from kernels.blockgraph_index import key_equal, table_probe, table_shift
from kernels.blockgraph_votes import VOTE_OK, VoteClasses, classify_into, evidence_rows, order_into, order_scratch

__all__ = ["LAST_EPOCH", "TIP", "TOTAL", "Evidence", "Exclusions", "Faults", "Tree", "WalkFound", "WalkState",
           "quorum_threshold", "weights_total_fits", "walk_init", "walk_votes", "ghost_head", "finalized_many"]

_U64 = np.uint64
_TEN_K = np.uint64(10000)
_CEIL = np.uint64(9999)
_ZERO = np.uint64(0)
_EXCLUDED = -2
# WalkState.scalars, by name: the finalized tip, the total weight (uint64 bits as int64), and the
# last walked epoch (-1: none yet).
TIP, TOTAL, LAST_EPOCH = 0, 1, 2


class Tree(NamedTuple):
    """The accepted block tree in canonical order (``parent[i] < i``), its children lists, and
    the hash table that maps a target key to its block (blockgraph_blocks.build_tree)."""

    parent: np.ndarray  # (N,) int64, -1 for genesis
    height: np.ndarray  # (N,) int64
    start: np.ndarray   # (N + 1,) int64: the children of x are kids[start[x]:start[x + 1]]
    kids: np.ndarray    # (N - 1,) int64, ascending per parent
    table: np.ndarray   # int64 slots: rows of keys (blockgraph_index)
    keys: np.ndarray    # (N, 4) uint64 hash keys


class WalkState(NamedTuple):
    """What the epoch walk keeps between calls (walk_init makes it, walk_votes updates it in
    place), so a live graph whose new votes all come after the last walked epoch continues the
    walk instead of redoing it.

    Per validator v (int32: callers keep vote rows, blocks and validators below 2^31):
    vstate[v] = [position in the order of its first row in the current bucket (the leader; < lo:
    none yet), block of its latest counted vote (-1: none, _EXCLUDED: equivocated in an earlier
    epoch)] -- 8 bytes, so a vote touches one small line (a 16-byte row per validator measured
    3-4x slower on 1M validators: the state no longer fits the caches); eq_at[v] = position of
    the row that showed an equivocation in the current bucket (< lo: none), touched only by the
    rare rows that do not lead. Both are NumPy allocations (huge pages, see classify_votes).
    """

    weight: np.ndarray        # (N,) uint64 subtree weights of the last walked view
    delta: np.ndarray         # (N,) uint64 deltas not yet applied (all zero between calls)
    vstate: np.ndarray        # (V, 2) int32
    eq_at: np.ndarray         # (V,) int32
    finalized_at: np.ndarray  # (N,) int64 epoch each block became final (-1: none)
    chain: np.ndarray         # (max height + 1,) int64 finalized block at each height (-1: none)
    scalars: np.ndarray       # (3,) int64 indexed by TIP, TOTAL, LAST_EPOCH


class Faults(NamedTuple):
    """Safety faults: candidate(epoch) conflicted with the finalized tip of that moment."""

    epoch: np.ndarray
    candidate: np.ndarray  # block index
    tip: np.ndarray        # block index


class Exclusions(NamedTuple):
    """Validators excluded for equivocation, from ``epoch`` on."""

    validator: np.ndarray
    epoch: np.ndarray


class Evidence(NamedTuple):
    """One record per equivocating (validator, epoch): the two vote rows that prove it."""

    validator: np.ndarray
    epoch: np.ndarray
    row_a: np.ndarray  # vote row (index into the walked VoteColumns) with the smaller target
    row_b: np.ndarray  # vote row with the next distinct target


class WalkFound(NamedTuple):
    """What one walk_votes call found (int64 columns; rows index the walked VoteColumns)."""

    faults: Faults
    exclusions: Exclusions
    evidence: Evidence
    orphans: np.ndarray  # vote rows waiting for their target block


@njit(cache=True, nogil=True, inline="always")
def quorum_threshold(total, bps):
    """Smallest integer weight w with w * 10000 >= total * bps, exactly, for total < 2^64."""
    b = _U64(bps)
    q = total // _TEN_K
    r = total % _TEN_K
    return q * b + (r * b + _CEIL) // _TEN_K


def weights_total_fits(weights):
    """sum(weights) < 2^64, exactly, for uint64 weights (fewer than 2^31 of them): the uint64 sum
    is the true sum mod 2^64, and the float64 sum (NumPy's blockwise pairwise summation: off by
    less than 2^60 here) says how many times it wrapped. Two NumPy reductions, no temporaries,
    and no kernel for a new BlockGraph to load."""
    wrapped = int(weights.sum(dtype=np.uint64))
    approx = float(weights.sum(dtype=np.float64))
    return round((approx - wrapped) / 2.0**64) == 0


@njit(cache=True, nogil=True, inline="always")
def _apply_deltas(parent, weight, delta, top):
    """Step 1b: turn the pending deltas (zero above `top`) into subtree weights; afterwards
    every delta is zero. Iterate backwards: parent[x] < x, so every descendant of x has already
    pushed its delta into delta[x] when x is reached, and one pass yields the subtree sums.
    The push to the usual parent x - 1 (a chain) stays in a register (`carry`) instead of a
    store and reload of delta[x - 1] on the critical path (measured ~30% faster)."""
    carry = _ZERO  # what x + 1 pushed into x, when parent[x + 1] == x
    for x in range(top, 0, -1):
        d = delta[x] + carry
        delta[x] = _ZERO
        weight[x] += d
        p = parent[x]
        if p == x - 1:
            carry = d
        else:
            delta[p] += d
            carry = _ZERO
    if top >= 0:
        weight[0] += delta[0] + carry
        delta[0] = _ZERO


@njit(cache=True, nogil=True, inline="always")
def _deepest_qualifying(start, kids, weight, x, thr):
    """Follow the unique qualifying child from x (which qualifies) to the end of the path."""
    while True:
        nxt = np.int64(-1)
        for k in range(start[x], start[x + 1]):
            c = kids[k]
            if weight[c] >= thr:
                nxt = c
                break
        if nxt < 0:
            return x
        x = nxt


@njit(cache=True, nogil=True, inline="always")
def _push(arr, n, x):
    """arr[n] = x, doubling arr when full; returns the (possibly new) array. A plain loop copies:
    slice assignment compiles into far more code (every kernel that inlines this pays it in
    compile time and in the size of its cached library, loaded on the first call)."""
    if n == arr.shape[0]:
        grown = np.empty(2 * n + 16, arr.dtype)
        for i in range(n):
            grown[i] = arr[i]
        arr = grown
    arr[n] = x
    return arr


def walk_init(tree, weights):
    """A fresh WalkState for a tree and a validator table (nothing counted, genesis final), which
    walk_votes continues. NumPy allocations only (huge pages, no kernel to load); the total
    weight fits uint64 (the engine checked weights_total_fits)."""
    n = tree.parent.shape[0]
    scalars = np.zeros(3, np.int64)
    scalars[TOTAL] = np.array([weights.sum(dtype=np.uint64)], np.uint64).view(np.int64)[0]
    scalars[LAST_EPOCH] = -1
    chain = np.full(int(tree.height.max()) + 1, -1, np.int64)
    chain[0] = 0
    return WalkState(np.zeros(n, np.uint64), np.zeros(n, np.uint64), np.full((weights.shape[0], 2), -1, np.int32),
                     np.full(weights.shape[0], -1, np.int32), np.full(n, -1, np.int64), chain, scalars)


def walk_votes(tree, state, weights, votes, bps):
    """Classify ``votes`` (VoteColumns), order them by epoch and walk the epochs (module
    docstring, step 1), updating ``state`` in place, then find the head (step 2): one kernel call.

    Returns None, with ``state`` untouched, when a valid vote's epoch is at or before the last
    epoch walked (a late vote: the caller starts a fresh state and walks every vote); else
    (status per row (blockgraph_votes), WalkFound, head block).
    """
    n = votes.validator.shape[0]
    classes = VoteClasses(np.empty(n, np.int8), np.empty(n, np.int32), 0, 0, 0, 0)
    walked, faults, excl, evidence, orphans, head = _walk_votes(tree, state, weights, votes, classes,
                                                                order_scratch(n), bps)
    if not walked:
        return None
    faults, excl, evidence = faults.reshape(-1, 3), excl.reshape(-1, 2), evidence.reshape(-1, 4)
    found = WalkFound(Faults(faults[:, 0].copy(), faults[:, 1].copy(), faults[:, 2].copy()),
                      Exclusions(excl[:, 0].copy(), excl[:, 1].copy()),
                      Evidence(evidence[:, 0].copy(), evidence[:, 1].copy(), evidence[:, 2].copy(),
                               evidence[:, 3].copy()),
                      orphans)
    return classes.status, found, head


@njit(cache=True, nogil=True)
def _walk_votes(tree, state, weights, votes, classes, by_epoch, bps):
    """walk_votes' kernel; ``classes`` and ``by_epoch`` are the scratch arrays to fill."""
    status, target_node = classes.status, classes.target_node
    m, lo, hi, runs = classify_into(votes, weights.shape[0], tree.table, tree.keys, status, target_node)
    if m > 0 and lo <= state.scalars[LAST_EPOCH]:
        empty = np.empty(0, np.int64)
        return False, empty, empty, empty, empty, np.int64(-1)
    classes = VoteClasses(status, target_node, m, lo, hi, runs)
    by_epoch = order_into(votes, classes, weights, by_epoch)
    faults, excl, evidence, orphans = _walk(tree, state, weights, votes, classes, by_epoch, bps)
    return True, faults, excl, evidence, orphans, ghost_head(tree, state.weight, state.scalars[TIP])


@njit(cache=True, nogil=True)
def _walk(tree, state, weights, votes, classes, by_epoch, bps):
    """The walk itself. Returns flat int64 records, faults [epoch, candidate, tip] * k,
    exclusions [validator, epoch] * k, evidence [validator, epoch, row_a, row_b] * k, and the
    orphan vote rows, which walk_votes names. Rows are visited bucket by bucket and numbered by position (0, 1, ...);
    vstate keeps the position of each validator's leader row. For a leader, by_epoch.order holds
    the row and by_epoch.target the validator's latest counted block before it (to undo it if
    the validator equivocates in the bucket), at the position (sorted copies: the target copy
    just read is overwritten, which saves a per-row array and its write stream) or at position
    minus the bucket's first (runs: scratch of one bucket, which stays in cache).
    """
    parent, height, start, kids = tree.parent, tree.height, tree.start, tree.kids
    weight, delta, vstate, eq_at = state.weight, state.delta, state.vstate, state.eq_at
    finalized_at, chain, scalars = state.finalized_at, state.chain, state.scalars
    vv, tk = votes.validator, votes.target
    status, target_node = classes.status, classes.target_node
    epochs, bucket_start, segs, copies = by_epoch.epoch, by_epoch.bucket_start, by_epoch.segs, by_epoch.copies
    order, vv_sorted, before, weight_sorted = by_epoch.order, by_epoch.validator, by_epoch.target, by_epoch.weight
    tip = scalars[TIP]
    total = np.uint64(scalars[TOTAL])
    if scalars[LAST_EPOCH] != -1:
        # positions left by an earlier call refer to that call's `order`; walk_init wrote -1
        # and a call that walked no bucket wrote no position, so only then is this needed
        for v in range(vstate.shape[0]):
            vstate[v, 0] = -1
            eq_at[v] = -1
    # records (exclusions, faults, evidence) as flat int64 arrays, appended field by field
    excl = np.empty(16, np.int64)
    n_excl = 0
    faults = np.empty(16, np.int64)
    n_faults = 0
    evidence = np.empty(16, np.int64)
    n_evidence = 0
    orphans = np.empty(16, np.int64)
    n_orphans = 0
    eq_list = np.empty(16, np.int64)
    # Deltas not yet applied to `weight` (zero outside 0..pend_top) and their sum mod 2^64 (what
    # genesis will receive: weight[0] + pending is the exact genesis weight)
    pend_top = np.int64(-1)
    pending = _ZERO
    pos = np.int64(0)
    for b in range(epochs.shape[0]):
        lo = pos
        e = epochs[b]
        # 1a. one pass over the bucket's rows. A validator's first row leads and is applied at
        # once (delta[c] -= w, delta[t] += w); a later row with the same target is a
        # re-delivery; one with a different target is an equivocation, handled after the pass
        # (the leader is undone and, at the validator's first equivocation, its weight leaves).
        top = np.int64(-1)
        n_eq = 0
        orphans_before = n_orphans
        # The two kinds of order get a loop each, the same body but for where a row's fields
        # come from: one loop with the choice inside measured ~1.4x slower.
        if copies:
            base = 0
            for k in range(segs[b, 0], segs[b, 1]):  # one segment per bucket; position = k
                row = np.int64(order[k])
                v = np.int64(vv_sorted[k])
                t = np.int64(before[k])
                w = weight_sorted[k]
                lp = np.int64(vstate[v, 0])
                if lp < lo:
                    vstate[v, 0] = k
                    c = vstate[v, 1]
                    before[k] = c  # from now on: the block before this leader
                    if t < 0:  # waits for its block (the validator keeps its previous vote)
                        orphans = _push(orphans, n_orphans, row)
                        n_orphans += 1
                    elif c != _EXCLUDED:
                        if c >= 0:
                            delta[c] -= w
                            pending -= w
                            top = max(top, c)
                        delta[t] += w
                        pending += w
                        top = max(top, t)
                        vstate[v, 1] = t
                elif eq_at[v] < lo and not key_equal(tk, row, tk, order[lp]):
                    eq_at[v] = k
                    eq_list = _push(eq_list, n_eq, v)
                    n_eq += 1
            pos = segs[b, 1]
        else:  # runs of received rows: skip the invalid ones, gather the weight
            base = lo
            for sg in range(bucket_start[b], bucket_start[b + 1]):
                for row in range(segs[sg, 0], segs[sg, 1]):
                    if status[row] != VOTE_OK:
                        continue
                    v = vv[row]
                    lp = np.int64(vstate[v, 0])
                    if lp < lo:
                        t = np.int64(target_node[row])
                        order[pos - lo] = row
                        vstate[v, 0] = pos
                        c = vstate[v, 1]
                        before[pos - lo] = c
                        if t < 0:
                            orphans = _push(orphans, n_orphans, row)
                            n_orphans += 1
                        elif c != _EXCLUDED:
                            w = weights[v]
                            if c >= 0:
                                delta[c] -= w
                                pending -= w
                                top = max(top, c)
                            delta[t] += w
                            pending += w
                            top = max(top, t)
                            vstate[v, 1] = t
                    elif eq_at[v] < lo and not key_equal(tk, row, tk, order[lp - lo]):
                        eq_at[v] = pos
                        eq_list = _push(eq_list, n_eq, v)
                        n_eq += 1
                    pos += 1
        if n_eq > 0:
            for q in range(n_eq):
                v = eq_list[q]
                w = weights[v]
                now = vstate[v, 1]
                was = before[vstate[v, 0] - base]
                if now != was:  # undo the leader
                    delta[now] -= w
                    pending -= w
                    if now > top:
                        top = now
                    if was >= 0:
                        delta[was] += w
                        pending += w
                    vstate[v, 1] = was
                if was == _EXCLUDED:
                    continue  # evidence only: excluded since an earlier epoch
                excl = _push(excl, n_excl, v)
                excl = _push(excl, n_excl + 1, e)
                n_excl += 2
                if was >= 0:
                    delta[was] -= w
                    pending -= w
                    if was > top:
                        top = was
                vstate[v, 1] = _EXCLUDED
                total -= w
            # an equivocating validator's leader is not an orphan vote
            keep = orphans_before
            for q in range(orphans_before, n_orphans):
                if eq_at[vv[orphans[q]]] < lo:
                    orphans[keep] = orphans[q]
                    keep += 1
            n_orphans = keep
            rows = np.empty(16, np.int64)
            nr = 0
            for sg in range(bucket_start[b], bucket_start[b + 1]):
                for r in range(segs[sg, 0], segs[sg, 1]):
                    if copies:
                        r = order[r]
                    elif status[r] != VOTE_OK:
                        continue
                    if eq_at[vv[r]] >= lo:
                        rows = _push(rows, nr, np.int64(r))
                        nr += 1
            found = evidence_rows(rows[:nr], votes)
            for q in range(found.shape[0]):
                evidence = _push(evidence, n_evidence, found[q, 0])
                evidence = _push(evidence, n_evidence + 1, e)
                evidence = _push(evidence, n_evidence + 2, found[q, 1])
                evidence = _push(evidence, n_evidence + 3, found[q, 2])
                n_evidence += 4
        # 1c. candidate(e); none while total(e) = 0. Every weight is at most the genesis
        # weight, weight[0] + pending; below the threshold no block qualifies and the deltas
        # stay pending (step 1b deferred: passes are additive, so a later one is exact).
        if top > pend_top:
            pend_top = top
        if total == _ZERO:
            continue
        thr = quorum_threshold(total, bps)
        if weight[0] + pending < thr:
            continue
        _apply_deltas(parent, weight, delta, pend_top)
        pend_top = -1
        pending = _ZERO
        if weight[tip] >= thr:
            cand = _deepest_qualifying(start, kids, weight, tip, thr)
        elif weight[0] >= thr:
            cand = _deepest_qualifying(start, kids, weight, np.int64(0), thr)
        else:
            continue
        # 1d. move, keep, or record a safety fault
        if height[cand] > height[tip] and weight[tip] >= thr:
            x = cand
            while x != tip:
                finalized_at[x] = e
                chain[height[x]] = x
                x = parent[x]
            tip = cand
        elif chain[height[cand]] != cand:
            faults = _push(faults, n_faults, e)
            faults = _push(faults, n_faults + 1, cand)
            faults = _push(faults, n_faults + 2, tip)
            n_faults += 3
    _apply_deltas(parent, weight, delta, pend_top)  # the weights reported: every delta applied
    scalars[TIP] = tip
    scalars[TOTAL] = np.int64(total)
    if epochs.shape[0] > 0:
        scalars[LAST_EPOCH] = epochs[epochs.shape[0] - 1]
    return faults[:n_faults], excl[:n_excl], evidence[:n_evidence], orphans[:n_orphans]


@njit(cache=True, nogil=True)
def ghost_head(tree, weight, tip):
    """Step 2: from the finalized tip, follow the child with the greatest (weight, hash)."""
    start, kids = tree.start, tree.kids
    head = tip
    while start[head + 1] > start[head]:
        best = kids[start[head]]
        for k in range(start[head] + 1, start[head + 1]):
            c = kids[k]
            if weight[c] >= weight[best]:  # equal weight: later sibling = larger hash
                best = c
        head = best
    return head


@njit(cache=True, nogil=True)
def _finalized_into(table, node_keys, chain, height, q, idx, out):
    shift = table_shift(table)
    for i in range(q.shape[0]):  # no bool (i8) store here: it would alias every descriptor
        idx[i] = table_probe(table, shift, node_keys, q, i)
    for i in range(q.shape[0]):
        r = idx[i]
        out[i] = r >= 0 and chain[height[r]] == r


def finalized_many(table, node_keys, chain, height, q):
    """is_finalized for every key row of q (one probe each, then chain[height[b]] == b): bool
    array. Outputs are NumPy allocations (huge pages; see blockgraph_votes.classify_votes)."""
    idx = np.empty(q.shape[0], np.int64)
    out = np.empty(q.shape[0], np.bool_)
    _finalized_into(table, node_keys, chain, height, q, idx, out)
    return out

