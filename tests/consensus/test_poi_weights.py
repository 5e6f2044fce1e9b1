"""engine.consensus.poi_weights against Python-int arithmetic, isqrt edges, decimals, and the CLI handler."""
from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.consensus.poi_weights import (
    SCALE,
    PoiParams,
    isqrt_expr,
    poi_weights,
    to_fixed,
    weights_array,
)


def reference(rows, validators, prev, params, n, lo, hi):
    """rows: (validator, epoch, score, valid, body); literal recurrence on Python ints."""
    seen = set()
    per = {}
    for v, e, s, ok, body in rows:
        if not ok or body in seen:
            continue
        seen.add(body)
        per[(e, v)] = per.get((e, v), 0) + s
    impact = [prev.get(v, 0) for v in range(n)]
    for t in range(lo, hi + 1):
        impact = [params.lam * x // SCALE + per.get((t, v), 0) for v, x in enumerate(impact)]
    out = []
    for v in (range(n) if not validators else sorted(validators)):
        rep, stake = validators.get(v, (0, 0))
        w = (params.base + params.a * impact[v] // SCALE + params.b * rep // SCALE
             + params.c * math.isqrt(stake))
        out.append((v, impact[v], min(params.cap, w)))
    return out


row = st.tuples(st.integers(0, 4), st.integers(0, 12), st.integers(0, 1_000_000), st.booleans(),
                st.binary(min_size=1, max_size=1))


@settings(max_examples=60, deadline=None)
@given(st.lists(row, min_size=1, max_size=40),
       st.dictionaries(st.integers(0, 5), st.tuples(st.integers(0, 5 * SCALE),
                                                    st.integers(0, 2**62)), max_size=6),
       st.dictionaries(st.integers(0, 5), st.integers(0, 10**12), max_size=3),
       st.sampled_from([PoiParams(), PoiParams(lam=SCALE, cap=2**39), PoiParams(lam=0)]))
def test_matches_python_ints(rows, validators, prev, params):
    rows_bodies = [(v, e, s, ok, bytes([v, e]) + body) for v, e, s, ok, body in rows]
    att = pl.DataFrame({"validator_index": [r[0] for r in rows_bodies],
                        "epoch": [r[1] for r in rows_bodies],
                        "poi_score": [r[2] for r in rows_bodies],
                        "valid": [r[3] for r in rows_bodies],
                        "body": [r[4] for r in rows_bodies]})
    vdf = None if not validators else pl.DataFrame(
        {"index": list(validators), "reputation": [x[0] for x in validators.values()],
         "stake": [x[1] for x in validators.values()]},
        schema={"index": pl.Int64, "reputation": pl.Int64, "stake": pl.Int64})
    pdf = pl.DataFrame({"validator_index": list(prev), "impact": list(prev.values())},
                       schema={"validator_index": pl.Int64, "impact": pl.Int64})
    lo, hi = 0, 14  # trailing empty epochs decay too
    got = poi_weights(att, vdf, prev_impact=pdf, params=params, first_epoch=lo, last_epoch=hi)
    n = max([r[0] for r in rows if r[3]] + list(validators) + list(prev) + [-1]) + 1
    want = reference(rows_bodies, validators, prev, params, n, lo, hi)
    assert list(got.iter_rows()) == want


def test_isqrt_edges():
    xs = [0, 1, 2, 3, 4, 15, 16, 17, 2**52 - 1, 2**52, 2**53 + 1, (2**31 - 1) ** 2,
          (2**31 - 1) ** 2 - 1, (3037000499) ** 2, 3037000499**2 - 1, 2**62, 2**63 - 1]
    got = pl.DataFrame({"x": xs}).select(isqrt_expr(pl.col("x")))["x"].to_list()
    assert got == [math.isqrt(x) for x in xs]


def test_fixed_point_decimals():
    assert to_fixed("0.10") == 100_000 and to_fixed("10.0") == 10_000_000
    assert to_fixed("0.000001") == 1
    with pytest.raises(ValueError):
        to_fixed("0.0000001")
    with pytest.raises(ValueError):
        to_fixed("-1")


def test_defaults_and_cap():
    att = pl.DataFrame({"validator_index": [0, 1, 1], "epoch": [5, 5, 5],
                        "poi_score": [1_000_000, 1_000_000, 1_000_000]})
    w = poi_weights(att)
    # I_0 = 1.0 -> 0.10 + 1.00; I_1 = 2.0 -> 0.10 + 2.00
    assert w["weight"].to_list() == [1_100_000, 2_100_000]
    big = poi_weights(pl.DataFrame({"validator_index": [0], "epoch": [0],
                                    "poi_score": [1_000_000] * 1}).vstack(
        pl.DataFrame({"validator_index": [0] * 20, "epoch": [0] * 20,
                      "poi_score": [1_000_000] * 20})))
    assert big["weight"].to_list() == [10_000_000]
    assert list(weights_array(w)) == [1_100_000, 2_100_000]


