"""A batching writer: many small writes to the same hot rows, one transaction per lot.

Under a crowd (a QR campaign's first messages, a team everyone joins, a flash of orders
on one SKU) one transaction per request makes each wait for the one before it to commit
(the same rows are locked), and spends a pool connection, a commit and the statements'
Python each. A desk queues the requests instead; a single task takes the next lot
(first come, first served, at most `max_batch`) and writes it in one transaction with a
handful of statements (`write_many`), so under load the cost per request falls with the
lot's size and a lone request waits for nobody (its lot is itself).

The rules every desk keeps:
- each request gets its own answer: a result, or the error the single path would raise
  (`write_many` returns one per request, in order; a refusal is an exception *value*);
- a lot that can't be written as a whole (a race on a unique index with another worker,
  a deadlock, stock gone at the last moment: `write_many` raises) is rolled back and each
  of its requests is written alone (`write_one`, each in its own transaction), so one bad
  request never takes the others with it;
- fairness: the queue is FIFO and a lot is at most `max_batch` long, so a request waits at
  most for the lots ahead of it (no starvation: nobody is passed by a later request);
- the database being gone fails every waiter of the lot with that error; cancelling the
  drain (shutdown) fails every queued waiter: nobody waits forever.

A desk lives once per process on the unit-of-work factory (`desk_of`), keyed by name.
A request through a desk commits in the desk's own transaction, not the caller's.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar, cast

from sqlalchemy.exc import DBAPIError

from social_mall.errors import MallError
from storage.uow import UnitOfWork, UowFactory

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Res = TypeVar("Res")

MAX_BATCH = 200


class BatchFailed(Exception):
    """The lot as a whole can't be written; its requests go one by one."""


# the errors that send a lot to the one-by-one path (anything else: the database is gone)
RETRY_SINGLY: tuple[type[BaseException], ...] = (BatchFailed, MallError, DBAPIError)


class Desk(Generic[Req, Res]):
    """Queue `submit`ted requests; write them in lots through `write_many(uow, lot)`
    (uncommitted; one answer per request: a result or a MallError value), or, when the
    lot fails as a whole, each through `write_one(uow, req)` (uncommitted; raises a
    MallError to refuse). `expected`: the exception types a request may be answered with."""

    def __init__(self, name: str, uows: UowFactory,
                 write_many: Callable[[UnitOfWork, Sequence[Req]], Awaitable[Sequence[Res | Exception]]],
                 write_one: Callable[[UnitOfWork, Req], Awaitable[Res]], *,
                 max_batch: int = MAX_BATCH,
                 expected: tuple[type[BaseException], ...] = (MallError,),
                 retry_singly: tuple[type[BaseException], ...] = RETRY_SINGLY) -> None:
        self.name, self.uows, self.max_batch = name, uows, max_batch
        self.write_many, self.write_one = write_many, write_one
        self.expected, self.retry_singly = expected, retry_singly
        self.pending: deque[tuple[Req, asyncio.Future[Res]]] = deque()
        self.task: asyncio.Task[None] | None = None
        # transactions written whole, the requests in them, the lots retried one by one and the
        # requests those held (bench, tests)
        self.batches = self.done = self.retried = self.singly = 0
        self.largest = 0
        self.writing = 0   # the requests of the lot being written now (tests, diagnostics)

    async def submit(self, req: Req) -> Res:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Res] = loop.create_future()
        self.pending.append((req, fut))
        if self.task is None:
            # a context of its own: the drain must not carry the first caller's context
            # variables (a module's "this request is buying…" marker) into everyone's lots
            self.task = loop.create_task(self._drain(), context=contextvars.Context())
            self.task.add_done_callback(self._stopped)
        return await fut

    def _stopped(self, task: "asyncio.Task[None]") -> None:
        """A desk cancelled before its task ever ran (its `except` never saw the cancel):
        whoever is still queued hears it instead of waiting for ever."""
        if task.cancelled() and self.pending:
            _fail(list(self.pending), RuntimeError(f"{self.name} desk stopped"))
            self.pending.clear()
        if self.task is task:
            self.task = None

    def _take(self) -> list[tuple[Req, asyncio.Future[Res]]]:
        lot: list[tuple[Req, asyncio.Future[Res]]] = []
        while self.pending and len(lot) < self.max_batch:
            req, fut = self.pending.popleft()
            if not fut.cancelled():   # its caller gave up (a timeout): don't write it
                lot.append((req, fut))
        return lot

    async def _drain(self) -> None:
        lot: list[tuple[Req, asyncio.Future[Res]]] = []
        try:
            while self.pending:
                lot = self._take()
                if not lot:
                    continue
                self.writing = len(lot)
                try:
                    await self._run(lot)
                except Exception as exc:  # noqa: BLE001 - the database is gone: every waiter hears it
                    _fail(lot, exc)
                finally:
                    self.writing = 0
                lot = []
        except asyncio.CancelledError:  # shutting down: nobody is left waiting forever
            _fail(lot + list(self.pending), RuntimeError(f"{self.name} desk stopped"))
            self.pending.clear()
            raise
        finally:
            self.task = None

    async def _run(self, lot: list[tuple[Req, asyncio.Future[Res]]]) -> None:
        results: Sequence[Res | Exception]
        try:
            async with self.uows() as uow:
                results = await self.write_many(uow, [req for req, _ in lot])
                await uow.commit()
            assert len(results) == len(lot)
            self.batches += 1
            self.done += len(lot)
            self.largest = max(self.largest, len(lot))
        except self.retry_singly as exc:  # a race, a deadlock, stock short: one by one
            log.info("desk.batch_retried_singly",
                     extra={"desk": self.name, "size": len(lot), "error": type(exc).__name__})
            self.retried += 1
            self.singly += len(lot)
            results = [await self._alone(req) for req, _ in lot]
        for (_, fut), res in zip(lot, results):
            if fut.done():
                continue
            if isinstance(res, BaseException):
                fut.set_exception(res)
            else:
                fut.set_result(res)

    async def _alone(self, req: Req) -> Res | Exception:
        try:
            async with self.uows() as uow:
                res = await self.write_one(uow, req)
                await uow.commit()
                return res
        except self.expected as exc:
            return exc  # type: ignore[return-value]


def _fail(lot: Sequence[tuple[object, asyncio.Future]], exc: Exception) -> None:  # type: ignore[type-arg]
    for _, fut in lot:
        if not fut.done():
            fut.set_exception(exc)


D = TypeVar("D", bound=Desk)  # type: ignore[type-arg]


def desk_of(uow: UnitOfWork, name: str, make: Callable[[UowFactory], D]) -> D | None:
    """This deployment's desk `name` (made on first use, kept on the unit-of-work factory);
    None for a unit of work made outside a factory (the caller then writes in it)."""
    if uow.factory is None:
        return None
    desk = uow.shared.get(name)
    if desk is None:
        desk = uow.shared[name] = make(uow.factory)
    return cast(D, desk)
