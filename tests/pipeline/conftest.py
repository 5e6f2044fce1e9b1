"""Fixtures of the batch-pipeline tests: one generated dataset and its reference run, shared by
the checkpoint (resume) and cluster tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.pipeline.job import run_job
from engine.synthetic import generate_dataset

CHUNK = 100  # rows per chunk: many chunks from a small dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("resume-data")
    generate_dataset(out, validators=60, blocks=80, attestations=12_000, seed=11, threads=2, progress=False,
                     equivocation_rate=0.003, malformed_rate=0.005)
    return out


@pytest.fixture(scope="module")
def reference(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("resume-ref")
    run_job(dataset, out, threads=2, chunk_rows=CHUNK, quiet=True)
    return out


@pytest.fixture(scope="module")
def other_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another dataset of the same shape (same row count, so the same chunks): what a leftover
    checkpoint of ``dataset`` must never be mistaken for."""
    out = tmp_path_factory.mktemp("other-data")
    generate_dataset(out, validators=60, blocks=80, attestations=12_000, seed=12, threads=2, progress=False,
                     equivocation_rate=0.003, malformed_rate=0.005)
    return out


@pytest.fixture(scope="module")
def other_reference(other_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("other-ref")
    run_job(other_dataset, out, threads=2, chunk_rows=CHUNK, quiet=True)
    return out
