"""The files ``bizra run`` writes, as frames: every input row with its verdict, the accepted
blocks with weights and finality, and the equivocation evidence.

    attestations.parquet   the input rows, in input order, plus signature_valid, counted and
                           reason (an Enum of the Reason values in code order)
    blocks.parquet         hash, parent, height, weight, finalized, finalized_at_epoch
                           (null where never finalized, and for genesis), is_head_chain
    equivocations.parquet  validator, epoch, id_a, id_b, target_a, target_b

Their bytes depend only on the inputs and parameters, never on the chunking or the number of
workers (the attestation rows are written in slices of a fixed size).

Example: ``attestations_frame(path, codes, sig_valid).sink_parquet("out/attestations.parquet")``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from engine.consensus.blockgraph import BlockGraph
from engine.model.attestation import binary_column
from engine.model.errors import Reason
from engine.pipeline.row_checks import CODE
from engine.tables.blocks import hash_rows

__all__ = ["REASONS", "REASON_DTYPE", "attestations_frame", "blocks_frame", "equivocations_frame"]

REASONS: tuple[Reason, ...] = Reason.in_code_order()
REASON_DTYPE = pl.Enum([r.value for r in REASONS])  # category i is the reason with code i
if [r.code for r in REASONS] != list(range(len(REASONS))):  # reason codes are the Enum's physical values
    raise RuntimeError("Reason codes must be 0..n-1 in code order (docs/design.md, 'Checkpoints')")


_WRITE_ROWS = 65536  # fixed, not chunk_rows: the output's bytes must not depend on the chunking


def attestations_frame(path: Path, codes: np.ndarray, sig_valid: np.ndarray) -> pl.LazyFrame:
    """The input rows plus signature_valid, counted and reason, as a lazy concatenation of
    slices: Polars streams it with memory bounded by a slice (one lazy frame with whole-column
    literals made it hold about three times the file)."""
    scan = pl.scan_parquet(path)

    def part(lo: int, hi: int) -> pl.LazyFrame:
        reason = pl.Series("reason", codes[lo:hi]).replace_strict(
            [r.code for r in REASONS], [r.value for r in REASONS], return_dtype=REASON_DTYPE)
        return scan.slice(lo, hi - lo).with_columns(
            pl.lit(pl.Series("signature_valid", sig_valid[lo:hi])),
            pl.lit(pl.Series("counted", codes[lo:hi] == CODE[Reason.OK])), pl.lit(reason))

    n = len(codes)
    return pl.concat([part(lo, min(lo + _WRITE_ROWS, n)) for lo in range(0, n, _WRITE_ROWS)] or [part(0, 0)])


def blocks_frame(graph: BlockGraph) -> pl.DataFrame:
    """blocks.parquet: every accepted block in canonical (height, hash) order."""
    hashes = graph.block_hashes()
    parent_idx = graph.parent_indices()
    parents = np.where((parent_idx >= 0)[:, None], hashes[np.maximum(parent_idx, 0)], 0).astype(np.uint8)
    on_head = np.zeros(len(hashes), bool)
    head = graph.head()
    if head is not None:
        i = int(np.flatnonzero(hash_rows(hashes) == hash_rows(np.frombuffer(head, np.uint8).reshape(1, 32)))[0])
        while i >= 0:  # once per block of the head chain, never per attestation row
            on_head[i] = True
            i = int(parent_idx[i])
    fin_at = graph.finalized_at_epochs()
    return pl.DataFrame([
        binary_column("hash", hashes), binary_column("parent", parents),
        pl.Series("height", graph.heights(), dtype=pl.UInt64),
        pl.Series("weight", graph.block_weights(), dtype=pl.UInt64),
        pl.Series("finalized", graph.finalized_flags(), dtype=pl.Boolean),
        pl.Series("finalized_at_epoch", fin_at, dtype=pl.Int64),  # null where never finalized (or genesis)
        pl.Series("is_head_chain", on_head, dtype=pl.Boolean),
    ]).with_columns(pl.when(pl.col("finalized_at_epoch") >= 0).then(pl.col("finalized_at_epoch"))
                    .alias("finalized_at_epoch"))


def equivocations_frame(graph: BlockGraph) -> pl.DataFrame:
    """equivocations.parquet: one row per equivocating (validator, epoch)."""
    ev = graph.equivocation_evidence()
    col = lambda name: np.frombuffer(b"".join(getattr(x, name) for x in ev), np.uint8).reshape(-1, 32)  # noqa: E731
    return pl.DataFrame([
        pl.Series("validator", [x.validator for x in ev], dtype=pl.UInt32),
        pl.Series("epoch", [x.epoch for x in ev], dtype=pl.UInt64),
        binary_column("id_a", col("id_a")), binary_column("id_b", col("id_b")),
        binary_column("target_a", col("target_a")), binary_column("target_b", col("target_b")),
    ])
