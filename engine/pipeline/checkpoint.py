"""``OUT/.work``: the checkpoint of a ``bizra run``, so a crash or ``kill -9`` loses no finished
chunk.

Layout: ``manifest.json`` (format, SHA-256 of each input file, row count, engine version and
the parameters that change results) and one ``chunk-NNNNNNNN.npz`` per finished chunk
(engine.pipeline.chunks.ChunkResult: row codes as engine.model.errors.Reason codes, 255 for a
vote; signature_valid; the vote columns). Each file is written to a temp name, fsynced and
renamed, so a crash leaves a whole file or none. The format is described in docs/design.md,
section "Checkpoints".

Example::

    ckpt = Checkpoint(Path("out"), {"inputs": {...}, "rows": n, "bizra": "0.1.0", "params": {...}},
                      restart=False)
    ckpt.load_rows(0)     # None until chunk 0 was saved
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from engine.model.errors import BizraError
from engine.pipeline.chunks import ChunkResult

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint"]

CHECKPOINT_FORMAT = 1


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
