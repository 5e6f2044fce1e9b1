"""The vote-level reasons of ``bizra run``: what becomes of each row that passed the row checks,
once every vote is in the BlockGraph. First match wins:

    duplicate      the same body (id) was an earlier vote row (by body, never by signature:
                   ZIP-215 signatures are malleable; an earlier row with the same body that
                   failed a row check does not make this one a duplicate)
    equivocation   the validator is excluded from epoch X (BlockGraph.exclusion_epochs) and the
                   vote's epoch is >= X: both rows of the evidence pair and everything the
                   validator signed later
    orphan_target  the target is not an accepted block (never arrived, or waits for a parent)
    superseded     anything else that is not the validator's counted vote in the final view: an
                   older epoch, a later row repeating the counted (epoch, target) with another
                   body, or a vote of an equivocator before its exclusion epoch (counted in the
                   views before X, not in the final one)
    ok             the one row per counted validator carrying its latest vote (the first row in
                   input order among equal ones)

Example::

    votes = feed_votes(graph, checkpoint, chunks, n_votes)
    codes[is_vote] = vote_reasons(graph, votes)
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.consensus.blockgraph import BlockGraph
from engine.model.errors import Reason
from engine.pipeline.checkpoint import Checkpoint
from engine.pipeline.row_checks import CODE
from engine.tables.blocks import hash_rows

__all__ = ["VoteRows", "feed_votes", "vote_reasons"]


class VoteRows(NamedTuple):
    """What the vote-level reasons need of each vote row, in input order."""

    validator: np.ndarray  # (k,) int64
    epoch: np.ndarray      # (k,) int64
    known: np.ndarray      # (k,) bool: the target is an accepted block
    first: np.ndarray      # (k,) bool: the first vote row with its body (id)


def feed_votes(graph: BlockGraph, checkpoint: Checkpoint, chunks: int, votes: int) -> VoteRows:
    """Add every vote row to the graph, one checkpointed chunk at a time, and return what the
    vote-level reasons need.

    The graph gets the repeats of a body too: they are the same (validator, epoch, target, id)
    vote, which the graph counts once. Memory stays near 17 bytes per vote here plus the
    graph's own columns, instead of a second copy of every target and id.
    """
    blocks = np.sort(hash_rows(graph.block_hashes()))
    v = np.empty(votes, np.int64)
    e = np.empty(votes, np.int64)
    known = np.zeros(votes, bool)
    prefix = np.empty(votes, np.uint64)  # the first 8 bytes of each id: exact duplicates are found below
    starts = np.zeros(chunks + 1, np.int64)
    for i in range(chunks):  # once per chunk
        r = checkpoint.load(i)
        k = len(r.validator)
        starts[i + 1] = starts[i] + k
        lo = starts[i]
        v[lo:lo + k], e[lo:lo + k] = r.validator, r.epoch
        prefix[lo:lo + k] = r.id[:, :8].copy().view(np.uint64).reshape(-1)
        if len(blocks) and k:
            t = hash_rows(r.target)
            known[lo:lo + k] = blocks[np.minimum(np.searchsorted(blocks, t), len(blocks) - 1)] == t
        graph.add_votes(r.validator, r.epoch, r.target, ids=r.id)
    return VoteRows(v, e, known, _first_of_each_id(prefix, checkpoint, starts))


def _first_of_each_id(prefix: np.ndarray, checkpoint: Checkpoint, starts: np.ndarray) -> np.ndarray:
    """True for the first vote row of each distinct id. Rows that share an 8-byte prefix are
    few (the repeats, plus chance collisions at about n^2 / 2^65); only their full ids are
    read back from the checkpoint files and compared."""
    first = np.ones(len(prefix), bool)
    order = np.argsort(prefix, kind="stable")
    same = prefix[order][1:] == prefix[order][:-1]
    shared = np.zeros(len(prefix), bool)
    shared[order[1:][same]] = shared[order[:-1][same]] = True
    rows = np.flatnonzero(shared)  # ascending: input order
    if len(rows):
        chunk_of = np.searchsorted(starts, rows, side="right") - 1
        ids = np.empty((len(rows), 32), np.uint8)
        for i in np.unique(chunk_of):  # once per chunk holding a shared prefix
            at = chunk_of == i
            ids[at] = checkpoint.load(int(i)).id[rows[at] - starts[i]]
        seen = np.zeros(len(rows), bool)
        seen[np.unique(hash_rows(ids), return_index=True)[1]] = True  # first occurrence, in row order
        first[rows] = seen
    return first


def vote_reasons(graph: BlockGraph, rows: VoteRows) -> np.ndarray:
    """Reason codes (uint8) of the vote rows, in input order; see the module docstring."""
    v, e, known, first = rows
    n = len(v)
    excl = graph.exclusion_epochs()
    x = excl[v] if n else np.zeros(0, np.int64)
    equiv = (x >= 0) & (e >= x)
    live = first & ~equiv & known & (x < 0)
    del x
    # Latest epoch per validator, first row in input order among equals: sort by
    # (validator, -epoch, row) and take the head of each validator's run.
    at = np.flatnonzero(live)
    order = at[np.lexsort((at, -e[at], v[at]))]
    head = np.ones(len(order), bool)
    head[1:] = v[order][1:] != v[order][:-1]
    ok = np.zeros(n, bool)
    ok[order[head]] = True
    return np.select([~first, equiv, ~known, ~ok],
                     [CODE[Reason.DUPLICATE], CODE[Reason.EQUIVOCATION], CODE[Reason.ORPHAN_TARGET],
                      CODE[Reason.SUPERSEDED]], CODE[Reason.OK]).astype(np.uint8)
