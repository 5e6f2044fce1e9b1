"""Chain parameters every layer agrees on: the network id, the epoch clock, and the ranges the
BlockGraph can hold.

The BlockGraph keeps epochs, heights and validator indices as signed 64-bit (epochs, heights)
and dense arrays indexed by validator (validators), so the wire values above these limits are
refused where data enters (a malformed row, an input error), never wrapped.

Example: ``epoch_at(GENESIS_TIME_US + 3 * EPOCH_US) == 3``.
"""
from __future__ import annotations

__all__ = ["CHAIN_ID", "EPOCH_US", "GENESIS_TIME_US", "MAX_EPOCH", "MAX_HEIGHT", "MAX_VALIDATOR_INDEX",
           "epoch_at"]

CHAIN_ID = 1
GENESIS_TIME_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
EPOCH_US = 384_000_000  # 32 slots of 12 s
# Epochs and heights are u64 on the wire and int64 in the BlockGraph.
MAX_EPOCH = 2**63 - 1
MAX_HEIGHT = 2**63 - 1
# Validator tables are dense arrays indexed by validator index: an index this large would ask
# for hundreds of MB per table, so a validator file holding one is refused.
MAX_VALIDATOR_INDEX = (1 << 24) - 1


def epoch_at(now_us: int) -> int:
    """The epoch of a wall-clock time in microseconds since the Unix epoch (0 before genesis)."""
    return max(0, (now_us - GENESIS_TIME_US) // EPOCH_US)
