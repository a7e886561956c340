"""storage/cache.ReadCache: TTL, single flight, and no stale store across a clear."""

import asyncio

import pytest

from storage.cache import ReadCache


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def loader(calls: list[int], value: object = "v", delay: float = 0.0):
    async def load():
        calls.append(1)
        await asyncio.sleep(delay)
        return value
    return load


async def test_a_value_is_kept_for_its_ttl():
    clock, calls = Clock(), []
    cache = ReadCache(ttl=10, clock=clock)
    assert await cache.get_or_load("k", loader(calls)) == "v"
    assert await cache.get_or_load("k", loader(calls)) == "v"
    assert len(calls) == 1
    clock.t += 10.1
    await cache.get_or_load("k", loader(calls))
    assert len(calls) == 2


async def test_concurrent_misses_share_one_load():
    calls: list[int] = []
    cache = ReadCache(ttl=10)
    got = await asyncio.gather(*(cache.get_or_load("k", loader(calls, "x", 0.01)) for _ in range(20)))
    assert got == ["x"] * 20 and len(calls) == 1


async def test_a_load_that_overlaps_a_clear_is_not_stored():
    calls: list[int] = []
    cache = ReadCache(ttl=10)
    pending = asyncio.ensure_future(cache.get_or_load("k", loader(calls, "old", 0.01)))
    await asyncio.sleep(0)
    cache.clear()                 # a catalog write committed while "old" was being read
    assert await pending == "old"
    assert await cache.get_or_load("k", loader(calls, "new")) == "new"
    assert len(calls) == 2


async def test_a_failed_shared_load_lets_waiters_load_themselves():
    cache = ReadCache(ttl=10)

    async def broken():
        await asyncio.sleep(0.01)
        raise RuntimeError("db down")

    calls: list[int] = []
    first = asyncio.ensure_future(cache.get_or_load("k", broken))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(cache.get_or_load("k", loader(calls, "ok")))
    with pytest.raises(RuntimeError):
        await first
    assert await second == "ok" and len(calls) == 1


async def test_ttl_zero_disables_the_cache():
    calls: list[int] = []
    cache = ReadCache(ttl=0)
    for _ in range(3):
        await cache.get_or_load("k", loader(calls))
    assert len(calls) == 3


async def test_a_waiter_holding_what_the_loader_needs_reads_on_its_own():
    """A reader that waits for another's load of the same key may hold what that load needs
    (the connection of a small pool): the wait is bounded, then it reads itself and lets go."""
    cache = ReadCache(ttl=10)
    released = asyncio.Event()   # the second reader's connection, back in the pool

    async def needs_the_connection():
        await released.wait()
        return "first"

    first = asyncio.ensure_future(cache.get_or_load("k", needs_the_connection))
    await asyncio.sleep(0)

    async def second():
        try:
            return await cache.get_or_load("k", loader([], "own"))
        finally:
            released.set()

    assert await asyncio.wait_for(second(), 30) == "own"   # waiting on `first` for good: never
    assert await first == "first"
