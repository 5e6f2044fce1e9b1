"""The small BlockGraph kernels against Python ints / bytes: quorum threshold, key order, table."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from engine.blockgraph import _keys, _rows, hashes_to_array
from kernels.blockgraph_finality import quorum_threshold
from kernels.blockgraph_index import argsort_keys, table_build_unique, table_lookup_many
from nojit import examples

U64_MAX = 2**64 - 1


@njit(cache=True)
def _thresholds(totals, bps):
    out = np.empty(totals.shape[0], np.uint64)
    for i in range(totals.shape[0]):
        out[i] = quorum_threshold(totals[i], bps)
    return out


def _python_threshold(total, bps):
    """Smallest w with w * 10000 >= total * bps, on Python ints."""
    return -((-total * bps) // 10000)


EDGE_TOTALS = [0, 1, 2, 9999, 10000, 10001, 2**40, 10**7 * 2**40, 2**63 - 1, 2**63, 2**64 - 2,
               U64_MAX, U64_MAX - 9999, 3 * ((U64_MAX) // 3)]


def test_threshold_edges():
    for bps in (5001, 6666, 6667, 6668, 8000, 9999, 10000):
        got = _thresholds(np.array(EDGE_TOTALS, np.uint64), bps)
        for t, g in zip(EDGE_TOTALS, got):
            want = _python_threshold(t, bps)
            assert int(g) == want, (t, bps)
            # the defining property at the boundary
            assert want * 10000 >= t * bps and (want == 0 or (want - 1) * 10000 < t * bps)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.integers(0, U64_MAX), min_size=1, max_size=50), st.integers(5001, 10000))
def test_threshold_random(totals, bps):
    got = _thresholds(np.array(totals, np.uint64), bps)
    assert [int(x) for x in got] == [_python_threshold(t, bps) for t in totals]


hash_lists = st.lists(
    st.tuples(st.sampled_from([bytes(8), b"\xff" * 8, b"prefix!!"]),
              st.binary(min_size=24, max_size=24)).map(lambda t: t[0] + t[1]),
    max_size=40)


@settings(max_examples=examples(100), deadline=None)
@given(hash_lists)
def test_key_order_and_roundtrip(hashes):
    rows = hashes_to_array(hashes) if hashes else np.zeros((0, 32), np.uint8)
    keys = _keys(rows)
    assert _rows(keys).tobytes() == rows.tobytes()
    order = argsort_keys(keys, np.arange(len(hashes), dtype=np.int64))
    assert [hashes[i] for i in order] == sorted(hashes)


@settings(max_examples=examples(100), deadline=None)
@given(hash_lists, hash_lists)
def test_table_matches_dict(stored, queries):
    rows = hashes_to_array(stored) if stored else np.zeros((0, 32), np.uint8)
    table, rep, inv = table_build_unique(_keys(rows))
    distinct = list(dict.fromkeys(stored))
    assert [stored[r] for r in rep] == distinct
    assert [distinct[i] for i in inv] == stored
    q = stored + queries
    if q:
        found = table_lookup_many(table, _keys(rows), _keys(hashes_to_array(q)))
        assert [(stored[f] if f >= 0 else None) for f in found] == \
            [(h if h in set(stored) else None) for h in q]


def test_canonical_order_of_a_wide_level():
    """A level wider than the insertion-sort cut-off still comes out in (height, hash) order."""
    from engine.blockgraph import BlockGraph

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
