"""Dynamic batching: concurrent requests with the same key run as one network call.

Requests wait in one queue per key (here: model and exact image size). A worker takes
the key whose oldest request has waited longest, and runs it as soon as it holds
``max_batch_size`` requests or its oldest one has waited ``batch_timeout`` seconds.
While every worker is busy, queues keep filling, so batches grow with the load. (The
number of requests let in is bounded before they get here: see ``limits.Admission``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

RunBatch = Callable[[Hashable, list[Any]], list[Any]]
OnBatch = Callable[[Hashable, int, float], None]


@dataclass
class _Pending:
    item: Any
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)


class Batcher:
    """``await batcher.submit(key, item)`` -> ``run_batch(key, [items...])[i]``.

    ``run_batch`` runs in a thread (ONNX Runtime releases the GIL) and must return
    one result per item, in order. ``workers`` batches may run at the same time.
    """

    def __init__(self, run_batch: RunBatch, *, max_batch_size: int, batch_timeout_s: float, workers: int = 1,
                 on_batch: OnBatch | None = None, batch_limit: Callable[[Hashable], int] | None = None) -> None:
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        # Per key, a lower cap than max_batch_size (the server's: a pixel budget per batch).
        self.batch_limit = batch_limit
        self.batch_timeout_s = batch_timeout_s
        self.workers = workers
        self.on_batch = on_batch
        self._queues: dict[Hashable, list[_Pending]] = {}
        self._changed: asyncio.Condition | None = None
        self._tasks: list[asyncio.Task] = []
        self._executor: ThreadPoolExecutor | None = None
        self.seconds_per_item = 0.1  # running average of network time per request (for Retry-After)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._changed = asyncio.Condition()
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="styletrans-batch")
        self._tasks = [asyncio.create_task(self._work(), name=f"batch-worker-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for queue in self._queues.values():
            for pending in queue:
                if not pending.future.done():
                    pending.future.cancel()
        self._queues.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    # ------------------------------------------------------------------ requests
    @property
    def queued(self) -> int:
        """Requests waiting for a worker (not those being computed, nor those given up on)."""
        return sum(not p.future.done() for queue in self._queues.values() for p in queue)

    async def submit(self, key: Hashable, item: Any) -> Any:
        assert self._changed is not None, "Batcher.start() was not awaited"
        pending = _Pending(item, asyncio.get_running_loop().create_future())
        async with self._changed:
            self._queues.setdefault(key, []).append(pending)
            self._changed.notify_all()
        # Cancelled by a timeout or a client that left: the worker skips it (see _take).
        return await pending.future

    # ------------------------------------------------------------------ workers
    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            key, batch = await self._next_batch()
            start = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self.run_batch, key, [p.item for p in batch])
            except asyncio.CancelledError:  # shutting down: nobody will answer these
                for pending in batch:
                    pending.future.cancel()
                raise
            except Exception as exc:  # one bad batch fails its requests, not the worker
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            seconds = time.perf_counter() - start
            self.seconds_per_item = 0.8 * self.seconds_per_item + 0.2 * seconds / len(batch)
            if self.on_batch is not None:
                self.on_batch(key, len(batch), seconds)
            for pending, result in zip(batch, results, strict=True):
                if not pending.future.done():
                    pending.future.set_result(result)

    async def _next_batch(self) -> tuple[Hashable, list[_Pending]]:
        assert self._changed is not None
        async with self._changed:
            while True:
                self._drop_abandoned()
                if not self._queues:
                    await self._changed.wait()
                    continue
                key = min(self._queues, key=lambda k: self._queues[k][0].enqueued)
                queue = self._queues[key]
                limit = self.max_batch_size
                if self.batch_limit is not None:
                    limit = max(1, min(limit, self.batch_limit(key)))
                wait = queue[0].enqueued + self.batch_timeout_s - time.monotonic()
                if len(queue) >= limit or wait <= 0:
                    batch, rest = queue[:limit], queue[limit:]
                    if rest:
                        self._queues[key] = rest
                    else:
                        del self._queues[key]
                    return key, batch
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)

    def _drop_abandoned(self) -> None:
        for key in list(self._queues):
            alive = [p for p in self._queues[key] if not p.future.done()]
            if alive:
                self._queues[key] = alive
            else:
                del self._queues[key]
