"""Vote-level reasons, first match wins: duplicate > equivocation > orphan_target > superseded >
ok, decided once every vote of the job is in the BlockGraph (read back from the checkpoint)."""
from __future__ import annotations

import numpy as np

from engine.consensus.blockgraph import BlockGraph
from engine.model.errors import Reason
from engine.pipeline.checkpoint import Checkpoint
from engine.pipeline.chunks import ChunkResult
from engine.pipeline.vote_reasons import feed_votes, vote_reasons

G, A, B, X = b"G" * 32, b"A" * 32, b"B" * 32, b"X" * 32  # X is never a block


def _chunk(rows) -> ChunkResult:
    v, e, t, i = zip(*rows)
    n = len(rows)
    as_rows = lambda xs: np.frombuffer(b"".join(xs), np.uint8).reshape(n, 32)  # noqa: E731
    return ChunkResult(np.full(n, 255, np.uint8), np.ones(n, bool), np.array(v, np.int64), np.array(e, np.int64),
                       as_rows(t), as_rows(i))


def test_each_reason_in_order(tmp_path) -> None:
    ids = [bytes([k]) * 32 for k in range(1, 9)]
    chunks = [
        _chunk([(0, 1, A, ids[0]), (0, 2, B, ids[1]),      # validator 0: epoch 1 superseded by epoch 2
                (1, 1, A, ids[2]), (1, 1, A, ids[2])]),    # validator 1: the same body twice
        _chunk([(2, 1, A, ids[3]), (2, 1, B, ids[4]),      # validator 2 equivocates in epoch 1
                (2, 3, B, ids[5]),                         # ... and everything it signs later
                (3, 1, X, ids[6]), (3, 0, A, ids[7])]),    # validator 3: an orphan target, an older vote
    ]
    ckpt = Checkpoint(tmp_path, {"inputs": {}, "params": {}}, restart=False)
    for i, c in enumerate(chunks):
        ckpt.save(i, c)
    g = BlockGraph(np.ones(4, np.int64))
    g.add_blocks([G, A, B], [bytes(32), G, G])
    votes = feed_votes(g, ckpt, len(chunks), 9)
    assert votes.known.tolist() == [True] * 7 + [False, True]
    assert votes.first.tolist() == [True, True, True, False, True, True, True, True, True]
    got = [Reason.in_code_order()[c].value for c in vote_reasons(g, votes)]
    assert got == ["superseded", "ok", "ok", "duplicate", "equivocation", "equivocation", "equivocation",
                   "orphan_target", "ok"]
