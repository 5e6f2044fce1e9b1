"""Signing and libsodium verification throughput (asv).

``threads`` is ``"1"`` or ``"all"`` (every CPU of the machine, as ``bizra run`` uses by
default); a label rather than a number so the dashboard lines stay comparable between
machines. ``time_*`` measure absolute times; ``track_*_speedup`` report the ratio of the
threaded path to one thread of plain PyNaCl on the same bodies, both measured in the same
run, because the benchmark machines are shared and noisy (docs/design.md, "Tests and
benchmarks").
"""

from __future__ import annotations

import os
import time

from nacl.signing import SigningKey, VerifyKey

from engine.synthetic import signed_attestations
from engine.verification.api import verify_many
from engine.verification.keys import keypairs_from_seeds, sign_many

ROWS = 4096
KEYS = 64
THREADS = ["1", "all"]


def threads_of(label: str) -> int:
    return (os.cpu_count() or 1) if label == "all" else int(label)


class _Data:
    def setup(self, *args: object) -> None:
        rows = signed_attestations(ROWS, KEYS, seed=0, label="asv-sign", threads=1)
        self.bodies, self.seeds, self.idx = rows.bodies, rows.seeds, rows.owner
        self.pks, self.sigs = rows.public_keys, rows.signatures
        self.signing_keys = [SigningKey(bytes(s)) for s in self.seeds]
        self.verify_keys = [VerifyKey(bytes(p)) for p in keypairs_from_seeds(self.seeds)[0]]
        self.rows = [bytes(b) for b in self.bodies]
        self.sig_rows = [bytes(s) for s in self.sigs]

    def _plain_sign(self) -> None:
        for i, body in enumerate(self.rows):
            self.signing_keys[self.idx[i]].sign(body)

    def _plain_verify(self) -> None:
        for i, body in enumerate(self.rows):
            self.verify_keys[self.idx[i]].verify(body, self.sig_rows[i])


class SignMany(_Data):
    params = THREADS
    param_names = ["threads"]

    def time_sign_many(self, threads: str) -> None:
        sign_many(self.bodies, self.seeds, key_index=self.idx, threads=threads_of(threads))

    def time_plain_pynacl_one_thread(self, threads: str) -> None:
        self._plain_sign()

    def track_sign_rows_per_s(self, threads: str) -> float:
        t0 = time.perf_counter()
        sign_many(self.bodies, self.seeds, key_index=self.idx, threads=threads_of(threads))
        return ROWS / (time.perf_counter() - t0)

    track_sign_rows_per_s.unit = "rows/s"

    def track_sign_speedup(self, threads: str) -> float:
        t0 = time.perf_counter()
        self._plain_sign()
        t1 = time.perf_counter()
        sign_many(self.bodies, self.seeds, key_index=self.idx, threads=threads_of(threads))
        return (t1 - t0) / (time.perf_counter() - t1)

    track_sign_speedup.unit = "x"


class VerifyLibsodium(_Data):
    params = THREADS
    param_names = ["threads"]

    def time_verify_many(self, threads: str) -> None:
        verify_many(self.bodies, self.sigs, self.pks, threads=threads_of(threads), backend="libsodium")

    def time_plain_pynacl_one_thread(self, threads: str) -> None:
        self._plain_verify()

    def track_verify_speedup(self, threads: str) -> float:
        t0 = time.perf_counter()
        self._plain_verify()
        t1 = time.perf_counter()
        verify_many(self.bodies, self.sigs, self.pks, threads=threads_of(threads), backend="libsodium")
        return (t1 - t0) / (time.perf_counter() - t1)

    track_verify_speedup.unit = "x"
