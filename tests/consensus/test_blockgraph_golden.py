"""BlockGraph results pinned on seeded random graphs: a rewrite of the walk must give the same
bytes (head, tip, weights, finality, exclusions, faults, evidence, orphans and rejections).

The digests were taken from the implementation before the walk was reorganised for speed (one
kernel per recompute); test_blockgraph.py checks the same engine against the slow reference on
small adversarial message sets, this file on graphs too large for it (thousands of blocks, tens
of thousands of votes, with forks, waiting votes, equivocations, rejected rows, a late vote and
epoch-by-epoch delivery).
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from engine.consensus.blockgraph import BlockGraph
from engine.synthetic import chain_with_forks, votes_near_main


def _messages(seed: int, *, n_blocks: int, n_validators: int, n_epochs: int, every_epoch: bool,
              sparse: bool = False, switch: bool = False):
    """Blocks and votes with every ingredient: forks, blocks whose parent never arrives, hash
    reuse, wrong heights, unknown targets, unknown validators, epochs >= 2^63, re-deliveries,
    equivocations, tied and huge weights; ``switch``: the last third of the epochs vote on a
    fork (safety faults); ``sparse``: epochs far apart (the merge-sort path)."""
    rng = np.random.default_rng(seed)
    h, p, main = chain_with_forks(n_blocks, rng, fork_rate=0.2)
    heights = np.full(n_blocks, -1, np.int64)
    extra_h = rng.integers(1, 256, (20, 32), dtype=np.uint8)  # never-delivered parents / targets
    bh = np.concatenate([h, extra_h[:5], h[rng.integers(1, n_blocks, 5)]])
    bp = np.concatenate([p, extra_h[5:10], h[rng.integers(0, n_blocks, 5)]])  # orphans, reuse
    bht = np.concatenate([heights, np.full(10, -1, np.int64)])
    side = np.setdiff1d(np.arange(n_blocks), main)
    bht[side[rng.integers(0, side.size, 3)]] = 10**6  # wrong heights (fork subtrees become orphans)
    v, e, t = votes_near_main(main, n_validators, n_epochs, rng, every_epoch=every_epoch)
    if switch:
        late = e >= 2 * n_epochs // 3
        t[late & (rng.random(v.size) < 0.8)] = side[side.size // 2]
    targets = h[t]
    n = v.size
    k = max(1, n // 50)
    eq = rng.integers(0, n, k)  # equivocations: same (validator, epoch), another target
    dup = rng.integers(0, n, k)  # re-deliveries
    v = np.concatenate([v, v[eq], v[dup]])
    e = np.concatenate([e, e[eq], e[dup]])
    targets = np.concatenate([targets, h[rng.integers(0, n_blocks, k)], targets[dup]])
    unknown = rng.random(v.size) < 0.02
    targets[unknown] = extra_h[10 + rng.integers(0, 10, int(unknown.sum()))]
    v[rng.random(v.size) < 0.005] = n_validators + 3
    e = e.astype(np.uint64)
    e[rng.random(v.size) < 0.005] = np.uint64(2**63 + 5)
    if sparse:
        e = np.where(e < 2**63, e * np.uint64(10**12) + (e % np.uint64(3)), e)
    ids = rng.integers(0, 256, (v.size, 32), dtype=np.uint8)
    perm = rng.permutation(v.size)
    weights = rng.integers(1, 2**40, n_validators).astype(np.int64)
    weights[rng.random(n_validators) < 0.2] = 7  # ties
    return weights, (bh, bp, bht), (v[perm], e[perm], targets[perm], ids[perm])


def digest(g: BlockGraph) -> str:
    """SHA-256 over state_digest() and every other answer (orphans, rejections, faults)."""
    d = hashlib.sha256(g.state_digest().encode())
    for part in (g.orphan_blocks(), g.rejected_blocks(), g.orphan_votes(), g.rejected_votes()):
        for name in sorted(part):
            d.update(name.encode())
            d.update(np.ascontiguousarray(part[name]).tobytes() if part[name].dtype != object
                     else "|".join(part[name]).encode())
    d.update(repr(g.safety_faults()).encode())
    d.update(g.exclusion_epochs().tobytes())
    d.update(repr((g.head(), g.finalized_tip())).encode())
    return d.hexdigest()


CASES = {
    "single_votes": dict(seed=1, n_blocks=3000, n_validators=20000, n_epochs=24, every_epoch=False),
    "every_epoch": dict(seed=2, n_blocks=2000, n_validators=1500, n_epochs=30, every_epoch=True),
    "switch_to_fork": dict(seed=3, n_blocks=1500, n_validators=1000, n_epochs=30, every_epoch=True,
                           switch=True),
    "sparse_epochs": dict(seed=4, n_blocks=1000, n_validators=800, n_epochs=12, every_epoch=True,
                          sparse=True),
}

GOLDEN = {  # one-shot and streamed delivery give the same digest (order independence)
    "every_epoch": "2f09843b721d029e748ef7fbbfd62607524c3e4ea75b23e51638c8fc0e28031b",
    "single_votes": "3b63ff203cf3c44d590a5eee925d943cd6bebd78410ae92343e9534ff4ea4636",
    "sparse_epochs": "8675aed47ca766e4ff2238ed20d9aef1f2b4094698aa6f138c80c349cb565757",
    "switch_to_fork": "00bae5b5123485e60691f946a5fd0edee1303d72e1ef634025eef2541a04f000",
}


def _one_shot(weights, blocks, votes) -> BlockGraph:
    g = BlockGraph(weights, bps=6667)
    g.add_blocks(*blocks)
    g.add_votes(*votes)
    return g


def _streamed(weights, blocks, votes) -> BlockGraph:
    """Votes epoch by epoch with queries between (the walk continues), blocks in two halves
    (the second redoes the walk), then one late re-delivery (the walk is redone again)."""
    v, e, t, ids = votes
    bh, bp, bht = blocks
    g = BlockGraph(weights, bps=6667)
    half = bh.shape[0] // 2
    g.add_blocks(bh[:half], bp[:half], bht[:half])
    order = np.argsort(e, kind="stable")
    bounds = np.flatnonzero(np.diff(e[order])) + 1
    for i, rows in enumerate(np.split(order, bounds)):
        g.add_votes(v[rows], e[rows], t[rows], ids[rows])
        g.head()
        if i == 3:
            g.add_blocks(bh[half:], bp[half:], bht[half:])
    g.add_votes(v[order[:1]], e[order[:1]], t[order[:1]], ids[order[:1]])
    return g


@pytest.mark.parametrize("name", sorted(CASES))
def test_results_are_pinned(name):
    weights, blocks, votes = _messages(**CASES[name])
    assert digest(_one_shot(weights, blocks, votes)) == GOLDEN[name]
    assert digest(_streamed(weights, blocks, votes)) == GOLDEN[name]
