"""app.coalesce: calls for one key that arrive while a run is in progress are run together next."""

from __future__ import annotations

import asyncio

import pytest

from app.coalesce import Coalescer


async def test_calls_that_arrive_during_a_run_go_together_into_the_next_one():
    runs: list[tuple[str, list[int]]] = []
    gate = asyncio.Event()

    async def run(key: str, items: list[int]) -> list[int]:
        runs.append((key, items))
        if len(runs) == 1:
            await gate.wait()  # the first run is slow: everything else queues behind it
        return [i * 10 for i in items]

    coalescer: Coalescer[int, int] = Coalescer(run, limit=3)
    first = asyncio.ensure_future(coalescer.submit("a", 1))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(coalescer.submit("a", i)) for i in range(2, 7)]
    other = asyncio.ensure_future(coalescer.submit("b", 99))  # another key does not wait for "a"
    assert await other == 990
    gate.set()
    assert [await first, *[await r for r in rest]] == [10, 20, 30, 40, 50, 60]
    assert runs == [("a", [1]), ("b", [99]), ("a", [2, 3, 4]), ("a", [5, 6])]
    assert coalescer.waiting == {}  # nothing left behind once drained


async def test_an_item_that_fails_fails_alone_and_a_failed_run_fails_its_batch_only():
    async def run(key: str, items: list[int]) -> list[int | BaseException]:
        await asyncio.sleep(0)
        if 0 in items:
            raise RuntimeError("the whole run broke")
        return [ValueError(f"bad {i}") if i < 0 else i for i in items]

    coalescer: Coalescer[int, int] = Coalescer(run, limit=10)
    results = await asyncio.gather(*(coalescer.submit("k", i) for i in (1, -2, 3)), return_exceptions=True)
    assert results[0] == 1 and results[2] == 3 and str(results[1]) == "bad -2"
    with pytest.raises(RuntimeError, match="whole run"):
        await coalescer.submit("k", 0)
    assert await coalescer.submit("k", 4) == 4  # the key drains again after a failure


async def test_a_caller_that_goes_away_does_not_stop_the_others():
    started = asyncio.Event()
    gate = asyncio.Event()

    async def run(key: str, items: list[int]) -> list[int]:
        started.set()
        await gate.wait()
        return items

    coalescer: Coalescer[int, int] = Coalescer(run, limit=10)
    leaving = asyncio.ensure_future(coalescer.submit("k", 1))
    await started.wait()
    staying = [asyncio.ensure_future(coalescer.submit("k", i)) for i in (2, 3)]
    await asyncio.sleep(0)
    leaving.cancel()
    gate.set()
    assert [await s for s in staying] == [2, 3]
    assert leaving.cancelled()
