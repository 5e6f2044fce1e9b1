"""Shared fixtures for the codec, keys, libsodium and CLI tests (kept small: the suite is fast)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # before `pip install -e .`, tests still import the tree
    sys.path.insert(0, str(ROOT))

from engine.synthetic import GeneratedDataset, generate_dataset  # noqa: E402


@pytest.fixture(autouse=True)
def _clean_engine_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose backends explicitly; an operator's environment must not leak in."""
    for name in ("BIZRA_VERIFY_BACKEND", "POI_BATCH_VERIFY", "BIZRA_THREADS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GeneratedDataset]:
    """A generated dataset on disk with raised anomaly rates so every kind shows up."""
    out = tmp_path_factory.mktemp("dataset")
    g = generate_dataset(
        out, validators=24, blocks=80, attestations=3000, seed=11, threads=2, progress=False,
        bad_signature_rate=0.05, equivocation_rate=0.02, orphan_rate=0.02, key_mismatch_rate=0.02,
        unknown_validator_rate=0.01, duplicate_rate=0.01, malformed_rate=0.01, fork_rate=0.15,
    )
    return out, g


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(int(os.environ.get("BIZRA_TEST_SEED", "1234")))
