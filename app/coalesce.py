"""Coalescing: calls for the same key that arrive while a run for that key is in progress are run together
next, in one ``run(key, items)``. On a busy key each call costs a share of one run (one transaction, one
set-based statement) instead of a run of its own; a lone call runs at once as a batch of one, so nothing
ever waits on a timer. Batches are per event loop; every caller gets its own result (or exception).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Coalescer(Generic[Item, Result]):
    """``run(key, items)`` returns one result per item, in order; a result that is an exception is
    raised to that item's caller alone. An exception from ``run`` itself goes to every caller of the
    batch. At most ``limit`` items per run."""

    def __init__(
        self,
        run: Callable[[Any, list[Item]], Awaitable[Sequence[Result | BaseException]]],
        limit: int,
    ) -> None:
        self.run = run
        self.limit = limit
        self.waiting: dict[tuple[int, Hashable], list[tuple[Item, asyncio.Future]]] = {}
        self.draining: set[asyncio.Task] = set()

    async def submit(self, key: Hashable, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        future = loop.create_future()
        queue = self.waiting.get(slot)
        self.waiting.setdefault(slot, []).append((item, future))
        if queue is None:  # nobody is running this key: this call starts the drain
            task = loop.create_task(self._drain(slot, key))
            self.draining.add(task)
            task.add_done_callback(self.draining.discard)
        return await future

    async def _drain(self, slot: tuple[int, Hashable], key: Hashable) -> None:
        try:
            while self.waiting.get(slot):
                batch, self.waiting[slot] = self.waiting[slot][: self.limit], self.waiting[slot][self.limit :]
                try:
                    results = await self.run(key, [item for item, _ in batch])
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # its caller went away (cancelled); the work is done anyway
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            for _, future in self.waiting.pop(slot, []):
                if not future.done():  # only when the drain itself was cancelled: never leave one hanging
                    future.set_exception(RuntimeError("stopped before this item ran"))
