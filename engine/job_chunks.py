"""One chunk of ``bizra run``: the per-row checks of a slice of the attestations file, its
result record, and the checkpoint directory that keeps finished chunks across a crash.

A chunk is a pure function of (input files, chunk index, chunk size, verify backend), so it may
run in this process, in a Dask worker, or be read back from a checkpoint: the job cannot tell
the difference, which is what makes resumed and distributed runs byte-identical to a plain one.

Checkpoints live in ``OUT/.work/``: ``manifest.json`` (input hashes, parameters) and one
``chunk-NNNNNNNN.npz`` per finished chunk, each written to a temp name, fsynced and renamed, so
a ``kill -9`` leaves either a whole chunk file or none.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl

from engine.attestation import (BODY_SIZE, FIELD_NAMES, attestation_ids, binary_column, binary_to_array,
                                decode_bodies, fields_match_body)
from engine.errors import BizraError, InputError, Reason, first_line
from engine.verify import verify_many

__all__ = ["CODE", "VOTE", "Checkpoint", "ChunkResult", "JobInputError", "check_rows", "check_slice"]

CODE = {r: np.uint8(i) for i, r in enumerate(Reason)}
VOTE = np.uint8(255)  # passed every row check; its reason is decided after the last chunk
_MAX_EPOCH = np.uint64(2**63 - 1)  # BlockGraph rejects larger epochs; such a row is malformed
CHECKPOINT_FORMAT = 1


class JobInputError(InputError):
    """An input of ``bizra run`` cannot be used; one line naming the file and the problem."""


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

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **{k: getattr(self, k) for k in self._ARRAYS}, stats=self.stats())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def stats(self) -> np.ndarray:
        return np.array([self.verified, self.verify_s, self.read_s], np.float64)

    @classmethod
    def load(cls, path: Path) -> ChunkResult:
        with np.load(path) as z:
            verified, verify_s, read_s = z["stats"]
            return cls(**{k: z[k] for k in cls._ARRAYS}, verified=int(verified), verify_s=float(verify_s),
                       read_s=float(read_s))


def _fixed(col: pl.Series, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, width) uint8 with zeros where a row is null or not ``width`` bytes, and the ok mask."""
    ok = (col.bin.size() == width).fill_null(False).to_numpy()
    if ok.all():
        return binary_to_array(col, width), ok
    arr = np.zeros((len(col), width), np.uint8)
    if ok.any():
        arr[ok] = binary_to_array(col.filter(pl.Series(ok)), width)
    return arr, ok


def check_rows(df: pl.DataFrame, registered: np.ndarray, keys: np.ndarray, threads: int | None,
               backend: str | None) -> ChunkResult:
    """The row checks of one chunk, first failing check wins: malformed > unknown_validator >
    key_mismatch > bad_signature (signatures verified with all ``threads``)."""
    body, ok = _fixed(df["body"], BODY_SIZE)
    sig, sig_ok = _fixed(df["signature"], 64)
    pk, pk_ok = _fixed(df["public_key"], 32)
    widths_ok = ok & sig_ok & pk_ok
    fields = decode_bodies(body, strict=False)
    checked = df.select([c for c in df.columns if c in FIELD_NAMES]).with_columns(binary_column("body", body))
    malformed = ~(widths_ok & fields_match_body(checked)) | (fields["epoch"] > _MAX_EPOCH)
    vi = fields["validator_index"].astype(np.int64)
    known = vi < len(registered)
    safe = np.where(known, vi, 0)
    known &= registered[safe]
    key_ok = known & pk_ok & (pk == keys[safe]).all(axis=1)
    to_verify = np.flatnonzero(widths_ok & key_ok)
    sig_valid = np.zeros(len(df), bool)
    t0 = time.perf_counter()
    if len(to_verify):
        sig_valid[to_verify] = verify_many(body[to_verify], sig[to_verify], pk[to_verify],
                                           threads=threads, backend=backend)
    verify_s = time.perf_counter() - t0
    code = np.select([malformed, ~known, ~key_ok, ~sig_valid],
                     [CODE[Reason.MALFORMED], CODE[Reason.UNKNOWN_VALIDATOR], CODE[Reason.KEY_MISMATCH],
                      CODE[Reason.BAD_SIGNATURE]], VOTE).astype(np.uint8)
    vote = code == VOTE
    return ChunkResult(code, sig_valid, vi[vote], fields["epoch"][vote].astype(np.int64),
                       np.ascontiguousarray(fields["target"][vote]), attestation_ids(body[vote]),
                       verified=len(to_verify), verify_s=verify_s)


def check_slice(path: str | Path, lo: int, rows: int, registered: np.ndarray, keys: np.ndarray,
                threads: int | None, backend: str | None) -> ChunkResult:
    """Read rows ``lo .. lo+rows`` of the attestations file and check them (the unit of work a
    Dask worker runs; it reads its own slice, only the small key tables travel)."""
    t = time.perf_counter()
    try:
        df = pl.scan_parquet(path).slice(lo, rows).collect()
    except Exception as exc:  # polars raises several unrelated types for a damaged page
        raise JobInputError(f"{path}: corrupt Parquet file ({first_line(exc)})") from None
    read_s = time.perf_counter() - t
    result = check_rows(df, registered, keys, threads, backend)
    result.read_s = read_s
    return result


class Checkpoint:
    """``OUT/.work``: the finished chunks of one (inputs, parameters) combination.

    Creating one refuses a checkpoint made from other inputs or parameters (unless
    ``restart``, which drops it); ``clear`` removes it after the outputs are promoted.
    """

    def __init__(self, out: Path, manifest: dict, *, restart: bool) -> None:
        self.dir = out / ".work"
        self.manifest = {"format": CHECKPOINT_FORMAT, **manifest}
        if restart and self.dir.exists():
            shutil.rmtree(self.dir)
        mf = self.dir / "manifest.json"
        if mf.exists():
            try:
                old = json.loads(mf.read_text())
            except (OSError, ValueError):
                old = None
            if old != self.manifest:
                raise BizraError(f"{self.dir}: holds a checkpoint of {self._difference(old)}; "
                                 "refusing to resume (pass --restart to start over)")
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.dir / ".manifest.json.tmp"
            tmp.write_text(json.dumps(self.manifest, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, mf)

    def _difference(self, old: dict | None) -> str:
        if not isinstance(old, dict):
            return "an unreadable manifest"
        changed = [f"{name} changed" for name, sha in self.manifest["inputs"].items()
                   if old.get("inputs", {}).get(name) != sha]
        changed += [f"{k}={old.get('params', {}).get(k)} (now {v})" for k, v in self.manifest["params"].items()
                    if old.get("params", {}).get(k) != v]
        return "different input (" + (", ".join(changed) or "another engine version") + ")"

    def chunk_path(self, i: int) -> Path:
        return self.dir / f"chunk-{i:08d}.npz"

    def load(self, i: int) -> ChunkResult:
        """Chunk ``i``, which load_rows found readable (or this run saved)."""
        return ChunkResult.load(self.chunk_path(i))

    def load_rows(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(code, sig_valid, stats) of finished chunk ``i``, or None: missing, or damaged (the
        file is removed and the chunk simply redone). Every array is read, so a chunk that
        passes here can be loaded whole later."""
        path = self.chunk_path(i)
        try:
            r = ChunkResult.load(path)
            return r.code, r.sig_valid, r.stats()
        except FileNotFoundError:
            return None
        except Exception:  # torn or damaged: zipfile, numpy and the OS each raise their own types
            path.unlink(missing_ok=True)
            return None

    def save(self, i: int, result: ChunkResult) -> None:
        result.save(self.chunk_path(i))

    def temp(self, name: str) -> Path:
        """Where an output is written before it is renamed into OUT (inside .work, so a crash
        mid-write leaves nothing in OUT that looks like a result)."""
        return self.dir / f".{name}.tmp"

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
