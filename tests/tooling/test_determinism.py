"""Three BlockGraph "validators" fed the same 10,000 blocks and their votes in different orders.

The scenario lives in engine/tooling/determinism.py (the determinism gate of ``bizra gates`` runs the
same code): a generated chain with forks (10,000 blocks), 100 validators voting over 300
epochs (some votes arrive before their target block, two validators equivocate). The messages
are cut into segments; every instance receives every segment, each in its own order and
chunking (in order / reversed in random chunks / shuffled with duplicates), so after each
segment all three have seen the same message *set*: those are the sync points. At every sync
point and at the end, head, finalized tip, finalized chain, all block weights and the state
digest must agree.

The run writes ``artifacts/wq_head_proof.json`` (git-ignored) with, per instance, the head, the
finalized tip, the number of finalized blocks and the SHA-256 state digest, and
``consensus_achieved`` computed by comparing them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.tooling.determinism import run_three_validators, snapshot, write_proof

ROOT = Path(__file__).resolve().parents[2]


def _assert_agree(graphs) -> None:
    """Checked here directly, not only through the run's own flags, at every sync point."""
    snaps = [snapshot(g) for g in graphs]
    assert all(s == snaps[0] for s in snaps)
    ref = graphs[0]
    for g in graphs[1:]:
        assert np.array_equal(g.block_hashes(), ref.block_hashes())
        assert np.array_equal(g.block_weights(), ref.block_weights())
        assert np.array_equal(g.finalized_chain(), ref.finalized_chain())


def test_three_instances_agree_and_write_proof():
    run = run_three_validators(on_sync=_assert_agree)
    write_proof(run.proof, ROOT / "artifacts" / "wq_head_proof.json")
    assert run.proof["sync_points_checked"] == 4 == run.proof["sync_points_agreeing"]
    assert run.consensus
    assert run.proof["equivocators"] == [3, 7]
    assert run.final[0]["finalized_blocks"] > 100  # finality really progressed along the chain
    assert not run.graphs[0].orphan_blocks()["hash"].shape[0]
    assert not run.graphs[0].orphan_votes()["target"].shape[0]
