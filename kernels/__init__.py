"""Numba-jitted pure kernels over NumPy arrays (field, scalar, point, SHA-512, MSM, BlockGraph).

Numba's on-disk cache (`cache=True`) is keyed by each function's own source file, so a
kernel that calls into an edited module can load stale machine code. Unless the user set
NUMBA_CACHE_DIR, the cache therefore lives in a folder named by a digest of every kernel
source: any edit here starts a fresh cache.
"""
import hashlib
import os
from pathlib import Path

import numba


def _source_digest() -> str:
    digest = hashlib.sha256(numba.__version__.encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = str(Path(__file__).parent / "__pycache__" / f"numba-{_source_digest()}")

# kernels.field8 picks its eight-lane field by the CPU (which Numba's cache already keys on),
# unless BIZRA_X8_FIELD overrides it: then the same functions, with the same signatures, hold
# other machine code, so an override gets a cache folder of its own.
_X8_FIELD = os.environ.get("BIZRA_X8_FIELD", "").strip().lower()
if _X8_FIELD:
    numba.config.CACHE_DIR = os.path.join(numba.config.CACHE_DIR, f"x8-{_X8_FIELD}")
