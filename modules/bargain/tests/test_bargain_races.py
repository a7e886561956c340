"""Concurrent helps through separate connections (each unit of work its own pooled
connection; a second engine as another worker): a bargain is never cut past its floor,
each cut is taken once in order, a friend helps once, and K helps a day hold."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from social_mall_bargain import rules, service
from social_mall_bargain.errors import AlreadyHelpedError, BargainClosedError, HelpLimitError
from social_mall_bargain.models import Bargain

from bargain_kit import follower, make_campaign

pytestmark = pytest.mark.usefixtures("demo")


async def _setup(uows, demo, *, helps: int, helpers: int, daily: int = 3, starters: int = 1):
    now = datetime.now(timezone.utc)
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, now, helps=helps, daily=daily, floor_fen=500)
        starter_ids = [await follower(uow, demo.id, f"oBK_race_s{i:03d}", now - timedelta(days=3))
                       for i in range(starters)]
        helper_ids = [await follower(uow, demo.id, f"oBK_race_h{i:03d}", now - timedelta(days=3))
                      for i in range(helpers)]
        bargains = [await service.start_bargain(uow, demo.id, s, c.id, now=now) for s in starter_ids]
        await uow.commit()
    return c, bargains, helper_ids, now


async def _help(factory, tenant, helper, code, now):
    async with factory() as uow:
        try:
            r = await service.help_bargain(uow, tenant, helper, code, now=now)
        except (BargainClosedError, AlreadyHelpedError, HelpLimitError) as exc:
            await uow.rollback()
            return type(exc).__name__
        await uow.commit()
        return r.seq


async def test_concurrent_helps_never_over_cut(uows, other_worker, demo, backend):
    c, (b,), helpers, now = await _setup(uows, demo, helps=5, helpers=16)
    results = await asyncio.gather(*[
        _help(uows if i % 2 else other_worker, demo.id, h, b.code, now) for i, h in enumerate(helpers)])
    seqs = sorted(r for r in results if isinstance(r, int))
    assert seqs == [1, 2, 3, 4, 5]
    assert all(r == "BargainClosedError" for r in results if not isinstance(r, int))
    async with uows() as uow:
        row = (await uow.session.execute(select(Bargain).where(Bargain.id == b.id))).scalar_one()
        helps = await service.helps_of(uow, demo.id, b.id)
    assert (row.price_fen, row.helps, row.status) == (500, 5, "reached")
    cuts = rules.load_cuts(row.cuts)
    assert [cut for _, cut, _ in helps] == cuts                       # each precomputed cut once, in order
    assert [after for _, _, after in helps] == [b.start_fen - sum(cuts[:i + 1]) for i in range(5)]


async def test_one_friend_helping_twice_at_once_counts_once(uows, other_worker, demo):
    c, (b,), (helper,), now = await _setup(uows, demo, helps=5, helpers=1)
    results = await asyncio.gather(*[_help(f, demo.id, helper, b.code, now)
                                     for f in (uows, other_worker, uows, other_worker)])
    assert sorted(map(str, results)) == ["1", "AlreadyHelpedError", "AlreadyHelpedError", "AlreadyHelpedError"]
    async with uows() as uow:
        assert (await service.get_bargain(uow, demo.id, b.id)).helps == 1


async def test_k_helps_a_day_hold_under_concurrency(uows, other_worker, demo):
    c, bargains, (helper,), now = await _setup(uows, demo, helps=5, helpers=1, daily=2, starters=6)
    results = await asyncio.gather(*[_help(uows if i % 2 else other_worker, demo.id, helper, b.code, now)
                                     for i, b in enumerate(bargains)])
    assert sum(isinstance(r, int) for r in results) == 2
    assert sorted(r for r in results if not isinstance(r, int)) == ["HelpLimitError"] * 4
    async with uows() as uow:
        assert sum([(await service.get_bargain(uow, demo.id, b.id)).helps for b in bargains]) == 2


async def test_two_purchases_at_once_make_one_order(uows, other_worker, demo):
    from sqlalchemy import func

    from social_mall.members.service import add_address
    from storage.models import Order

    c, (b,), (helper,), now = await _setup(uows, demo, helps=3, helpers=1)
    assert await _help(uows, demo.id, helper, b.code, now) == 1
    async with uows() as uow:
        address = await add_address(uow, demo.id, b.member_id, "王小明", "13912345678", "深圳市南山区科技园1号")
        await uow.commit()

    async def buy(factory):
        async with factory() as uow:
            order, fresh = await service.buy(uow, demo.id, b.member_id, b.id, address_id=address.id, now=now,
                                             timeout=timedelta(minutes=30))
            await uow.commit()
            return order.order_no, fresh

    results = await asyncio.gather(*[buy(f) for f in (uows, other_worker, uows, other_worker)])
    assert len({no for no, _ in results}) == 1 and sum(fresh for _, fresh in results) == 1
    async with uows() as uow:
        row = (await uow.session.execute(select(Bargain).where(Bargain.id == b.id))).scalar_one()
        orders = await uow.session.scalar(select(func.count()).select_from(Order).where(
            Order.source == f"bargain:{b.id}"))
        stock = (await service.get_campaign(uow, demo.id, c.id)).stock
    assert (row.status, orders, stock) == ("ordered", 1, c.stock - 1)
    assert row.price_fen == b.start_fen - rules.load_cuts(row.cuts)[0]
