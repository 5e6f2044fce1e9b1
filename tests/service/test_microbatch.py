"""The micro-batcher: concurrent single verifications coalesced into verify_many calls, bounded batches, failures reaching every waiter."""
from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from engine.service.microbatch import MicroBatcher


def test_microbatcher_caps_batches_and_returns_each_row_its_own_result() -> None:
    sizes: list[int] = []

    def parity(bodies: list[bytes], sigs: list[bytes], pks: list[bytes]) -> np.ndarray:
        return np.array([b[0] % 2 == 0 for b in bodies])

    async def scenario() -> list[bool]:
        mb = MicroBatcher(max_batch=8, max_wait_s=0.01, verify_fn=parity, on_batch=sizes.append)
        try:
            return list(await asyncio.gather(*(mb.verify(bytes([i]), b"", b"") for i in range(40))))
        finally:
            await mb.close()

    assert asyncio.run(scenario()) == [i % 2 == 0 for i in range(40)]
    assert sum(sizes) == 40 and max(sizes) == 8 and len(sizes) == 5


def test_microbatcher_failure_reaches_every_waiter_and_the_worker_survives() -> None:
    calls = []

    def flaky(bodies: list[bytes], *_: Any) -> np.ndarray:
        calls.append(len(bodies))
        if len(calls) == 1:
            raise RuntimeError("backend broke")
        return np.ones(len(bodies), bool)

    async def scenario() -> tuple[list[Any], bool]:
        mb = MicroBatcher(max_batch=4, max_wait_s=0.005, verify_fn=flaky)
        first = await asyncio.gather(*(mb.verify(b"x", b"", b"") for _ in range(3)), return_exceptions=True)
        second = await mb.verify(b"y", b"", b"")
        await mb.close()
        return first, second

    first, second = asyncio.run(scenario())
    assert all(isinstance(e, RuntimeError) for e in first) and second is True


def test_microbatcher_without_coalescing_sends_one_row_per_call() -> None:
    sizes: list[int] = []

    async def scenario() -> None:
        mb = MicroBatcher(max_batch=1, max_wait_s=0.0, verify_fn=lambda b, s, k: np.ones(len(b), bool),
                          on_batch=sizes.append)
        await asyncio.gather(*(mb.verify(b"x", b"", b"") for _ in range(10)))
        await mb.close()

    asyncio.run(scenario())
    assert sizes == [1] * 10


def test_microbatcher_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(max_batch=0)
    with pytest.raises(ValueError, match="max_wait_s"):
        MicroBatcher(max_wait_s=2)


