"""Three BlockGraph "validators" fed the same blocks and votes in different orders must agree.

The scenario (docs/design.md, "Determinism": the result is a pure function of the message *set*):

1. generate a chain with forks (10,000 blocks by default) and votes of 100 validators over
   300 epochs: most vote the main block of their epoch, some lag, 5% vote forks, and two
   validators (3 and 7) equivocate once each;
2. cut blocks and votes into segments at random points;
3. feed every segment to each of three instances in its own order and chunking: in order in
   chunks of 500, reversed in random chunks, shuffled with 10% re-deliveries; blocks and votes
   interleave, so votes may land before their target block;
4. after each segment all three have seen the same message set (a sync point): head,
   finalized tip, finalized chain, all block weights and the state digest must be equal.

Used by tests/tooling/test_determinism.py (which writes artifacts/wq_head_proof.json) and by
the determinism gate of ``bizra gates``. Example::

    run = run_three_validators()
    assert run.consensus and run.proof["equivocators"] == [3, 7]
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.consensus.blockgraph import BlockGraph
from engine.synthetic import chain_with_forks

__all__ = ["DELIVERY_STYLES", "DeterminismRun", "deliver", "generate", "run_three_validators",
           "snapshot", "write_proof"]

N_BLOCKS = 10_000
N_VALIDATORS = 100
N_EPOCHS = 300
SEGMENTS = 4
SEED = 20261127
DELIVERY_STYLES = ("in_order", "reversed", "shuffled")
_ARRAYS = ("block_hashes", "block_weights", "finalized_chain")


def generate(seed: int = SEED, n_blocks: int = N_BLOCKS, n_validators: int = N_VALIDATORS,
             n_epochs: int = N_EPOCHS):
    """Blocks (hash, parent) rows and votes (validator, epoch, target) of a forked chain.

    Returns ``(hashes, parents, weights, validators, epochs, targets)``; needs at least 8
    validators (3 and 7 equivocate) and more main-chain blocks than epochs.
    """
    if n_validators < 8 or n_epochs < 3 or n_blocks < 4 * n_epochs:
        raise ValueError("determinism scenario: need >= 8 validators, >= 3 epochs, blocks >= 4 x epochs")
    rng = np.random.default_rng(seed)
    named = np.frombuffer(b"".join(hashlib.sha256(b"wq-block-%d" % i).digest()
                                   for i in range(n_blocks)), np.uint8).reshape(-1, 32)
    # 85% of blocks extend the main chain, 15% fork off one of the last 10 main blocks
    hashes, parents, main = chain_with_forks(n_blocks, rng, fork_rate=0.15, hashes=named)
    on_main = np.zeros(n_blocks, bool)
    on_main[main] = True
    weights = rng.integers(1, 1000, n_validators).astype(np.int64)
    per_epoch = main.size // n_epochs
    epochs = np.repeat(np.arange(n_epochs), n_validators)
    validators = np.tile(np.arange(n_validators), n_epochs)
    # most validators vote the main block of the epoch, some lag behind, a few vote forks
    at = (epochs + 1) * per_epoch
    lag = np.where(rng.random(epochs.size) < 0.8, 0, rng.integers(0, 3 * per_epoch, epochs.size))
    target_idx = main[np.clip(at - lag, 0, main.size - 1)]
    forks = np.flatnonzero(~on_main)
    stray = rng.random(epochs.size) < 0.05
    target_idx[stray] = forks[rng.integers(0, forks.size, stray.sum())]
    # two equivocators: a second, different target in one epoch each (120 and 200 of 300)
    extra_v = np.array([3, 7])
    extra_e = np.array([n_epochs * 2 // 5, n_epochs * 2 // 3])
    extra_t = forks[:2]
    validators = np.concatenate([validators, extra_v])
    epochs = np.concatenate([epochs, extra_e])
    target_idx = np.concatenate([target_idx, extra_t])
    return hashes, parents, weights, validators, epochs, hashes[target_idx]


def deliver(g: BlockGraph, rng: np.random.Generator, style: str, blocks, votes) -> None:
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
    # one iteration per chunk of messages, not per message
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


def snapshot(g: BlockGraph) -> dict:
    """What two instances must agree on, as hex strings and digests."""
    return {
        "head": g.head().hex(),
        "finalized_tip": g.finalized_tip().hex(),
        "finalized_blocks": int(g.finalized_flags().sum()),
        "finalized_chain_sha256": hashlib.sha256(g.finalized_chain().tobytes()).hexdigest(),
        "weights_sha256": hashlib.sha256(g.block_hashes().tobytes()
                                         + g.block_weights().astype("<u8").tobytes()).hexdigest(),
        "state_sha256": g.state_digest(),
    }


def _arrays_agree(graphs: list[BlockGraph]) -> bool:
    ref = graphs[0]
    return all(np.array_equal(getattr(g, name)(), getattr(ref, name)()) for g in graphs[1:] for name in _ARRAYS)


@dataclasses.dataclass
class DeterminismRun:
    """Outcome of :func:`run_three_validators`.

    ``sync_points[k]`` is True when all instances agreed (snapshots and full arrays) after
    segment k; ``final`` holds each instance's last snapshot; ``proof`` is the JSON record.
    """

    graphs: list[BlockGraph]
    sync_points: list[bool]
    final: list[dict]
    proof: dict

    @property
    def consensus(self) -> bool:
        return bool(self.proof["consensus_achieved"])


def run_three_validators(*, n_blocks: int = N_BLOCKS, n_validators: int = N_VALIDATORS,
                         n_epochs: int = N_EPOCHS, segments: int = SEGMENTS, seed: int = SEED,
                         on_sync: Callable[[list[BlockGraph]], None] | None = None) -> DeterminismRun:
    """Run the scenario of the module docstring; ``on_sync(graphs)`` is called at every sync point.

    Example: ``run_three_validators(n_blocks=1_000, n_epochs=30).consensus``.
    """
    hashes, parents, weights, vv, ve, vt = generate(seed, n_blocks, n_validators, n_epochs)
    rng = np.random.default_rng(7)
    styles = list(DELIVERY_STYLES)
    graphs = [BlockGraph(weights, bps=6667, genesis=hashes[0].tobytes()) for _ in styles]
    rngs = [np.random.default_rng(100 + k) for k in range(len(styles))]
    # segments of the message set: blocks and votes cut at random points
    block_cut = np.sort(rng.choice(np.arange(1, n_blocks), segments - 1, replace=False))
    vote_perm = rng.permutation(vv.size)
    vote_cut = np.sort(rng.choice(np.arange(1, vv.size), segments - 1, replace=False))
    b_segments = np.split(np.arange(n_blocks), block_cut)
    v_segments = np.split(vote_perm, vote_cut)
    sync_points = []
    for bs, vs in zip(b_segments, v_segments):
        for g, r, style in zip(graphs, rngs, styles):
            deliver(g, r, style, (hashes[bs], parents[bs]), (vv[vs], ve[vs], vt[vs]))
        snaps = [snapshot(g) for g in graphs]
        sync_points.append(all(s == snaps[0] for s in snaps) and _arrays_agree(graphs))
        if on_sync is not None:
            on_sync(graphs)
    final = [snapshot(g) for g in graphs]
    consensus = all(s == final[0] for s in final) and all(sync_points)
    proof = {
        "blocks": n_blocks,
        "validators": n_validators,
        "epochs": n_epochs,
        "votes": int(vv.size),
        "delivery_styles": styles,
        "sync_points_checked": len(sync_points),
        "sync_points_agreeing": int(sum(sync_points)),
        "equivocators": [int(v) for v in graphs[0].equivocators()],
        "instances": {f"validator_{k}_{style}": {
            "head": s["head"], "finalized_tip": s["finalized_tip"],
            "finalized_blocks": s["finalized_blocks"], "state_sha256": s["state_sha256"]}
            for k, (style, s) in enumerate(zip(styles, final))},
        "consensus_achieved": consensus,
    }
    return DeterminismRun(graphs, sync_points, final, proof)


def write_proof(proof: dict, path: str | Path) -> Path:
    """Write the proof as sorted, indented JSON (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(proof, indent=2, sort_keys=True) + "\n")
    return path
