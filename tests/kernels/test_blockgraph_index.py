"""kernels.blockgraph_index against Python ints / bytes: key order and round trip, the hash table."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.consensus.messages import hash_keys as _keys, hashes_to_array, key_hashes as _rows
from kernels.blockgraph_index import argsort_keys, table_build_unique, table_capacity, table_empty, table_lookup_many
from tests.support.nojit import examples







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




def test_table_empty_has_table_capacity_slots():
    for n in (0, 1, 3, 4, 5, 1000, 2**20 + 1):
        t = table_empty(n)
        assert t.shape[0] == table_capacity(n) and (t == -1).all()
