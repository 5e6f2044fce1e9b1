"""kernels.blockgraph_votes against plain Python: the status and target of every vote row, the
stable epoch order and its buckets (counting sort, merge sort, and runs of rows already grouped
by epoch), the evidence rows."""
from __future__ import annotations

import numpy as np

from engine.consensus.messages import hash_keys
from kernels.blockgraph_index import table_build
from kernels.blockgraph_votes import (
    NEVER,
    VOTE_BAD_EPOCH,
    VOTE_OK,
    VOTE_UNKNOWN_VALIDATOR,
    VoteColumns,
    classify_votes,
    epoch_order,
    evidence_rows,
)
from tests.support import nojit  # noqa: F401  (this file runs uncompiled too: the kernel coverage gate)


def _votes(rng, n, n_validators, epochs, blocks):
    targets = np.concatenate([blocks, rng.integers(1, 256, (4, 32), dtype=np.uint8)])  # 4 unknown targets
    t = targets[rng.integers(0, len(targets), n)]
    v = rng.integers(-1, n_validators + 2, n).astype(np.int64)
    e = rng.choice(epochs, n).astype(np.int64)
    e[rng.random(n) < 0.05] = -1  # an epoch >= 2^63 on the wire
    return VoteColumns(v, e, hash_keys(t), hash_keys(rng.integers(0, 256, (n, 32), dtype=np.uint8))), t


def _buckets(votes, classes, by):
    """The rows of each bucket as the walk visits them (segments in order; in a runs order, the
    rows of another status inside a run are skipped)."""
    out = []
    for b in range(by.epoch.shape[0]):
        rows = []
        for a, z in by.segs[by.bucket_start[b]:by.bucket_start[b + 1]]:
            if by.copies:
                rows += by.order[a:z].tolist()
            else:
                rows += [i for i in range(a, z) if classes.status[i] == VOTE_OK]
        out.append(rows)
    return out


def _check(rng, epochs, grouped=False) -> None:
    blocks = rng.integers(1, 256, (30, 32), dtype=np.uint8)
    node_keys = hash_keys(blocks)
    weights = rng.integers(1, 100, 20).astype(np.uint64)
    votes, t = _votes(rng, 500, 20, epochs, blocks)
    if grouped:  # the rows come grouped by epoch (each group in random order): a runs order
        perm = np.argsort(np.where(votes.epoch < 0, rng.integers(0, 10, 500), votes.epoch), kind="stable")
        votes, t = VoteColumns(*(col[perm] for col in votes)), t[perm]
    classes = classify_votes(votes, 20, table_build(node_keys), node_keys)
    index = {bytes(b): i for i, b in enumerate(blocks)}
    for i in range(500):
        v, e = int(votes.validator[i]), int(votes.epoch[i])
        want = VOTE_UNKNOWN_VALIDATOR if not 0 <= v < 20 else VOTE_BAD_EPOCH if e < 0 else VOTE_OK
        assert classes.status[i] == want
        assert classes.target_node[i] == (index.get(bytes(t[i]), -1) if want == VOTE_OK else -1)
    ok = np.flatnonzero(classes.status == VOTE_OK)
    ep = votes.epoch[ok]
    runs = 1 + int(np.count_nonzero(ep[1:] != ep[:-1]))
    assert (classes.valid, classes.lo, classes.hi, classes.runs) == (len(ok), int(ep.min()), int(ep.max()), runs)
    by = epoch_order(votes, classes, weights)
    assert by.copies == (not grouped)
    buckets = _buckets(votes, classes, by)
    assert sum(buckets, []) == sorted(ok.tolist(), key=lambda i: votes.epoch[i])  # stable by epoch
    assert by.epoch.tolist() == sorted(set(ep.tolist()))
    for e, rows in zip(by.epoch.tolist(), buckets):
        assert rows and {int(votes.epoch[r]) for r in rows} == {e}
    if by.copies:
        m = len(ok)
        assert by.bucket_start.tolist() == list(range(len(buckets) + 1))
        assert np.array_equal(by.validator[:m], votes.validator[by.order[:m]])
        assert np.array_equal(by.target[:m], classes.target_node[by.order[:m]])
        assert np.array_equal(by.weight[:m], weights[votes.validator[by.order[:m]]])


def test_dense_epochs_counting_sort() -> None:
    _check(np.random.default_rng(1), np.arange(10))


def test_sparse_epochs_merge_sort() -> None:
    _check(np.random.default_rng(2), np.array([0, 10**12, 5 * 10**15, 2**62]))


def test_rows_grouped_by_epoch_are_walked_as_runs() -> None:
    _check(np.random.default_rng(3), np.arange(10), grouped=True)
    _check(np.random.default_rng(4), np.array([0, 10**12, 5 * 10**15, 2**62]), grouped=True)


def test_nothing_valid() -> None:
    votes = VoteColumns(np.array([-1]), np.array([3]), np.zeros((1, 4), np.uint64), np.zeros((1, 4), np.uint64))
    keys = hash_keys(np.ones((1, 32), np.uint8))
    classes = classify_votes(votes, 5, table_build(keys), keys)
    assert (classes.valid, classes.lo, classes.hi, classes.runs) == (0, NEVER, -1, 0)
    by = epoch_order(votes, classes, np.ones(5, np.uint64))
    assert by.epoch.shape == (0,) and by.segs.shape == (0, 2) and by.bucket_start.tolist() == [0]


def test_evidence_rows_pick_the_two_smallest_targets_with_their_smallest_ids() -> None:
    t = hash_keys(np.array([[9] * 32, [3] * 32, [3] * 32, [5] * 32, [7] * 32, [7] * 32], np.uint8))
    ids = hash_keys(np.array([[1] * 32, [8] * 32, [2] * 32, [4] * 32, [6] * 32, [5] * 32], np.uint8))
    votes = VoteColumns(np.array([4, 4, 4, 4, 2, 2]), np.zeros(6, np.int64), t, ids)
    out = evidence_rows(np.array([0, 1, 2, 3, 4, 5], np.int64), votes)
    # validator 2: targets 7, 7 only once distinct -> none second; validator 4: targets 3 (ids 8, 2), 5, 9
    assert out.tolist() == [[2, 5, -1], [4, 2, 3]]
