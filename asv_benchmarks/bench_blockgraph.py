"""asv: BlockGraph build, incremental votes, finality checks, a job-shaped run and a multi-epoch run.

Each suite also times ``np.sort`` of 1M int64 (``TimeSortYardstick``) so results can be read as
ratios on a shared, noisy machine (docs/design.md, "Tests and benchmarks"); the multi-epoch run
also reports its own ratio to ``np.sort`` of as many int64, both measured in the same process
(``track_ratio_to_sort``). Sizes are 10x below scripts/bench_blockgraph.py to keep an asv run
short; that script prints the full table.
"""
import time

import numpy as np

from engine.consensus.blockgraph import BlockGraph
from engine.synthetic import chain_with_forks, votes_near_main


class TimeSortYardstick:
    def setup(self):
        self.a = np.random.default_rng(0).integers(0, 2**62, 1_000_000)

    def time_np_sort_1m(self):
        np.sort(self.a)


class TimeBlockGraph:
    timeout = 120

    def setup(self):
        rng = np.random.default_rng(1)
        self.h, self.p, main = chain_with_forks(10_000, rng)
        self.v, self.e, t = votes_near_main(main, 100_000, 32, rng)
        self.t = self.h[t]
        self.w = rng.integers(1, 2**40, 100_000).astype(np.int64)
        self.g = self._build()
        self.v2 = rng.integers(0, 100_000, 10_000).astype(np.int64)
        self.t2 = self.h[main[-1 - rng.integers(0, 5, 10_000)]]
        self.final = self.g.finalized_tip()
        self.q = self.h[rng.integers(0, 10_000, 100_000)]
        self.g.is_finalized(self.final)

    def _build(self):
        g = BlockGraph(self.w)
        g.add_blocks(self.h, self.p)
        g.add_votes(self.v, self.e, self.t)
        g.head()
        g.finalized_tip()
        return g

    def time_build_head_finality(self):
        self._build()

    def time_incremental_10k_votes(self):
        self.g.add_votes(self.v2, np.full(10_000, 40, np.int64), self.t2)
        self.g.head()

    def time_is_finalized_scalar(self):
        self.g.is_finalized(self.final)

    def time_is_finalized_many_100k(self):
        self.g.is_finalized_many(self.q)


def _every_epoch_votes(seed, n_blocks, n_validators, n_epochs, weight_max):
    """A chain with forks, every validator voting every epoch near its main chain, and weights:
    (hashes, parents, validators, epochs, target hashes, weights, the generator for more)."""
    rng = np.random.default_rng(seed)
    h, p, main = chain_with_forks(n_blocks, rng)
    v, e, t = votes_near_main(main, n_validators, n_epochs, rng, every_epoch=True)
    w = rng.integers(1, weight_max, n_validators).astype(np.int64)
    return h, p, v, e, h[t], w, rng


class TimeJobShaped:
    timeout = 120

    def setup(self):
        self.h, self.p, self.v, self.e, self.t, self.w, _ = _every_epoch_votes(2, 10_000, 1_000, 300, 10**6)

    def time_300_epochs(self):
        g = BlockGraph(self.w)
        g.add_blocks(self.h, self.p)
        g.add_votes(self.v, self.e, self.t)
        g.head()


class TimeMultiEpoch:
    """64 epochs x 10K validators, every validator voting every epoch (640K votes, delivered in
    epoch order as a job reads them) over 2K blocks: build + head + finality."""

    timeout = 120

    def setup(self):
        self.h, self.p, self.v, self.e, self.t, self.w, rng = _every_epoch_votes(3, 2_000, 10_000, 64, 2**40)
        self.sort_in = rng.integers(0, 2**62, self.v.size)
        self._build()

    def _build(self):
        g = BlockGraph(self.w)
        g.add_blocks(self.h, self.p)
        g.add_votes(self.v, self.e, self.t)
        g.head()
        g.finalized_tip()

    def time_build_head_finality(self):
        self._build()

    def track_ratio_to_sort(self):
        """build + head + finality / np.sort of as many int64 (best of 5 each, alternating)."""
        best = [float("inf"), float("inf")]
        for _ in range(5):
            for i, fn in enumerate((self._build, lambda: np.sort(self.sort_in))):
                t = time.perf_counter()
                fn()
                best[i] = min(best[i], time.perf_counter() - t)
        return best[0] / best[1]

    track_ratio_to_sort.unit = "x"
