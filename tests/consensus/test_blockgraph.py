"""BlockGraph (Numba kernels) against the slow reference, and order independence (hypothesis).

Generated message sets cover forks, hash reuse, wrong heights, second geneses, zero hashes,
orphan blocks (parents never delivered) and orphan votes (unknown targets), duplicates,
equivocations, unknown validators and negative epochs, weight ties (small weights), hash ties
(hashes sharing their first 8 bytes, so ordering falls through to later words), huge weights
(total close to 2^64), and totals of exactly 10000 with bps 6666/6667/6668 so that
``weight * 10000 == total * bps`` happens.
"""
from __future__ import annotations

import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import blockgraph_reference as ref
from engine.consensus.blockgraph import BlockGraph
from tests.support.nojit import examples

ZERO = bytes(32)
BPS = [5001, 6666, 6667, 6668, 8000, 10000]


@st.composite
def weight_sets(draw, n):
    mode = draw(st.sampled_from(["ties", "small", "exact", "huge"]))
    if mode == "ties":
        return [draw(st.sampled_from([0, 1, 1, 2]))] * n if n < 3 else \
            [draw(st.sampled_from([0, 1, 2])) for _ in range(n)]
    if mode == "small":
        return [draw(st.integers(0, 50)) for _ in range(n)]
    if mode == "exact":  # sums to 10000: boundary products are exact
        cuts = sorted(draw(st.lists(st.integers(0, 10000), min_size=n - 1, max_size=n - 1)))
        edges = [0] + cuts + [10000]
        return [edges[i + 1] - edges[i] for i in range(n)]
    cap = (2**64 - 1) // n
    return [draw(st.integers(cap - 2**40, cap)) for _ in range(n)]


@st.composite
def scenarios(draw, dense=False):
    """(weights, bps, genesis, blocks, votes) with every adversarial ingredient.

    dense: few validators and epochs, many votes: equivocations, re-deliveries and votes for
    unknown blocks collide in the same (validator, epoch).
    """
    n = draw(st.integers(1, 5 if dense else 12))
    prefixes = draw(st.lists(st.binary(min_size=8, max_size=8), min_size=1, max_size=2))
    suffix = st.binary(min_size=24, max_size=24)
    hashes = draw(st.lists(st.tuples(st.sampled_from(prefixes), suffix).map(lambda t: t[0] + t[1])
                           .filter(lambda h: h != ZERO), min_size=n + 2, max_size=n + 2,
                           unique=True))
    unknown = hashes[n:]  # never delivered as blocks
    hashes = hashes[:n]
    parent = [None] + [draw(st.integers(0, i - 1)) for i in range(1, n)]
    depth = [0] * n
    for i in range(1, n):
        depth[i] = depth[parent[i]] + 1
    dropped = set(draw(st.lists(st.integers(1, max(1, n - 1)), max_size=1))) if n > 1 else set()
    blocks = []
    for i in range(n):
        if i in dropped:
            continue
        kind = draw(st.sampled_from(["none"] * 4 + ["right"] * 3 + ["wrong"]))
        ht = {"none": -1, "right": depth[i], "wrong": depth[i] + 1}[kind]
        blocks.append((hashes[i], ZERO if i == 0 else hashes[parent[i]], ht))
    extras = draw(st.lists(st.sampled_from(["reuse", "genesis2", "zero", "self", "dup"]),
                           max_size=2))
    for kind in extras:
        j = draw(st.integers(0, n - 1))
        k = draw(st.integers(0, n - 1))
        if kind == "reuse":
            blocks.append((hashes[j], hashes[k], -1))
        elif kind == "genesis2":
            blocks.append((unknown[0], ZERO, 0))
        elif kind == "zero":
            blocks.append((ZERO, hashes[k], -1))
        elif kind == "self":
            blocks.append((unknown[1], unknown[1], -1))
        elif blocks:
            blocks.append(blocks[j % len(blocks)])
    nv = draw(st.integers(1, 3 if dense else 6))
    weights = draw(weight_sets(nv))
    targets = hashes + unknown[:1]
    # most votes follow the epoch's favourite block, so quorums (and conflicting ones) happen
    favourite = draw(st.lists(st.sampled_from(hashes), min_size=7, max_size=7))
    ids = st.sampled_from([bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32])
    last = 2 if dense else 5
    honest = st.tuples(st.integers(0, nv - 1), st.integers(0, last)).map(
        lambda ve: (ve[0], ve[1], favourite[ve[1]]))
    noisy = st.tuples(st.integers(0, nv), st.integers(-1, last), st.sampled_from(targets))
    vote = st.tuples(honest | honest | noisy, ids).map(lambda t: t[0] + (t[1],))
    votes = draw(st.lists(vote, max_size=24 if dense else 16))
    votes += draw(st.lists(st.sampled_from(votes), max_size=3)) if votes else []
    bps = draw(st.sampled_from(BPS))
    return weights, bps, hashes[0], blocks, votes


def build(weights, bps, genesis, blocks, votes, rnd=None):
    """A BlockGraph fed the messages, optionally shuffled, chunked and interleaved with queries."""
    g = BlockGraph(np.array(weights, np.uint64), bps=bps, genesis=genesis)
    blocks, votes = list(blocks), list(votes)
    if rnd is None:
        if blocks:
            g.add_blocks([b[0] for b in blocks], [b[1] for b in blocks], [b[2] for b in blocks])
        if votes:
            g.add_votes([v[0] for v in votes], [v[1] for v in votes], [v[2] for v in votes],
                        [v[3] for v in votes])
        return g
    msgs = [("b", b) for b in blocks] + [("v", v) for v in votes]
    msgs += [rnd.choice(msgs) for _ in range(rnd.randint(0, 3))] if msgs else []
    rnd.shuffle(msgs)
    i = 0
    while i < len(msgs):
        k = rnd.randint(1, 4)
        chunk = msgs[i:i + k]
        i += k
        bs = [m for t, m in chunk if t == "b"]
        vs = [m for t, m in chunk if t == "v"]
        if bs:
            g.add_blocks(np.frombuffer(b"".join(b[0] for b in bs), np.uint8).reshape(-1, 32),
                         [b[1] for b in bs], np.array([b[2] for b in bs]))
        if vs:
            g.add_votes(np.array([v[0] for v in vs], np.int64), [v[1] for v in vs],
                        [v[2] for v in vs], [v[3] for v in vs])
        if rnd.random() < 0.3:
            g.head()  # a recompute in the middle must not leave state behind
    return g


def expected(weights, bps, genesis, blocks, votes):
    r = ref.run(weights, bps, genesis, blocks, votes)
    r["finalized"] = {h: e for h, e in r["finalized"].items()}
    return r


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_matches_reference(sc):
    weights, bps, genesis, blocks, votes = sc
    got = ref.observe(build(*sc))
    want = expected(*sc)
    for key in want:
        assert got[key] == want[key], key


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(dense=True))
def test_dense_votes_match_reference(sc):
    got = ref.observe(build(*sc))
    want = expected(*sc)
    for key in want:
        assert got[key] == want[key], key


@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios() | scenarios(dense=True), st.integers(0, 2**32 - 1))
def test_order_chunking_duplicates_do_not_matter(sc, seed):
    one = build(*sc)
    rnd = random.Random(seed)
    two = build(*sc, rnd=rnd)
    assert ref.observe(one) == ref.observe(two)
    assert one.state_digest() == two.state_digest()


@settings(max_examples=examples(30), deadline=None)
@given(sc=scenarios())
def test_save_load_roundtrip(tmp_path_factory, sc):
    g = build(*sc)
    path = tmp_path_factory.mktemp("bg") / "state.npz"
    g.save(path)
    h = BlockGraph.load(path)
    assert ref.observe(h) == ref.observe(g)
    assert h.state_digest() == g.state_digest()


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios() | scenarios(dense=True), st.booleans())
def test_epoch_by_epoch_stream_continues_the_walk(sc, late):
    """Votes arriving epoch by epoch (queries in between) continue the walk; one late vote
    forces a full redo. Both must equal the one-shot result."""
    weights, bps, genesis, blocks, votes = sc
    g = BlockGraph(np.array(weights, np.uint64), bps=bps, genesis=genesis)
    if blocks:
        g.add_blocks([b[0] for b in blocks], [b[1] for b in blocks], [b[2] for b in blocks])
    ordered = sorted(votes, key=lambda v: v[1])
    if late and ordered:
        ordered.append(ordered[0])  # a re-delivery of the earliest vote, after later epochs
    for epoch in sorted({v[1] for v in ordered}):
        chunk = [v for v in ordered if v[1] == epoch]
        g.add_votes([v[0] for v in chunk], [v[1] for v in chunk], [v[2] for v in chunk],
                    [v[3] for v in chunk])
        g.head()
    if late and ordered:
        v = ordered[-1]
        g.add_votes([v[0]], [v[1]], [v[2]], [v[3]])
    assert ref.observe(g) == ref.observe(build(*sc))


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(dense=True))
def test_sparse_epochs_match_reference(sc):
    """Epochs far apart (range >> number of votes) take the merge-sort path of epoch_order."""
    weights, bps, genesis, blocks, votes = sc
    votes = [(v, e * 10**12 + (e > 0), t, i) for v, e, t, i in votes]
    sc = (weights, bps, genesis, blocks, votes)
    assert ref.observe(build(*sc)) == expected(*sc)
