"""Vote columns -> row status, target blocks, epoch order, and equivocation evidence rows.

Input: every vote received so far as columns `(validator, epoch, target key, id key)`, any order,
duplicates allowed. This module does the per-row work that needs no epoch walk:

- ``classify_into``: status per row, VOTE_OK or UNKNOWN_VALIDATOR (index outside the table) or
  BAD_EPOCH (negative, i.e. >= 2^63 as a u64), and the target's block index (-1: unknown block,
  the vote waits). One hash-table probe per row, single-threaded (a load factor <= 1/4 and
  outputs in huge pages are what make it fast, see blockgraph_index). It also counts the *runs*
  of the valid rows: maximal stretches of one epoch in received order;
- ``order_into``: the valid rows in epoch order, as an EpochOrder of segments per epoch bucket.
  When the rows already come grouped by epoch (few runs: a live feed, a job reading an
  epoch-ordered file) nothing is copied: the runs themselves, sorted by epoch, are the segments.
  Otherwise a stable sort into copies: a counting sort when the epoch range is < 4n + 2^16
  (cost O(n + range)), a merge sort otherwise (O(n log n));
- ``evidence_rows``: for the validators found equivocating in one epoch bucket, the two rows
  that make the evidence record: the smallest target and the next distinct target, each with
  its smallest attestation id.

The walk itself (blockgraph_finality) consumes the epoch buckets in order; ``classify_votes`` and
``epoch_order`` are the same steps as separate calls (the tests use them).
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from kernels.blockgraph_index import key_equal, key_less, table_probe, table_shift

__all__ = [
    "VOTE_OK",
    "VOTE_UNKNOWN_VALIDATOR",
    "VOTE_BAD_EPOCH",
    "NEVER",
    "EpochOrder",
    "VoteClasses",
    "VoteColumns",
    "classify_into",
    "classify_votes",
    "order_into",
    "epoch_order",
    "order_scratch",
    "evidence_rows",
]

VOTE_OK = 0
VOTE_UNKNOWN_VALIDATOR = 1
VOTE_BAD_EPOCH = 2
NEVER = np.iinfo(np.int64).max
_MIN_RUN = 16  # average rows per run (at least) for the runs order


class VoteColumns(NamedTuple):
    """Vote rows as received (any order, duplicates allowed)."""

    validator: np.ndarray  # (n,) int64, -1 for an index that does not fit
    epoch: np.ndarray      # (n,) int64, -1 for an epoch >= 2^63
    target: np.ndarray     # (n, 4) uint64 keys of the target hashes
    id: np.ndarray         # (n, 4) uint64 keys of the attestation ids (zeros where none)


class VoteClasses(NamedTuple):
    """What classify_votes found: a status and a target block per row, and the valid rows' count,
    epoch range and number of runs (for epoch_order)."""

    status: np.ndarray       # (n,) int8: VOTE_OK, VOTE_UNKNOWN_VALIDATOR or VOTE_BAD_EPOCH
    target_node: np.ndarray  # (n,) int32: the target's block index, -1 when unknown (the vote waits)
    valid: int
    lo: int                  # smallest valid epoch (NEVER when none)
    hi: int                  # largest valid epoch (-1 when none)
    runs: int                # maximal stretches of valid rows of one epoch, in received order


class EpochOrder(NamedTuple):
    """The valid rows in epoch order: bucket b holds the rows of epoch[b] (ascending), in the
    segments segs[bucket_start[b]:bucket_start[b + 1]], each a range [a, z).

    copies: the ranges index the sorted copies order (rows of VoteColumns), validator, target
    (block index, -1: waits) and weight (the validator's); one segment per bucket. Otherwise
    (runs) the ranges index the received rows themselves, rows of another status inside them
    are skipped, nothing is copied, and order / target are scratch for the walk (one bucket's
    worth). Either way the walk numbers the rows it visits 0, 1, ... (positions) and keeps, for
    each validator's first row in a bucket, the row in ``order`` and the validator's block before
    it in ``target``: at the position (copies) or at position - the bucket's first (runs).
    """

    epoch: np.ndarray         # (buckets,) int64
    bucket_start: np.ndarray  # (buckets + 1,) int64 into segs
    segs: np.ndarray          # (segments, 2) int64
    order: np.ndarray         # (>= valid,) int32
    validator: np.ndarray     # (>= valid,) int32 (copies only)
    target: np.ndarray        # (>= valid,) int32
    weight: np.ndarray        # (>= valid,) uint64 (copies only)
    copies: bool


@njit(cache=True, nogil=True)
def classify_into(votes, n_validators, node_table, node_keys, status, target_node):
    """Fill status / target_node for every row; return (valid rows, min and max valid epoch,
    runs).

    The probes first (every row; a rejected row's target is overwritten with -1 after), then
    the status. An int8 store inside the probe loop may alias (char*) every array descriptor
    and force reloads on each iteration: one fused loop measured ~40% slower.
    """
    vv, ve, tk = votes.validator, votes.epoch, votes.target
    n = vv.shape[0]
    shift = table_shift(node_table)
    for i in range(n):
        target_node[i] = table_probe(node_table, shift, node_keys, tk, i)
    m = np.int64(0)
    lo = NEVER
    hi = np.int64(-1)
    runs = np.int64(0)
    prev = np.int64(-1)
    for i in range(n):
        v = vv[i]
        e = ve[i]
        if v < 0 or v >= n_validators:
            status[i] = VOTE_UNKNOWN_VALIDATOR
            target_node[i] = -1
        elif e < 0:
            status[i] = VOTE_BAD_EPOCH
            target_node[i] = -1
        else:
            status[i] = VOTE_OK
            m += 1
            lo = min(lo, e)
            hi = max(hi, e)
            if e != prev:
                runs += 1
                prev = e
    return m, lo, hi, runs


def classify_votes(votes, n_validators, node_table, node_keys):
    """Per vote row of ``votes`` (VoteColumns): its status and target block, as VoteClasses.

    The outputs are allocated here by NumPy rather than inside the kernel: NumPy asks for
    transparent huge pages on large arrays, Numba's allocator does not, and first-touch page
    faults on 4 KiB pages cost ~1.5 ms per 8 MB (measured), as much as the work itself.
    """
    n = votes.validator.shape[0]
    status = np.empty(n, np.int8)
    target_node = np.empty(n, np.int32)
    valid, lo, hi, runs = classify_into(votes, n_validators, node_table, node_keys, status, target_node)
    return VoteClasses(status, target_node, int(valid), int(lo), int(hi), int(runs))


@njit(cache=True, nogil=True)
def _counting_order(votes, classes, weights, span, out):
    """Stable counting sort of the valid rows by epoch - lo (< span) into ``out``'s copies;
    returns the position where each bucket starts (and the end)."""
    ve, vv, status, target_node, lo = votes.epoch, votes.validator, classes.status, classes.target_node, classes.lo
    order, vs, ts, ws = out.order, out.validator, out.target, out.weight
    start = np.zeros(span + 1, np.int64)
    for i in range(ve.shape[0]):
        if status[i] == VOTE_OK:
            start[ve[i] - lo + 1] += 1
    nb = 0
    for k in range(span):
        if start[k + 1] > 0:
            nb += 1
        start[k + 1] += start[k]
    bounds = np.empty(nb + 1, np.int64)
    b = 0
    for k in range(span):
        if start[k + 1] > start[k]:
            bounds[b] = start[k]
            b += 1
    bounds[nb] = classes.valid
    fill = start  # fill[k] = next free position of epoch lo + k (start[k] until it is used)
    for i in range(ve.shape[0]):
        if status[i] == VOTE_OK:
            k = ve[i] - lo
            j = fill[k]
            order[j] = i
            vs[j] = vv[i]
            ts[j] = target_node[i]
            ws[j] = weights[vv[i]]
            fill[k] = j + 1
    return bounds


@njit(cache=True, nogil=True)
def _merge_order(votes, classes, weights, out):
    """Stable merge sort of the valid rows by epoch (sparse epochs) into ``out``'s copies;
    returns the bucket bounds (as _counting_order)."""
    ve, vv, status, target_node = votes.epoch, votes.validator, classes.status, classes.target_node
    order, vs, ts, ws = out.order, out.validator, out.target, out.weight
    m = classes.valid
    rows = np.empty(m, np.int64)
    ep = np.empty(m, np.int64)
    j = 0
    for i in range(ve.shape[0]):
        if status[i] == VOTE_OK:
            rows[j] = i
            ep[j] = ve[i]
            j += 1
    perm = np.argsort(ep, kind="mergesort")
    nb = 1
    for k in range(m):
        i = rows[perm[k]]
        order[k] = i
        vs[k] = vv[i]
        ts[k] = target_node[i]
        ws[k] = weights[vv[i]]
        if k > 0 and ep[perm[k]] != ep[perm[k - 1]]:
            nb += 1
    bounds = np.empty(nb + 1, np.int64)
    bounds[0] = 0
    b = 1
    for k in range(1, m):
        if ep[perm[k]] != ep[perm[k - 1]]:
            bounds[b] = k
            b += 1
    bounds[nb] = m
    return bounds


@njit(cache=True, nogil=True)
def _runs_order(votes, classes):
    """The runs of valid rows of one epoch, sorted by epoch (stable): (epoch per bucket,
    bucket_start, segs). A run ends where a valid row of another epoch starts the next; rows of
    another status inside a run stay in its range (the walk skips them)."""
    ve, status = votes.epoch, classes.status
    n = ve.shape[0]
    nr = classes.runs
    run_lo = np.empty(nr, np.int64)
    run_ep = np.empty(nr, np.int64)
    r = -1
    for i in range(n):
        if status[i] == VOTE_OK and (r < 0 or ve[i] != run_ep[r]):
            r += 1
            run_lo[r] = i
            run_ep[r] = ve[i]
    perm = np.argsort(run_ep, kind="mergesort")
    segs = np.empty((nr, 2), np.int64)
    nb = 0
    for k in range(nr):
        q = perm[k]
        segs[k, 0] = run_lo[q]
        segs[k, 1] = run_lo[q + 1] if q + 1 < nr else n
        if k == 0 or run_ep[q] != run_ep[perm[k - 1]]:
            nb += 1
    epoch = np.empty(nb, np.int64)
    bucket_start = np.empty(nb + 1, np.int64)
    b = 0
    for k in range(nr):
        q = perm[k]
        if k == 0 or run_ep[q] != run_ep[perm[k - 1]]:
            epoch[b] = run_ep[q]
            bucket_start[b] = k
            b += 1
    bucket_start[nb] = nr
    return epoch, bucket_start, segs


@njit(cache=True, nogil=True)
def order_into(votes, classes, weights, out):
    """The EpochOrder of the valid rows (see the module docstring), filling ``out`` (an
    EpochOrder whose order / validator / target / weight have room for every valid row)."""
    m, lo, hi = classes.valid, classes.lo, classes.hi
    copies = m > 0 and classes.runs > max(1, m // _MIN_RUN)
    if not copies:
        epoch, bucket_start, segs = _runs_order(votes, classes)
    else:
        if hi - lo < 4 * m + 65536:
            bounds = _counting_order(votes, classes, weights, hi - lo + 1, out)
        else:
            bounds = _merge_order(votes, classes, weights, out)
        nb = bounds.shape[0] - 1
        epoch = np.empty(nb, np.int64)
        segs = np.empty((nb, 2), np.int64)
        for b in range(nb):
            epoch[b] = votes.epoch[out.order[bounds[b]]]
            segs[b, 0] = bounds[b]
            segs[b, 1] = bounds[b + 1]
        bucket_start = np.arange(nb + 1)
    return EpochOrder(epoch, bucket_start, segs, out.order, out.validator, out.target, out.weight, copies)


def order_scratch(n):
    """An EpochOrder to fill (order_into) for n rows: NumPy allocations (huge pages; pages of
    copies a runs order never writes are never touched)."""
    empty = np.zeros(0, np.int64)
    return EpochOrder(empty, empty, np.zeros((0, 2), np.int64), np.empty(n, np.int32),
                      np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.uint64), False)


def epoch_order(votes, classes, weights):
    """The valid rows of ``votes`` in epoch order, as an EpochOrder (``classes``: classify_votes
    over the same rows).

    The order and the sorted copies are int32 (exact: the engine keeps vote rows, validators and
    blocks below 2^31), except weight (uint64). The sorted copies are written while scanning
    the rows in their received order (a scatter into one stream per epoch), so the walk then
    reads them sequentially; gathering weights[v] here too means the walk touches only one
    8-byte state row per vote (weights[v] in epoch order cost ~6 ms per 1M votes, cold, in the
    walk; in received order it is read sequentially whenever the rows come grouped by
    validator).
    """
    return order_into(votes, classes, weights, order_scratch(votes.validator.shape[0]))


@njit(cache=True, nogil=True, inline="always")
def _row_less(vv, tk, ids, a, b):
    """Row a before row b in (validator, target, id) order."""
    if vv[a] != vv[b]:
        return vv[a] < vv[b]
    if not key_equal(tk, a, tk, b):
        return key_less(tk, a, tk, b)
    return key_less(ids, a, ids, b)


@njit(cache=True, nogil=True)
def evidence_rows(rows, votes):
    """Evidence for the equivocating validators of one epoch bucket.

    rows: every row of the bucket whose validator equivocated in it. Returns (k, 3) int64
    [validator, row_a, row_b]: row_a has the smallest target (smallest id among its rows),
    row_b the next distinct target (smallest id among its rows); sorted by validator.
    """
    vv, tk, ids = votes.validator, votes.target, votes.id
    vals = np.empty(rows.shape[0], np.int64)
    for k in range(rows.shape[0]):
        vals[k] = vv[rows[k]]
    perm = np.argsort(vals, kind="mergesort")
    r = np.empty(rows.shape[0], np.int64)
    for k in range(rows.shape[0]):
        r[k] = rows[perm[k]]
    i = 0
    while i < r.shape[0]:  # insertion sort of each validator's rows (a handful) by (target, id)
        j = i + 1
        while j < r.shape[0] and vv[r[j]] == vv[r[i]]:
            j += 1
        for a in range(i + 1, j):
            x = r[a]
            b = a - 1
            while b >= i and _row_less(vv, tk, ids, x, r[b]):
                r[b + 1] = r[b]
                b -= 1
            r[b + 1] = x
        i = j
    out = np.empty((r.shape[0], 3), np.int64)
    k = 0
    i = 0
    while i < r.shape[0]:
        j = i
        second = np.int64(-1)
        while j < r.shape[0] and vv[r[j]] == vv[r[i]]:
            if second < 0 and not key_equal(tk, r[j], tk, r[i]):
                second = r[j]
            j += 1
        out[k, 0] = vv[r[i]]
        out[k, 1] = r[i]
        out[k, 2] = second
        k += 1
        i = j
    return out[:k].copy()
