"""The output frames of bizra run: the reason Enum in code order, every input row with its verdict,
blocks with weights, finality and the head chain, and the equivocation evidence."""
from __future__ import annotations

import numpy as np
import polars as pl

from engine.consensus.blockgraph import BlockGraph
from engine.model.errors import Reason
from engine.pipeline.outputs import REASON_DTYPE, REASONS, attestations_frame, blocks_frame, equivocations_frame
from engine.tables.parquet import write_parquet_atomic

G, A, B, C = b"G" * 32, b"A" * 32, b"B" * 32, b"C" * 32


def test_reason_enum_is_in_code_order() -> None:
    assert REASON_DTYPE.categories.to_list() == [r.value for r in REASONS]
    assert [r.code for r in REASONS] == list(range(len(Reason)))


def test_attestation_rows_keep_input_order_and_gain_their_verdict(tmp_path) -> None:
    n = 70_000  # more than one write slice
    src = write_parquet_atomic(pl.DataFrame({"x": np.arange(n)}), tmp_path / "in.parquet")
    codes = (np.arange(n) % len(Reason)).astype(np.uint8)
    valid = np.arange(n) % 3 == 0
    out = attestations_frame(src, codes, valid).collect()
    assert out["x"].to_list() == list(range(n))
    assert out["reason"].dtype == REASON_DTYPE
    assert out["reason"].to_physical().to_numpy().tolist() == codes.tolist()
    assert np.array_equal(out["counted"].to_numpy(), codes == Reason.OK.code)
    assert np.array_equal(out["signature_valid"].to_numpy(), valid)


def test_blocks_and_evidence_frames() -> None:
    g = BlockGraph(np.array([3, 3, 3], np.int64))
    g.add_blocks([G, A, B, C], [bytes(32), G, G, A])
    g.add_votes([0, 1, 2, 2], [1, 1, 1, 1], [C, C, C, B], ids=[b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32])
    blocks = blocks_frame(g)
    assert blocks["hash"].to_list() == [G, A, B, C]  # canonical (height, hash) order
    assert blocks["parent"].to_list() == [bytes(32), G, G, A]
    assert blocks["is_head_chain"].to_list() == [True, True, False, True]
    assert blocks["weight"].to_list() == [6, 6, 0, 6]  # validator 2 equivocated: excluded
    assert blocks["finalized_at_epoch"].to_list() == [None, 1, None, 1]
    ev = equivocations_frame(g)
    assert ev.rows() == [(2, 1, b"\x04" * 32, b"\x03" * 32, B, C)]
