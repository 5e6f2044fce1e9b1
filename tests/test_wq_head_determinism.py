"""Three BlockGraph "validators" fed the same 10,000 blocks and their votes in different orders.

The stream: a generated chain with forks (10,000 blocks), 100 validators voting over 300 epochs
(some votes arrive before their target block, two validators equivocate). The messages are cut
into segments; every instance receives every segment, each in its own order and chunking
(in order / reversed in random chunks / shuffled with duplicates), so after each segment all
three have seen the same message *set*: those are the sync points. At every sync point and at
the end, head, finalized tip, finalized chain, all block weights and the state digest must agree.

The run writes ``artifacts/wq_head_proof.json`` (git-ignored) with, per instance, the head, the
finalized tip, the number of finalized blocks and the SHA-256 state digest, and
``consensus_achieved`` computed by comparing them.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from engine.blockgraph import BlockGraph

ROOT = Path(__file__).resolve().parents[1]
N_BLOCKS = 10_000
N_VALIDATORS = 100
N_EPOCHS = 300
SEGMENTS = 4


def generate(seed: int = 20261127):
    """Blocks (hash, parent) rows and votes (validator, epoch, target) of a forked chain."""
    rng = np.random.default_rng(seed)
    hashes = np.frombuffer(b"".join(hashlib.sha256(b"wq-block-%d" % i).digest()
                                    for i in range(N_BLOCKS)), np.uint8).reshape(-1, 32)
    # 85% of blocks extend the main chain, 15% fork off one of the last 10 main blocks
    on_main = rng.random(N_BLOCKS) < 0.85
    on_main[0] = True
    main_pos = np.cumsum(on_main) - 1  # index into the main chain of the latest main block
    main = np.flatnonzero(on_main)
    parent_idx = np.empty(N_BLOCKS, np.int64)
    parent_idx[0] = -1
    idx = np.arange(1, N_BLOCKS)
    prev_main = main[main_pos[idx - 1]]
    back = main[np.maximum(0, main_pos[idx - 1] - rng.integers(0, 10, idx.size))]
    parent_idx[1:] = np.where(on_main[1:], prev_main, back)
    parents = np.zeros_like(hashes)
    parents[1:] = hashes[parent_idx[1:]]
    weights = rng.integers(1, 1000, N_VALIDATORS).astype(np.int64)
    per_epoch = main.size // N_EPOCHS
    epochs = np.repeat(np.arange(N_EPOCHS), N_VALIDATORS)
    validators = np.tile(np.arange(N_VALIDATORS), N_EPOCHS)
    # most validators vote the main block of the epoch, some lag behind, a few vote forks
    at = (epochs + 1) * per_epoch
    lag = np.where(rng.random(epochs.size) < 0.8, 0, rng.integers(0, 3 * per_epoch, epochs.size))
    target_idx = main[np.clip(at - lag, 0, main.size - 1)]
    forks = np.flatnonzero(~on_main)
    stray = rng.random(epochs.size) < 0.05
    target_idx[stray] = forks[rng.integers(0, forks.size, stray.sum())]
    # two equivocators: a second, different target in one epoch each
    extra_v = np.array([3, 7])
    extra_e = np.array([120, 200])
    extra_t = forks[:2]
    validators = np.concatenate([validators, extra_v])
    epochs = np.concatenate([epochs, extra_e])
    target_idx = np.concatenate([target_idx, extra_t])
    return hashes, parents, weights, validators, epochs, hashes[target_idx]


def deliver(g, rng, style, blocks, votes):
    """Feed one segment to one instance in its own order and chunking."""
    bh, bp = blocks
    vv, ve, vt = votes
    bi = np.arange(bh.shape[0])
    vi = np.arange(vv.shape[0])
    if style == "reversed":
        bi, vi = bi[::-1], vi[::-1]
    elif style == "shuffled":
        bi = np.concatenate([rng.permutation(bi), rng.choice(bi, bi.size // 10)])
        vi = np.concatenate([rng.permutation(vi), rng.choice(vi, vi.size // 10)])
    # interleave: votes may land before their target block
    kinds = np.concatenate([np.zeros(bi.size, int), np.ones(vi.size, int)])
    if style != "in_order":
        kinds = rng.permutation(kinds)
    pos = [0, 0]
    chunk = {"in_order": 500, "reversed": 0, "shuffled": 0}[style]
    i = 0
    while i < kinds.size:
        k = chunk or int(rng.integers(1, 2000))
        part = kinds[i:i + k]
        i += k
        nb = int((part == 0).sum())
        nv = int((part == 1).sum())
        if nb:
            sel = bi[pos[0]:pos[0] + nb]
            g.add_blocks(bh[sel], bp[sel])
            pos[0] += nb
        if nv:
            sel = vi[pos[1]:pos[1] + nv]
            g.add_votes(vv[sel], ve[sel], vt[sel])
            pos[1] += nv


def snapshot(g):
    return {
        "head": g.head().hex(),
        "finalized_tip": g.finalized_tip().hex(),
        "finalized_blocks": int(g.finalized_flags().sum()),
        "finalized_chain_sha256": hashlib.sha256(g.finalized_chain().tobytes()).hexdigest(),
        "weights_sha256": hashlib.sha256(g.block_hashes().tobytes()
                                         + g.block_weights().astype("<u8").tobytes()).hexdigest(),
        "state_sha256": g.state_digest(),
    }


def test_three_instances_agree_and_write_proof():
    hashes, parents, weights, vv, ve, vt = generate()
    rng = np.random.default_rng(7)
    styles = ["in_order", "reversed", "shuffled"]
    graphs = [BlockGraph(weights, bps=6667, genesis=hashes[0].tobytes()) for _ in styles]
    rngs = [np.random.default_rng(100 + k) for k in range(len(styles))]
    # segments of the message set: blocks and votes cut at random points
    block_cut = np.sort(rng.choice(np.arange(1, N_BLOCKS), SEGMENTS - 1, replace=False))
    vote_perm = rng.permutation(vv.size)
    vote_cut = np.sort(rng.choice(np.arange(1, vv.size), SEGMENTS - 1, replace=False))
    b_segments = np.split(np.arange(N_BLOCKS), block_cut)
    v_segments = np.split(vote_perm, vote_cut)
    sync_points = []
    for bs, vs in zip(b_segments, v_segments):
        for g, r, style in zip(graphs, rngs, styles):
            deliver(g, r, style, (hashes[bs], parents[bs]), (vv[vs], ve[vs], vt[vs]))
        snaps = [snapshot(g) for g in graphs]
        sync_points.append(all(s == snaps[0] for s in snaps))
        assert all(s == snaps[0] for s in snaps)
        ref = graphs[0]
        for g in graphs[1:]:
            assert np.array_equal(g.block_hashes(), ref.block_hashes())
            assert np.array_equal(g.block_weights(), ref.block_weights())
            assert np.array_equal(g.finalized_chain(), ref.finalized_chain())
    final = [snapshot(g) for g in graphs]
    consensus = all(s == final[0] for s in final) and all(sync_points)
    eq = graphs[0].equivocators()
    proof = {
        "blocks": N_BLOCKS,
        "validators": N_VALIDATORS,
        "epochs": N_EPOCHS,
        "votes": int(vv.size),
        "delivery_styles": styles,
        "sync_points_checked": len(sync_points),
        "sync_points_agreeing": int(sum(sync_points)),
        "equivocators": [int(v) for v in eq],
        "instances": {f"validator_{k}_{style}": {
            "head": s["head"], "finalized_tip": s["finalized_tip"],
            "finalized_blocks": s["finalized_blocks"], "state_sha256": s["state_sha256"]}
            for k, (style, s) in enumerate(zip(styles, final))},
        "consensus_achieved": consensus,
    }
    out = ROOT / "artifacts" / "wq_head_proof.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(proof, indent=2, sort_keys=True) + "\n")
    assert consensus
    assert list(eq) == [3, 7]
    assert final[0]["finalized_blocks"] > 100  # finality really progressed along the chain
    assert not graphs[0].orphan_blocks()["hash"].shape[0]
    assert not graphs[0].orphan_votes()["target"].shape[0]
