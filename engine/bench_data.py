"""Signed test columns for benchmarks, notebooks and release gates (not for production data).

Keys come from seeded PyNaCl seeds, so a run is repeatable; signing is libsodium's.
"""
from __future__ import annotations

import numpy as np

from engine.verify import VerifyColumns, to_columns

__all__ = ["signed_columns"]


def signed_columns(n_rows: int, n_keys: int, *, seed: int = 1, msg_len: int = 120) -> VerifyColumns:
    """n_rows honest signatures over random msg_len-byte messages from n_keys keys.

    Row i is signed by key i % n_keys. Example: ``signed_columns(8, 2).n == 8``.
    """
    import nacl.signing

    rng = np.random.default_rng(seed)
    keys = [nacl.signing.SigningKey(rng.bytes(32)) for _ in range(n_keys)]
    key_bytes = np.array([np.frombuffer(bytes(k.verify_key), np.uint8) for k in keys])
    owner = np.arange(n_rows) % n_keys
    msgs = rng.integers(0, 256, size=(n_rows, msg_len), dtype=np.uint8)
    sigs = np.array([np.frombuffer(keys[o].sign(m.tobytes()).signature, np.uint8)
                     for o, m in zip(owner, msgs)]).reshape(n_rows, 64)
    return to_columns(msgs, sigs, key_bytes[owner].reshape(n_rows, 32))
