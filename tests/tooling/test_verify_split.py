"""The same-run throughput helpers the notebook, the asv suite and scripts/bench_verify.py share:
rates of both verifiers on honest rows, the verify time split, and the validators x bad rows
stream."""
from __future__ import annotations

import pytest

from engine.synthetic import signed_columns, validator_columns
from engine.tooling.verify_split import (SPLIT_STEPS, best_seconds, numba_rate, sodium_rate, split_seconds,
                                         stream_rates, warm_validator_set)


def test_rates_and_split_on_honest_rows() -> None:
    cols = signed_columns(96, 12, seed=2)
    assert numba_rate(cols, repeat=1) > 0 and numba_rate(cols, repeat=1, cold_keys=True) > 0
    assert sodium_rate(cols, repeat=1) > 0
    split = split_seconds(cols, repeat=1)
    assert list(split) == list(SPLIT_STEPS) and all(s > 0 for s in split.values())


def test_best_seconds_runs_the_setup_untimed_before_each_call() -> None:
    calls = []
    assert best_seconds(lambda: calls.append("run"), 3, before=lambda: calls.append("setup")) >= 0
    assert calls == ["setup", "run"] * 3


def test_stream_rates_check_verdicts_on_both_sides() -> None:
    columns = validator_columns(40, 3, 128, seed=6)
    warm_validator_set(columns, 40)
    ours, theirs = stream_rates(columns, 40, "scattered", 0.05, seed=1)
    assert ours > 0 and theirs > 0
    with pytest.raises(ValueError, match="mode"):
        stream_rates(columns, 40, "nowhere", 0.05)
