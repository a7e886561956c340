"""The batching writer (social_mall/desk.py) without a database: lots are first come,
first served and bounded, each request gets its own answer, a lot that fails whole goes
one by one, and nobody is left waiting when the database is gone or the desk stops."""

from __future__ import annotations

import asyncio

import pytest

from social_mall.desk import BatchFailed, Desk
from social_mall.errors import NotFoundError


class FakeUow:
    def __init__(self, log):
        self.log = log

    async def commit(self):
        self.log.append("commit")

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


def make_desk(log, lots, *, max_batch=3, fail_lot=None, gone=False):
    async def many(uow, reqs):
        lots.append(list(reqs))
        if gone:
            raise RuntimeError("database gone")
        if fail_lot is not None and fail_lot(reqs):
            raise BatchFailed("race")
        return [NotFoundError("thing", r) if r < 0 else r * 10 for r in reqs]

    async def one(uow, r):
        log.append(("alone", r))
        if r < 0:
            raise NotFoundError("thing", r)
        return r * 100

    return Desk("test", lambda: FakeUow(log), many, one, max_batch=max_batch)


async def test_lots_are_fifo_bounded_and_answer_each_request():
    log, lots = [], []
    desk = make_desk(log, lots)
    results = await asyncio.gather(*(desk.submit(r) for r in [1, 2, -3, 4, 5, 6, 7]), return_exceptions=True)
    assert lots == [[1, 2, -3], [4, 5, 6], [7]]           # arrival order, at most max_batch each
    assert results[:2] == [10, 20] and results[3:] == [40, 50, 60, 70]
    assert isinstance(results[2], NotFoundError)          # a refusal is that request's alone
    assert (desk.batches, desk.done, desk.retried) == (3, 7, 0)
    assert log.count("commit") == 3


async def test_a_request_arriving_during_a_lot_waits_only_for_that_lot():
    log, lots = [], []
    desk = make_desk(log, lots, max_batch=100)
    first = asyncio.gather(*(desk.submit(r) for r in range(1, 4)))
    await asyncio.sleep(0)            # the first lot is being written
    late = desk.submit(9)
    assert await first == [10, 20, 30]
    assert await late == 90
    assert lots == [[1, 2, 3], [9]]


async def test_a_lot_that_fails_whole_goes_one_by_one():
    log, lots = [], []
    desk = make_desk(log, lots, fail_lot=lambda reqs: 2 in reqs)
    results = await asyncio.gather(*(desk.submit(r) for r in [1, 2, -3]), return_exceptions=True)
    assert results[:2] == [100, 200] and isinstance(results[2], NotFoundError)
    assert [x for x in log if x != "commit"] == [("alone", 1), ("alone", 2), ("alone", -3)]
    assert (desk.batches, desk.retried) == (0, 1)


async def test_the_database_gone_fails_every_waiter_of_the_lot_and_the_desk_goes_on():
    log, lots = [], []
    desk = make_desk(log, lots, gone=True)
    results = await asyncio.gather(*(desk.submit(r) for r in [1, 2]), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert desk.task is None and not desk.pending


async def test_stopping_the_desk_fails_everyone_queued():
    log, lots = [], []
    desk = make_desk(log, lots)
    waiting = [asyncio.ensure_future(desk.submit(r)) for r in range(1, 8)]
    await asyncio.sleep(0)
    assert desk.task is not None
    desk.task.cancel()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, (RuntimeError, int)) for r in results)
    assert any(isinstance(r, RuntimeError) for r in results)
    assert not desk.pending


@pytest.mark.parametrize("n", [1, 50])
async def test_every_request_is_answered_once(n):
    log, lots = [], []
    desk = make_desk(log, lots, max_batch=7)
    results = await asyncio.gather(*(desk.submit(r) for r in range(1, n + 1)))
    assert results == [r * 10 for r in range(1, n + 1)]
    assert sum(len(lot) for lot in lots) == n and max(len(lot) for lot in lots) <= 7
