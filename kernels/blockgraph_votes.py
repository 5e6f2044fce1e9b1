"""Vote columns -> row status, target blocks, epoch order, and equivocation evidence rows.

Input: every vote received so far as columns `(validator, epoch, target key, id key)`, any order,
duplicates allowed. This module does the per-row work that needs no epoch walk:

- ``classify_votes``: status per row, VOTE_OK or UNKNOWN_VALIDATOR (index outside the table) or
  BAD_EPOCH (negative, i.e. >= 2^63 as a u64), and the target's block index (-1: unknown block,
  the vote waits). One hash-table probe per row, single-threaded (a load factor <= 1/4 and
  outputs in huge pages are what make it fast, see blockgraph_index);
- ``epoch_order``: the valid rows sorted by epoch (stable) and the bucket boundaries of equal
  epochs; a counting sort when the epoch range is < 4n + 2^16 (cost O(n + range)), a merge sort
  otherwise (O(n log n));
- ``evidence_rows``: for the validators found equivocating in one epoch bucket, the two rows
  that make the evidence record: the smallest target and the next distinct target, each with
  its smallest attestation id.

The walk itself (blockgraph_finality.walk_epochs) consumes the epoch buckets in order.
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
    "classify_votes",
    "epoch_order",
    "evidence_rows",
]

VOTE_OK = 0
VOTE_UNKNOWN_VALIDATOR = 1
VOTE_BAD_EPOCH = 2
NEVER = np.iinfo(np.int64).max


class VoteColumns(NamedTuple):
    """Vote rows as received (any order, duplicates allowed)."""

    validator: np.ndarray  # (n,) int64, -1 for an index that does not fit
    epoch: np.ndarray      # (n,) int64, -1 for an epoch >= 2^63
    target: np.ndarray     # (n, 4) uint64 keys of the target hashes
    id: np.ndarray         # (n, 4) uint64 keys of the attestation ids (zeros where none)


class VoteClasses(NamedTuple):
    """What classify_votes found: a status and a target block per row, and the valid rows' count
    and epoch range (for epoch_order)."""

    status: np.ndarray       # (n,) int8: VOTE_OK, VOTE_UNKNOWN_VALIDATOR or VOTE_BAD_EPOCH
    target_node: np.ndarray  # (n,) int32: the target's block index, -1 when unknown (the vote waits)
    valid: int
    lo: int                  # smallest valid epoch (NEVER when none)
    hi: int                  # largest valid epoch (-1 when none)


class EpochOrder(NamedTuple):
    """The valid rows sorted by epoch (stable): bucket b is order[bucket_start[b]:bucket_start[b+1]],
    all of one epoch, epochs ascending; validator, target and weight are in that order too."""

    order: np.ndarray         # (m,) int32 rows of VoteColumns
    bucket_start: np.ndarray  # (buckets + 1,) int64
    validator: np.ndarray     # (m,) int32
    target: np.ndarray        # (m,) int32 block index (-1: waits); scratch for the walk (see walk_epochs)
    weight: np.ndarray        # (m,) uint64 the validator's weight


@njit(cache=True, nogil=True)
def _classify_into(votes, n_validators, node_table, node_keys, status, target_node):
    """Fill status / target_node for every row; return (valid rows, min and max valid epoch).

    Two loops: the probes first (every row; a rejected row's target is overwritten with -1
    after), then the status. An int8 store inside the probe loop may alias (char*) every array
    descriptor and force reloads on each iteration: one fused loop measured ~40% slower.
    """
    vv, ve, tk = votes.validator, votes.epoch, votes.target
    shift = table_shift(node_table)
    for i in range(vv.shape[0]):
        target_node[i] = table_probe(node_table, shift, node_keys, tk, i)
    m = np.int64(0)
    lo = NEVER
    hi = np.int64(-1)
    for i in range(vv.shape[0]):
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
    return m, lo, hi


def classify_votes(votes, n_validators, node_table, node_keys):
    """Per vote row of ``votes`` (VoteColumns): its status and target block, as VoteClasses.

    The outputs are allocated here by NumPy rather than inside the kernel: NumPy asks for
    transparent huge pages on large arrays, Numba's allocator does not, and first-touch page
    faults on 4 KiB pages cost ~1.5 ms per 8 MB (measured), as much as the work itself.
    """
    n = votes.validator.shape[0]
    status = np.empty(n, np.int8)
    target_node = np.empty(n, np.int32)
    valid, lo, hi = _classify_into(votes, n_validators, node_table, node_keys, status, target_node)
    return VoteClasses(status, target_node, int(valid), int(lo), int(hi))


@njit(cache=True, nogil=True)
def _counting_order(votes, classes, weights, span, out):
    """Stable counting sort of the valid rows by epoch - lo (< span) into ``out`` (an EpochOrder
    whose bucket_start is not filled yet); returns bucket_start."""
    ve, vv, status, target_node, lo = votes.epoch, votes.validator, classes.status, classes.target_node, classes.lo
    order, vs, ts, ws = out.order, out.validator, out.target, out.weight
    m = order.shape[0]
    start = np.zeros(span + 1, np.int64)
    for i in range(ve.shape[0]):
        if status[i] == VOTE_OK:
            start[ve[i] - lo + 1] += 1
    nb = 0
    for k in range(span):
        if start[k + 1] > 0:
            nb += 1
        start[k + 1] += start[k]
    bucket_start = np.empty(nb + 1, np.int64)
    b = 0
    for k in range(span):
        if start[k + 1] > start[k]:
            bucket_start[b] = start[k]
            b += 1
    bucket_start[nb] = m
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
    return bucket_start


@njit(cache=True, nogil=True)
def _merge_order(votes, classes, weights, out):
    """Stable merge sort of the valid rows by epoch (sparse epochs) into ``out``; returns bucket_start."""
    ve, vv, status, target_node = votes.epoch, votes.validator, classes.status, classes.target_node
    order, vs, ts, ws = out.order, out.validator, out.target, out.weight
    m = order.shape[0]
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
    bucket_start = np.empty(nb + 1, np.int64)
    bucket_start[0] = 0
    b = 1
    for k in range(1, m):
        if ep[perm[k]] != ep[perm[k - 1]]:
            bucket_start[b] = k
            b += 1
    bucket_start[nb] = m
    return bucket_start


def epoch_order(votes, classes, weights):
    """The valid rows of ``votes`` sorted by epoch (stable), as an EpochOrder.

    ``classes``: classify_votes over the same rows. The order and the sorted copies are int32
    (exact: the engine keeps vote rows, validators and blocks below 2^31), except bucket_start
    (int64) and weight (uint64). The sorted copies are written while scanning the rows in their
    received order (a scatter into one stream per epoch), so the walk then reads them
    sequentially; gathering weights[v] here too means the walk touches only one 8-byte state row
    per vote (weights[v] in epoch order cost ~6 ms per 1M votes, cold, in the walk; in received
    order it is read sequentially whenever the rows come grouped by validator). A counting sort
    when the epoch range is < 4n + 2^16 (cost O(n + range)), a merge sort otherwise (O(n log n)).
    """
    m, lo, hi = classes.valid, classes.lo, classes.hi
    out = EpochOrder(np.empty(m, np.int32), np.zeros(1, np.int64), np.empty(m, np.int32), np.empty(m, np.int32),
                     np.empty(m, np.uint64))
    if m == 0:
        return out
    if hi - lo < 4 * m + 65536:
        bucket_start = _counting_order(votes, classes, weights, hi - lo + 1, out)
    else:
        bucket_start = _merge_order(votes, classes, weights, out)
    return out._replace(bucket_start=bucket_start)


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
