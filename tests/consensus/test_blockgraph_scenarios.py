"""BlockGraph scenarios as data: a list of operations with expectations, run by one interpreter.

Block names stand for hashes ``name.encode().ljust(32, b"\\0")``, so hash order is name order
("B" > "A" wins a weight tie). Operations:

- ("blocks", [(name, parent or None, height or -1), ...])
- ("votes", [(validator, epoch, target name), ...])
- ("expect", {...}): any of head, tip, finalized {name: epoch or None}, not_finalized [names],
  weights {name: int}, faults [(epoch, candidate, tip)], equivocators [...],
  orphan_blocks [names], orphan_votes [(v, e, name)], rejected_blocks {name: reason},
  rejected_votes [(v, e, name, reason)], evidence [(v, e, a, b)].
Every scenario is also checked against the reference at each "expect".
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.support import blockgraph_reference as ref
from engine.consensus.blockgraph import BlockGraph, GraphReason


def H(name: str) -> bytes:
    return name.encode().ljust(32, b"\0")


SCENARIOS = {
    "linear_chain_finalizes": dict(weights=[1, 1, 1], ops=[
        ("blocks", [("G", None, 0), ("A", "G", 1), ("B", "A", 2)]),
        ("votes", [(0, 1, "B"), (1, 1, "B"), (2, 1, "B")]),
        ("expect", dict(head="B", tip="B", finalized={"G": None, "A": 1, "B": 1},
                        weights={"G": 3, "A": 3, "B": 3})),
    ]),
    "exact_boundary_6667_qualifies": dict(weights=[6667, 3333], bps=6667, ops=[
        ("blocks", [("G", None, -1), ("A", "G", -1), ("B", "G", -1)]),
        ("votes", [(0, 3, "A"), (1, 3, "B")]),
        ("expect", dict(tip="A", finalized={"A": 3}, head="A")),
    ]),
    "exact_boundary_6668_does_not": dict(weights=[6667, 3333], bps=6668, ops=[
        ("blocks", [("G", None, -1), ("A", "G", -1), ("B", "G", -1)]),
        ("votes", [(0, 3, "A"), (1, 3, "B")]),
        ("expect", dict(tip="G", not_finalized=["A"], head="A")),
    ]),
    "exact_boundary_6666_of_10000": dict(weights=[6666, 3334], bps=6666, ops=[
        ("blocks", [("G", None, -1), ("A", "G", -1), ("B", "G", -1)]),
        ("votes", [(0, 1, "A"), (1, 1, "B")]),
        ("expect", dict(tip="A")),
    ]),
    "safety_fault_recorded_not_applied": dict(weights=[4, 3, 3], ops=[
        ("blocks", [("G", None, 0), ("A", "G", 1), ("B", "G", 1), ("C", "B", 2)]),
        ("votes", [(0, 1, "A"), (1, 1, "A"), (2, 1, "A")]),
        ("expect", dict(tip="A", finalized={"A": 1})),
        # epoch 2: everyone moves to the conflicting branch; B/C reach quorum after A is final
        ("votes", [(0, 2, "C"), (1, 2, "C"), (2, 2, "C")]),
        ("expect", dict(tip="A", finalized={"A": 1}, not_finalized=["B", "C"],
                        faults=[(2, "C", "A")], head="A", weights={"C": 10, "A": 0})),
    ]),
    "equivocation_excludes_from_epoch": dict(weights=[5, 3, 2], ops=[
        ("blocks", [("G", None, 0), ("A", "G", 1), ("B", "G", 1)]),
        ("votes", [(0, 1, "A"), (0, 2, "A"), (0, 2, "B"), (1, 2, "B"), (2, 2, "B")]),
        # epoch 1: 5/10 on A, no quorum; epoch 2: validator 0 excluded, total 5, B has 5
        ("expect", dict(equivocators=[0], evidence=[(0, 2, "A", "B")], tip="B",
                        finalized={"B": 2}, weights={"A": 0, "B": 5, "G": 5})),
    ]),
    "equivocation_before_quorum_epoch_counts_earlier": dict(weights=[5, 3, 2], ops=[
        ("blocks", [("G", None, 0), ("A", "G", 1), ("B", "G", 1)]),
        ("votes", [(0, 1, "A"), (1, 1, "A"), (0, 4, "A"), (0, 4, "B")]),
        ("expect", dict(tip="A", finalized={"A": 1}, equivocators=[0], weights={"A": 3})),
    ]),
    "orphan_vote_waits_then_counts": dict(weights=[1, 1, 1], ops=[
        ("blocks", [("G", None, 0)]),
        ("votes", [(0, 1, "A"), (1, 1, "A"), (2, 1, "A")]),
        ("expect", dict(tip="G", orphan_votes=[(0, 1, "A"), (1, 1, "A"), (2, 1, "A")])),
        ("blocks", [("A", "G", 1)]),
        ("expect", dict(tip="A", finalized={"A": 1}, orphan_votes=[])),
    ]),
    "orphan_vote_falls_back_to_known_latest": dict(weights=[1, 1, 1], ops=[
        ("blocks", [("G", None, 0), ("A", "G", 1)]),
        ("votes", [(0, 1, "A"), (0, 2, "X"), (1, 2, "A")]),
        ("expect", dict(weights={"A": 2}, orphan_votes=[(0, 2, "X")], tip="G")),
    ]),
    "orphan_block_waits_for_parent": dict(weights=[1], ops=[
        ("blocks", [("G", None, 0), ("C", "B", 2)]),
        ("expect", dict(orphan_blocks=["C"], head="G")),
        ("blocks", [("B", "G", 1)]),
        ("expect", dict(orphan_blocks=[], head="C")),
    ]),
    "rejections_have_named_reasons": dict(weights=[1], ops=[
        ("blocks", [("G", None, 0), ("A", "G", 1), ("A", "G", 1), ("W", "G", 5), ("Z", None, 0),
                    ("A", "W", -1), ("D", "A", 2), ("D", "G", 1)]),
        ("expect", dict(rejected_blocks={"W": "wrong_height", "Z": "second_genesis",
                                         "A": "duplicate_hash", "D": "duplicate_hash"},
                        head="D", weights={"A": 0, "D": 0})),
    ]),
    "hash_reuse_keeps_shallowest_version": dict(weights=[1], ops=[
        ("blocks", [("G", None, 0), ("A", "G", 1), ("B", "A", 2), ("B", "G", 1)]),
        ("expect", dict(rejected_blocks={"B": "duplicate_hash"}, weights={"A": 0})),
    ]),
    "weight_tie_goes_to_larger_hash": dict(weights=[1, 1], ops=[
        ("blocks", [("G", None, 0), ("A", "G", 1), ("B", "G", 1)]),
        ("votes", [(0, 1, "A"), (1, 1, "B")]),
        ("expect", dict(head="B", tip="G", weights={"A": 1, "B": 1, "G": 2})),
    ]),
    "no_votes_head_by_hash": dict(weights=[1], ops=[
        ("blocks", [("G", None, 0), ("A", "G", 1), ("B", "G", 1), ("C", "A", 2)]),
        ("expect", dict(head="B", tip="G")),
    ]),
    "unknown_validator_rejected": dict(weights=[1, 1], ops=[
        ("blocks", [("G", None, 0), ("A", "G", 1)]),
        ("votes", [(5, 1, "A"), (-1, 1, "A")]),
        ("expect", dict(rejected_votes=[(-1, 1, "A", "unknown_validator"),
                                        (5, 1, "A", "unknown_validator")],
                        weights={"A": 0}, tip="G")),
    ]),
    "latest_vote_moves_weight": dict(weights=[2, 1, 2], ops=[
        ("blocks", [("G", None, 0), ("A", "G", 1), ("B", "G", 1)]),
        ("votes", [(0, 1, "A"), (0, 3, "B"), (1, 2, "A")]),
        ("expect", dict(weights={"A": 1, "B": 2}, head="B", tip="G")),
    ]),
    "zero_total_no_candidate": dict(weights=[0, 0], ops=[
        ("blocks", [("G", None, 0), ("A", "G", 1)]),
        ("votes", [(0, 1, "A"), (1, 1, "A")]),
        ("expect", dict(tip="G", head="A")),
    ]),
}


def _check(g, weights, bps, msgs_b, msgs_v, want):
    got = ref.observe(g)
    assert got == ref.run(weights, bps, H("G"), msgs_b, msgs_v)
    names = lambda hs: sorted(h.rstrip(b"\0").decode() for h in hs)  # noqa: E731
    for key, val in want.items():
        if key in ("head", "tip"):
            assert got[key] == H(val), key
        elif key == "finalized":
            for name, epoch in val.items():
                assert g.is_finalized(H(name)) and g.finalized_at(H(name)) == epoch, name
        elif key == "not_finalized":
            assert not any(g.is_finalized(H(n)) for n in val)
        elif key == "weights":
            assert {n: g.weight(H(n)) for n in val} == val
        elif key == "faults":
            assert got["faults"] == [(e, H(c), H(t)) for e, c, t in val]
        elif key == "equivocators":
            assert got["equivocators"] == val
        elif key == "evidence":
            assert [(v, e, a, b) for v, e, a, b, _, _ in got["evidence"]] == \
                [(v, e, H(a), H(b)) for v, e, a, b in val]
        elif key == "orphan_blocks":
            assert names(h for h, _, _ in got["orphan_blocks"]) == sorted(val)
        elif key == "orphan_votes":
            assert sorted(got["orphan_votes"]) == sorted((v, e, H(n)) for v, e, n in val)
        elif key == "rejected_blocks":
            seen = {h.rstrip(b"\0").decode(): r for h, _, _, r in got["rejected_blocks"]}
            assert seen == val
            assert all(r in {x.value for x in GraphReason} for r in seen.values())
        elif key == "rejected_votes":
            assert sorted(got["rejected_votes"]) == sorted((v, e, H(n), r) for v, e, n, r in val)
        else:
            raise AssertionError(f"unknown expectation {key}")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name):
    sc = SCENARIOS[name]
    weights, bps = sc["weights"], sc.get("bps", 6667)
    g = BlockGraph(np.array(weights, np.int64), bps=bps)
    msgs_b, msgs_v = [], []
    for op, arg in sc["ops"]:
        if op == "blocks":
            rows = [(H(h), bytes(32) if p is None else H(p), ht) for h, p, ht in arg]
            msgs_b += rows
            g.add_blocks([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
        elif op == "votes":
            rows = [(v, e, H(t), bytes(32)) for v, e, t in arg]
            msgs_v += rows
            g.add_votes([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
        else:
            _check(g, weights, bps, msgs_b, msgs_v, arg)


def test_unknown_hash_queries():
    g = BlockGraph(np.array([1], np.int64))
    assert g.head() is None and g.finalized_tip() is None
    assert not g.is_finalized(H("nope")) and g.weight(H("nope")) == 0
    g.add_blocks([H("G")], [bytes(32)])
    assert g.is_finalized(H("G")) and g.finalized_at(H("G")) is None
    assert not g.is_finalized(H("nope")) and g.finalized_at(H("nope")) is None
    assert list(g.is_finalized_many([H("G"), H("nope")])) == [True, False]


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError):
        BlockGraph(np.array([1], np.int64), bps=5000)
    with pytest.raises(ValueError):
        BlockGraph(np.array([-1], np.int64))
    with pytest.raises(ValueError):
        BlockGraph(np.array([2**63, 2**63], np.uint64))
    g = BlockGraph(np.array([1], np.int64))
    with pytest.raises(ValueError):
        g.add_blocks([b"short"], [bytes(32)])


def test_u64_epochs_above_int64_are_rejected():
    g = BlockGraph(np.array([1], np.int64))
    g.add_blocks([H("G")], [bytes(32)])
    g.add_votes(np.array([0], np.int64), np.array([2**63], np.uint64), [H("G")])
    assert list(g.rejected_votes()["reason"]) == ["epoch_out_of_range"]


def test_full_weight_range_near_2_64():
    """Totals just below 2^64 (10^7 validators x 2^40 scale) stay exact."""
    w = [(2**64 - 1) // 3] * 3
    g = BlockGraph(np.array(w, np.uint64), bps=6667)
    g.add_blocks([H("G"), H("A")], [bytes(32), H("G")])
    g.add_votes([0, 1], [1, 1], [H("A"), H("A")])
    assert g.weight(H("A")) == 2 * w[0] and g.weight(H("G")) == 2 * w[0]
    assert g.is_finalized(H("A")) == (2 * w[0] * 10000 >= 3 * w[0] * 6667)
