"""``OUT/.work``: the checkpoint of a ``bizra run``, so a crash or ``kill -9`` loses no finished
chunk, and never lends one run's chunks to another.

Layout: ``manifest.json`` (format, SHA-256 of each input file, row count, engine version and
the parameters that change results) and one ``chunk-NNNNNNNN.npz`` per finished chunk
(engine.pipeline.chunks.ChunkResult: row codes as engine.model.errors.Reason codes, 255 for a
vote; signature_valid; the vote columns; and ``manifest``, the SHA-256 of the manifest it was
made under). Each file is written to a temp name, fsynced and renamed, so a crash leaves a
whole file or none. The format is described in docs/design.md, section "Checkpoints".

Chunks prove they belong: a chunk whose ``manifest`` digest is not the current manifest's is
deleted and redone, never reused, and a ``.work`` without a manifest is dropped whole (its
chunks cannot prove anything). Dropping is atomic: ``.work`` is renamed to ``.work.old`` (the
manifest goes with it in one step), then deleted; a ``.work.old`` left by a crash is deleted
by the next run. The caller holds OUT's lock (engine.pipeline.out_lock) throughout.

Example::

    ckpt = Checkpoint(Path("out"), {"inputs": {...}, "rows": n, "bizra": "0.1.0", "params": {...}},
                      restart=False)
    ckpt.load_rows(0)     # None until chunk 0 was saved
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from engine.model.errors import BizraError
from engine.pipeline.chunks import ChunkResult

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "manifest_digest"]

CHECKPOINT_FORMAT = 2  # 2: chunk files carry their manifest's digest


def manifest_digest(manifest: dict) -> bytes:
    """SHA-256 of the manifest's canonical JSON (sorted keys, no spaces): what each chunk carries.

    Example: ``len(manifest_digest({"format": 2})) == 32``.
    """
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).digest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Checkpoint:
    """``OUT/.work``: the finished chunks of one (inputs, parameters) combination.

    Creating one refuses a checkpoint made from other inputs or parameters (unless
    ``restart``, which drops it); ``clear`` removes it after the outputs are promoted.
    """

    def __init__(self, out: Path, manifest: dict, *, restart: bool) -> None:
        self.out = out
        self.dir = out / ".work"
        self.manifest = {"format": CHECKPOINT_FORMAT, **manifest}
        self.digest = manifest_digest(self.manifest)
        self._drop(out / ".work.old")  # a clear that a crash interrupted
        if restart:
            self.clear()
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
            self.clear()  # chunks without a manifest cannot prove what they were made from
            self.dir.mkdir(parents=True)
            tmp = self.dir / ".manifest.json.tmp"
            try:
                with open(tmp, "w") as f:
                    f.write(json.dumps(self.manifest, indent=2, sort_keys=True) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, mf)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            _fsync_dir(self.dir)

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
        """Chunk ``i``, which load_rows found readable and ours (or this run saved)."""
        return ChunkResult.load(self.chunk_path(i), self.digest)

    def load_rows(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(code, sig_valid, stats) of finished chunk ``i``, or None: missing, damaged, or made
        under another manifest (the file is removed and the chunk simply redone). Every array is
        read, so a chunk that passes here can be loaded whole later."""
        path = self.chunk_path(i)
        try:
            r = ChunkResult.load(path, self.digest)
            return r.code, r.sig_valid, r.stats()
        except FileNotFoundError:
            return None
        except Exception:  # ForeignChunk, or torn or damaged: zipfile, numpy and the OS raise their own types
            path.unlink(missing_ok=True)
            return None

    def save(self, i: int, result: ChunkResult) -> None:
        result.save(self.chunk_path(i), self.digest)

    def temp(self, name: str) -> Path:
        """Where an output is written before it is renamed into OUT (inside .work, so a crash
        mid-write leaves nothing in OUT that looks like a result)."""
        return self.dir / f".{name}.tmp"

    def clear(self) -> None:
        """Remove ``.work`` atomically: rename it (manifest and chunks in one step), then delete."""
        if not self.dir.exists():
            return
        old = self.out / ".work.old"
        self._drop(old)
        os.rename(self.dir, old)
        _fsync_dir(self.out)
        self._drop(old)

    @staticmethod
    def _drop(path: Path) -> None:
        if path.exists():
            shutil.rmtree(path)
