"""Validator keys: generation, secret key files, signing columns, and key admission.

Secret-key operations go through libsodium (PyNaCl) only, never Numba code, and secret bytes
are never printed or logged (docs/design.md, "What bizra is").  Seeds derived from a user ``--seed`` with
SHA-256 are deterministic test data: anyone who knows the seed knows every key.  Use them for
generated datasets and tests, never for real validators.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.signing
import nacl.utils
import numpy as np

from engine.verification import sodium_backend
from engine.model.errors import InputError, KeyAdmissionError, KeyReason
from engine.verification.api import resolve_threads

__all__ = [
    "SECRET_FILE_MAGIC",
    "admission_reasons",
    "check_admissible",
    "derive_seeds",
    "keypairs_from_seeds",
    "random_seeds",
    "read_secret_keys",
    "require_admissible",
    "sign_many",
    "write_secret_keys",
]

SEED_SIZE = 32
SECRET_FILE_MAGIC = b"BIZRAKEY"  # then u32 count, then count * 32-byte seeds, index order
_P = 2**255 - 19
# Encodings of the 8 points of order dividing 8 with y < p: libsodium's blocklist, plus the two
# points with x = 0 (the identity, y = 1, and the point of order 2, y = p - 1) written with the
# sign bit set, which decode to the same points ("negative zero"): small order, whatever the bit.
_SMALL_ORDER = frozenset(
    bytes.fromhex(h)
    for h in (
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "0100000000000000000000000000000000000000000000000000000000000080",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    )
)
_BASEPOINT = bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666")


def derive_seeds(seed: int | bytes | str, n: int, label: str = "validator") -> np.ndarray:
    """(n, 32) uint8 deterministic seeds: SHA-256("bizra-test-key/v1" | label | seed | i).

    For test data only (see module docstring).  Example: ``derive_seeds(7, 3).shape == (3, 32)``.
    """
    seed_bytes = str(seed).encode() if not isinstance(seed, bytes) else seed
    prefix = b"bizra-test-key/v1\0" + label.encode() + b"\0" + seed_bytes + b"\0"
    raw = b"".join(hashlib.sha256(prefix + struct.pack("<Q", i)).digest() for i in range(n))
    return np.frombuffer(raw, np.uint8).reshape(n, SEED_SIZE).copy()


def random_seeds(n: int) -> np.ndarray:
    """(n, 32) uint8 seeds from libsodium's CSPRNG.  Example: ``random_seeds(2).shape == (2, 32)``."""
    return np.frombuffer(nacl.utils.random(SEED_SIZE * n), np.uint8).reshape(n, SEED_SIZE).copy()


def keypairs_from_seeds(seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(public keys (n, 32), libsodium secret keys (n, 64)) for (n, 32) seeds.

    Example: ``pk, sk = keypairs_from_seeds(derive_seeds(1, 4))``.
    """
    seeds = np.ascontiguousarray(seeds, dtype=np.uint8)
    raw = seeds.tobytes()
    pairs = [nacl.bindings.crypto_sign_seed_keypair(raw[i : i + SEED_SIZE]) for i in range(0, len(raw), SEED_SIZE)]
    n = len(seeds)
    pks = np.frombuffer(b"".join(p for p, _ in pairs), np.uint8).reshape(n, 32).copy()
    sks = np.frombuffer(b"".join(s for _, s in pairs), np.uint8).reshape(n, 64).copy()
    return pks, sks


def _seed_matrix(keys: Any) -> np.ndarray:
    if isinstance(keys, np.ndarray):
        arr = np.asarray(keys, dtype=np.uint8)
    else:
        items = [bytes(k) if isinstance(k, nacl.signing.SigningKey) else bytes(k) for k in keys]
        if any(len(k) != SEED_SIZE for k in items):
            raise ValueError("keys: every seed / SigningKey must be 32 bytes")
        arr = np.frombuffer(b"".join(items), np.uint8).reshape(len(items), SEED_SIZE)
    if arr.ndim != 2 or arr.shape[1] != SEED_SIZE:
        raise ValueError(f"keys: expected shape (n, 32), got {arr.shape}")
    return arr


def sign_many(bodies: Any, keys: Any, *, key_index: Any = None, threads: int | None = None) -> np.ndarray:
    """(n, 64) uint8 Ed25519 signatures of ``bodies`` (n, w) uint8 or a list of equal-length bytes.

    ``keys`` are 32-byte seeds (or ``nacl.signing.SigningKey``): one per row, or one per distinct
    signer together with ``key_index[i]`` naming row i's key.  Each distinct key is expanded
    once, rows are signed in ``threads`` threads (default BIZRA_THREADS / cpu count) through
    libsodium.  Example: ``sign_many(bodies, seeds, key_index=validator_index, threads=2)``.
    """
    if isinstance(bodies, np.ndarray):
        msgs = np.ascontiguousarray(bodies, dtype=np.uint8)
    else:
        items = [bytes(b) for b in bodies]
        width = len(items[0]) if items else 0
        if any(len(b) != width for b in items):
            raise ValueError("bodies: sign_many needs equal-length messages")
        msgs = np.frombuffer(b"".join(items), np.uint8).reshape(len(items), width)
    if msgs.ndim != 2:
        raise ValueError(f"bodies: expected shape (n, w), got {msgs.shape}")
    seeds = _seed_matrix(keys)
    if key_index is None:
        if len(seeds) != len(msgs):
            raise ValueError(f"keys: {len(seeds)} rows, bodies: {len(msgs)}")
        # Expand each distinct seed once (rows of one validator share a key).
        seeds, key_index = np.unique(seeds, axis=0, return_inverse=True)
    key_index = np.asarray(key_index, dtype=np.int64).reshape(-1)
    if len(key_index) != len(msgs):
        raise ValueError(f"key_index: {len(key_index)} rows, bodies: {len(msgs)}")
    if len(key_index) and (key_index.min() < 0 or key_index.max() >= len(seeds)):
        raise ValueError("key_index: out of range of keys")
    _, secret = keypairs_from_seeds(seeds)
    return sodium_backend.sign_rows(msgs, secret, key_index, threads=resolve_threads(threads))


# ---- admission ----------------------------------------------------------------------------


def check_admissible(public_key: bytes) -> KeyReason | None:
    """None if the key may join the validator table, else why not (docs/design.md, "Key admission").

    Admitted keys are 32 bytes, canonical (y < p), on the curve, not of small order and
    torsion-free; libsodium's ``crypto_core_ed25519_is_valid_point`` is the final word, the
    earlier checks only name the reason.  Public keys are not secret, so Python ints are fine.
    Example: ``check_admissible(bytes(SigningKey.generate().verify_key)) is None``.
    """
    public_key = bytes(public_key)
    if len(public_key) != 32:
        return KeyReason.WRONG_LENGTH
    if int.from_bytes(public_key, "little") & ((1 << 255) - 1) >= _P:
        return KeyReason.NON_CANONICAL
    if public_key in _SMALL_ORDER:
        return KeyReason.SMALL_ORDER
    if nacl.bindings.crypto_core_ed25519_is_valid_point(public_key):
        return None
    try:
        # crypto_core_ed25519_add decodes and checks the curve equation but not the subgroup.
        nacl.bindings.crypto_core_ed25519_add(public_key, _BASEPOINT)
    except Exception:
        return KeyReason.NOT_ON_CURVE
    return KeyReason.NOT_TORSION_FREE


def admission_reasons(public_keys: np.ndarray) -> list[KeyReason | None]:
    """check_admissible for each row of an (n, 32) uint8 array (one libsodium call per key)."""
    raw = np.ascontiguousarray(public_keys, dtype=np.uint8).tobytes()
    return [check_admissible(raw[i : i + 32]) for i in range(0, len(raw), 32)]


def require_admissible(public_keys: np.ndarray, indices: np.ndarray | None = None, source: str = "validators") -> None:
    """Raise KeyAdmissionError naming the first validator whose key is not admitted.

    Example: ``require_admissible(pks, source="validators.parquet")``.
    """
    reasons = admission_reasons(public_keys)
    bad = [i for i, r in enumerate(reasons) if r is not None]
    if bad:
        i = bad[0]
        idx = int(indices[i]) if indices is not None else i
        key = bytes(np.asarray(public_keys[i], dtype=np.uint8)).hex()
        raise KeyAdmissionError(
            f"{source}: validator {idx} public key {key} is not admissible: {reasons[i].value}"
            + (f" ({len(bad)} inadmissible keys)" if len(bad) > 1 else "")
        )


# ---- secret key file ----------------------------------------------------------------------


def write_secret_keys(path: str | os.PathLike[str], seeds: np.ndarray) -> Path:
    """Write seeds to ``path`` with mode 0600: temp file (O_EXCL, 0600) then atomic rename.

    Format: b"BIZRAKEY", u32 little-endian count, count * 32-byte seeds in validator order.
    Example: ``write_secret_keys(out / "validator_keys.secret", seeds)``.
    """
    path = Path(path)
    seeds = np.ascontiguousarray(seeds, dtype=np.uint8)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # umask can only remove bits; this makes the mode exact
        with os.fdopen(fd, "wb") as f:
            f.write(SECRET_FILE_MAGIC + struct.pack("<I", len(seeds)) + seeds.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_secret_keys(path: str | os.PathLike[str]) -> np.ndarray:
    """(n, 32) uint8 seeds from a key file; refuses files readable by group or others.

    Example: ``seeds = read_secret_keys("keys/validator_keys.secret")``.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InputError(f"{path}: secret key file has mode {stat.S_IMODE(mode):o}, expected 600")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    header = len(SECRET_FILE_MAGIC) + 4
    if raw[: len(SECRET_FILE_MAGIC)] != SECRET_FILE_MAGIC or len(raw) < header:
        raise InputError(f"{path}: not a bizra secret key file")
    (count,) = struct.unpack("<I", raw[len(SECRET_FILE_MAGIC) : header])
    if len(raw) != header + SEED_SIZE * count:
        raise InputError(f"{path}: truncated secret key file ({count} keys announced)")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(count, SEED_SIZE).copy()
