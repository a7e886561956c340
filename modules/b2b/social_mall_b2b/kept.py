"""What the module's hot reads keep per worker, beside the core's read cache.

Every browse step of every member asks the module two things (is this member a business
member at all? which products are sold to business accounts only?), and the answers change
rarely. `kept(uow, key, load)` keeps an answer for the read cache's ttl and drops it when
this worker commits a write to what the module `watch`es (the cache's version moves); other
workers see a change within the ttl, as they see a catalog edit. Each caller that misses
loads in its own unit of work: unlike the read cache's shared load, a request never waits
for another request's read (which, holding a connection of a small pool while waiting,
could starve the reader of one)."""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from storage.uow import UnitOfWork

T = TypeVar("T")

MAX_KEPT = 50_000    # answers kept per worker (then all forgotten at once)
_KEPT: weakref.WeakKeyDictionary[object, dict[Hashable, tuple[float, int, object]]] = weakref.WeakKeyDictionary()


async def kept(uow: UnitOfWork, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
    cache = uow.cache
    if cache.ttl <= 0:
        return await load()
    mine = _KEPT.setdefault(cache, {})
    now, version = time.monotonic(), cache.version
    hit = mine.get(key)
    if hit is not None and hit[0] > now and hit[1] == version:
        return hit[2]  # type: ignore[return-value]
    value = await load()
    if cache.version == version:   # nothing watched was written meanwhile
        if len(mine) >= MAX_KEPT:
            mine.clear()
        mine[key] = (now + cache.ttl, version, value)
    return value
