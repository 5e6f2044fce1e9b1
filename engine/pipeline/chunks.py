"""One chunk of ``bizra run``: the row checks (engine.pipeline.row_checks) over a slice of the
attestations file, and the record a chunk leaves in its checkpoint file.

A chunk is a pure function of (input files, chunk index, chunk size, verify backend), so it may
run in this process, in a Dask worker, or be read back from a checkpoint
(engine.pipeline.checkpoint): the job cannot tell the difference, which is what makes resumed
and distributed runs byte-identical to a plain one.

Example: ``r = check_slice("data/attestations.parquet", 0, 65536, table, threads=2)``.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import polars as pl

from engine.model.attestation import attestation_ids
from engine.model.errors import JobInputError, first_line
from engine.pipeline.row_checks import VOTE, check_rows
from engine.tables.attestations import attestation_columns
from engine.tables.validators import ValidatorTable

__all__ = ["ChunkResult", "ForeignChunk", "check_frame", "check_slice"]


class ForeignChunk(ValueError):
    """A chunk file that does not carry the digest of the manifest it is read under."""


@dataclasses.dataclass
class ChunkResult:
    """Row codes (a Reason code, or VOTE) and signature_valid for every row of the chunk, the
    vote columns of its VOTE rows (in row order), and the verify work it did."""

    code: np.ndarray        # (n,) uint8
    sig_valid: np.ndarray   # (n,) bool
    validator: np.ndarray   # (k,) int64
    epoch: np.ndarray       # (k,) int64
    target: np.ndarray      # (k, 32) uint8
    id: np.ndarray          # (k, 32) uint8, SHA-256 of the body
    verified: int = 0
    verify_s: float = 0.0
    read_s: float = 0.0

    _ARRAYS = ("code", "sig_valid", "validator", "epoch", "target", "id")

    def save(self, path: Path, manifest: bytes = b"") -> None:
        """Write to a temp name beside ``path``, fsync, rename. ``manifest``: the digest of the
        checkpoint manifest this chunk belongs to, stored in the file (engine.pipeline.checkpoint).
        A failed write leaves no temp file."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **{k: getattr(self, k) for k in self._ARRAYS}, stats=self.stats(),
                         manifest=np.frombuffer(manifest, np.uint8))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def stats(self) -> np.ndarray:
        return np.array([self.verified, self.verify_s, self.read_s], np.float64)

    @classmethod
    def load(cls, path: Path, manifest: bytes | None = None) -> ChunkResult:
        """The chunk in ``path``; ``ForeignChunk`` when ``manifest`` is given and the file was
        made under another manifest (or carries none)."""
        with np.load(path) as z:
            if manifest is not None and ("manifest" not in z.files or z["manifest"].tobytes() != manifest):
                raise ForeignChunk(f"{path}: made under another checkpoint manifest")
            verified, verify_s, read_s = z["stats"]
            return cls(**{k: z[k] for k in cls._ARRAYS}, verified=int(verified), verify_s=float(verify_s),
                       read_s=float(read_s))


def check_frame(df: pl.DataFrame, validators: ValidatorTable, *, threads: int | None = None,
                backend: str | None = None) -> ChunkResult:
    """The row checks of one chunk's rows and the vote columns of the rows that pass them."""
    cols = attestation_columns(df)
    checks = check_rows(cols, validators, threads=threads, backend=backend)
    vote = checks.code == VOTE
    return ChunkResult(checks.code, checks.sig_valid, checks.validator[vote],
                       checks.fields["epoch"][vote].astype(np.int64),
                       np.ascontiguousarray(checks.fields["target"][vote]), attestation_ids(cols.body[vote]),
                       verified=checks.verified, verify_s=checks.verify_s)


def check_slice(path: str | Path, lo: int, rows: int, validators: ValidatorTable, *, threads: int | None = None,
                backend: str | None = None) -> ChunkResult:
    """Read rows ``lo .. lo+rows`` of the attestations file and check them (the unit of work a
    Dask worker runs; it reads its own slice, only the small validator table travels)."""
    t = time.perf_counter()
    try:
        df = pl.scan_parquet(path).slice(lo, rows).collect()
    except Exception as exc:  # polars raises several unrelated types for a damaged page
        raise JobInputError(f"{path}: corrupt Parquet file ({first_line(exc)})") from None
    read_s = time.perf_counter() - t
    result = check_frame(df, validators, threads=threads, backend=backend)
    result.read_s = read_s
    return result
