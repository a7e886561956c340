"""An in-process read cache for catalog reads on the chat hot path.

Browsing in chat reads the same few rows (categories, the first product pages) for every
member; reading them once per `ttl` seconds instead of once per message is what lets one
process serve chat at the speed of its key-value store. Correctness rules:

- Values are immutable views (frozen dataclasses and tuples), shared by every reader.
- A unit of work that wrote to the catalog tables (categories, products, SKUs, and what
  modules `watch`, like flash prices: ORM adds
  and `update`/`delete` statements alike, seen through SQLAlchemy session events) clears
  the cache when it commits, so the process that made a change sees it at once. Stock
  moves made by orders are flagged `stock_only` and don't count: lists show no stock.
- A load that started before such a commit is not stored (a version check), so an old
  read can't outlive the change.
- Other workers see a change within `ttl` (10 s by default): the price of not asking a
  shared store on every message. Product detail (which shows stock) is never cached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar, cast

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from storage.models import Category, Product, Sku

T = TypeVar("T")

_watched: tuple[type, ...] = (Category, Product, Sku)


def watch(*classes: type) -> None:
    """Also treat writes to these mapped classes as catalog writes (a module's tables that
    feed cached reads, e.g. the loyalty module's flash prices)."""
    global _watched
    _watched += tuple(c for c in classes if c not in _watched)
WROTE_CATALOG = "wrote_catalog"  # Session.info flag set by the listeners below
SHARED_WAIT = 0.5                # s a reader waits for another reader's load of the same key
STOCK_ONLY = "stock_only"        # execution option: an UPDATE that only moves stock


class ReadCache:
    """Key → (expires, value) with a version bumped by every catalog write; `ttl` 0 disables."""

    def __init__(self, ttl: float = 10.0, max_entries: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.max_entries, self.clock = ttl, max_entries, clock
        self.version = 0
        self.loads = 0  # diagnostics (bench/): reads that went to the database
        self._data: dict[Hashable, tuple[float, Any]] = {}
        self._loading: dict[Hashable, asyncio.Future[object]] = {}

    async def get_or_load(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        """The cached value, or `load()`'s. Concurrent misses of one key share one load
        (when an entry expires under load, one reader goes to the database, not all) for
        up to SHARED_WAIT; a reader still waiting then reads on its own."""
        if self.ttl <= 0:
            return await load()
        hit = self._data.get(key)
        if hit is not None and hit[0] > self.clock():
            value: T = hit[1]
            return value
        pending = self._loading.get(key)
        if pending is not None:
            try:
                # not for long: this reader may hold a connection the loader is waiting for
                # (a small pool), so past SHARED_WAIT it reads on its own and lets go of it
                shared = await asyncio.wait_for(asyncio.shield(pending), SHARED_WAIT)
            except asyncio.TimeoutError:
                return await load()
            if shared is not _FAILED:
                return cast(T, shared)
            return await load()  # the shared load failed: try on our own
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._loading[key] = fut
        started = self.version
        self.loads += 1
        try:
            value = await load()
        except BaseException:
            fut.set_result(_FAILED)
            raise
        finally:
            del self._loading[key]
        if self.version == started:
            if len(self._data) >= self.max_entries:
                self._data.clear()
            self._data[key] = (self.clock() + self.ttl, value)
        fut.set_result(value)
        return value

    def peek(self, key: Hashable) -> Any:
        """The cached value while it is fresh, else MISS; never loads (and never waits):
        a hot path's shortcut past `get_or_load`'s coroutine."""
        hit = self._data.get(key)
        if hit is not None and hit[0] > self.clock():
            return hit[1]
        return MISS

    def clear(self) -> None:
        self.version += 1
        self._data.clear()


DISABLED = ReadCache(ttl=0)
_FAILED = object()
MISS: Any = object()  # what `peek` returns for a key that is absent or expired


def _is_catalog(obj: object) -> bool:
    return isinstance(obj, _watched)


@event.listens_for(Session, "before_flush")
def _note_flush(session: Session, flush_context: UOWTransaction, instances: object) -> None:
    if any(_is_catalog(o) for o in (*session.new, *session.dirty, *session.deleted)):
        session.info[WROTE_CATALOG] = True


@event.listens_for(Session, "do_orm_execute")
def _note_statement(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    if state.execution_options.get(STOCK_ONLY):
        return
    if any(issubclass(m.class_, _watched) for m in state.all_mappers):
        state.session.info[WROTE_CATALOG] = True
