"""Chain parameters: the epoch clock and the ranges the BlockGraph can hold."""
from __future__ import annotations

import numpy as np

from engine.model.chain import EPOCH_US, GENESIS_TIME_US, MAX_EPOCH, MAX_HEIGHT, MAX_VALIDATOR_INDEX, epoch_at


def test_epoch_clock() -> None:
    assert epoch_at(0) == 0 and epoch_at(GENESIS_TIME_US - 1) == 0  # before genesis: epoch 0
    assert epoch_at(GENESIS_TIME_US) == 0 and epoch_at(GENESIS_TIME_US + EPOCH_US - 1) == 0
    assert epoch_at(GENESIS_TIME_US + 3 * EPOCH_US) == 3
    assert EPOCH_US == 32 * 12 * 1_000_000  # 32 slots of 12 s


def test_ranges_fit_the_blockgraph_arrays() -> None:
    assert MAX_EPOCH == MAX_HEIGHT == np.iinfo(np.int64).max  # u64 on the wire, int64 in the graph
    assert MAX_VALIDATOR_INDEX == 2**24 - 1
