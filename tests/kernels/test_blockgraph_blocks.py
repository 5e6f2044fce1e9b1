"""kernels.blockgraph_blocks: block messages resolved into the canonical parent-before-child order."""
from __future__ import annotations

import numpy as np
from tests.support import nojit  # noqa: F401  (this file runs uncompiled too: the kernel coverage gate)



def test_canonical_order_of_a_wide_level():
    """A level wider than the insertion-sort cut-off still comes out in (height, hash) order."""
    from engine.consensus.blockgraph import BlockGraph

    rng = np.random.default_rng(5)
    kids = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    kids[:, :8] = kids[:3, :8][rng.integers(0, 3, 300)]  # shared 8-byte prefixes
    kids[:, 0] |= 1
    kids = np.unique(kids, axis=0)
    genesis = np.full((1, 32), 7, np.uint8)
    g = BlockGraph(np.ones(1, np.int64))
    g.add_blocks(np.concatenate([genesis, kids[::-1]]),
                 np.concatenate([np.zeros((1, 32), np.uint8), np.repeat(genesis, len(kids), 0)]))
    got = [r.tobytes() for r in g.block_hashes()]
    assert got[0] == genesis.tobytes()
    assert got[1:] == sorted(k.tobytes() for k in kids)
    assert g.head() == max(got[1:])


