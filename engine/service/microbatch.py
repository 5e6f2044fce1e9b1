"""Micro-batching of single verify requests: many concurrent requests, one verify_many.

A single Ed25519 check costs one full double-scalar multiplication; the Numba batch verifier
amortizes most of that over a batch (random linear combination + MSM, one point per distinct
key). So concurrent ``POST /api/v1/poi/verify`` calls are queued and a single worker task on
the event loop drains them:

  1. wait for the first request of a batch;
  2. gather more until ``max_batch`` rows are queued or ``max_wait_s`` (default 1 ms) has
     passed since that first request, whichever comes first;
  3. run ``verify_many`` over the batch in a dedicated worker thread (the kernels release the
     GIL; the event loop keeps accepting requests, which queue up for the next batch);
  4. hand each waiter its own row's result and record the batch size.

Only one batch is in flight at a time: verify_many already spreads a batch over all
BIZRA_THREADS, and requests that arrive meanwhile make the next batch larger, which is the
point. Under no load a request waits at most ``max_wait_s`` extra.

Example::

    mb = MicroBatcher(max_batch=256, max_wait_s=0.001)
    ok = await mb.verify(body, signature, public_key)   # inside the event loop
    await mb.close()
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from engine.verification.api import verify_many

__all__ = ["MicroBatcher"]

log = logging.getLogger("bizra.microbatch")

VerifyFn = Callable[[list[bytes], list[bytes], list[bytes]], np.ndarray]


class MicroBatcher:
    """Coalesces concurrent single verifications into verify_many calls.

    ``verify_fn(bodies, signatures, public_keys) -> bool[n]`` defaults to engine.verification.api's
    verify_many (backend from BIZRA_VERIFY_BACKEND); ``on_batch(rows)`` is called once per batch
    (the service records bizra_poi_verify_batch_size there).
    """

    def __init__(self, *, max_batch: int = 256, max_wait_s: float = 0.001, verify_fn: VerifyFn | None = None,
                 on_batch: Callable[[int], None] | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch: must be >= 1, got {max_batch}")
        if not 0 <= max_wait_s <= 1:
            raise ValueError(f"max_wait_s: must be within 0..1 s, got {max_wait_s}")
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._verify_fn = verify_fn or (lambda b, s, k: verify_many(b, s, k))
        self._on_batch = on_batch
        self._queue: asyncio.Queue[tuple[bytes, bytes, bytes, asyncio.Future[bool]]] | None = None
        self._full: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._inflight: list[asyncio.Future[bool]] = []
        self.batches = 0  # counts, for tests and logs
        self.rows = 0

    def _start(self) -> None:
        """Create the queue and worker on the running loop (lazily: the loop exists only now)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._worker is not None and not self._worker.done():
            return
        self._loop = loop
        if self._executor is None:  # a private single thread: batches never wait for Starlette's pool
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bizra-microbatch")
        self._queue = asyncio.Queue()
        self._full = asyncio.Event()
        self._worker = loop.create_task(self._run(), name="bizra-microbatch")

    async def verify(self, body: bytes, signature: bytes, public_key: bytes) -> bool:
        """Queue one row and wait for its batch; returns whether the signature verifies."""
        self._start()
        if self._queue is None or self._full is None or self._loop is None:  # _start made them
            raise RuntimeError("micro-batcher not started")
        fut: asyncio.Future[bool] = self._loop.create_future()
        self._queue.put_nowait((body, signature, public_key, fut))
        if self._queue.qsize() >= self.max_batch:
            self._full.set()
        return await fut

    async def _run(self) -> None:
        if self._queue is None or self._full is None:
            raise RuntimeError("micro-batcher not started")
        queue, full = self._queue, self._full
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            if self.max_wait_s > 0 and queue.qsize() + 1 < self.max_batch:
                full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(full.wait(), self.max_wait_s)
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            full.clear()
            live = [item for item in batch if not item[3].done()]  # a cancelled request needs no check
            if not live:
                continue
            bodies, sigs, pks = ([item[i] for item in live] for i in range(3))
            self._inflight = [item[3] for item in live]
            try:
                valid = await loop.run_in_executor(self._executor, self._verify_fn, bodies, sigs, pks)
            except Exception as exc:  # hand the failure to every waiter; the worker keeps serving
                log.exception("micro-batch of %d rows failed", len(live))
                for *_, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.batches += 1
            self.rows += len(live)
            if self._on_batch is not None:
                self._on_batch(len(live))
            for (*_, fut), ok in zip(live, np.asarray(valid, dtype=bool).tolist()):
                if not fut.done():
                    fut.set_result(ok)

    async def close(self) -> None:
        """Stop the worker, fail requests still queued, release the thread (a later verify starts again)."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._worker
            self._worker = None
        pending = list(self._inflight)
        if self._queue is not None:
            while not self._queue.empty():
                pending.append(self._queue.get_nowait()[3])
        for fut in pending:
            if not fut.done():
                fut.set_exception(RuntimeError("service shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
