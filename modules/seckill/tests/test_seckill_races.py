"""The database's guard, without the admission step in front (as after a Redis flush or a
stale memory): orders written at once through two workers (separate engines and
connection pools: on PostgreSQL, real separate connections). Two parallel orders of one
member can't both pass the limit; a crowd never passes the item's stock; a refused order
leaves nothing behind (no order, no claim, no stock taken)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from social_mall.errors import MallError
from social_mall.members.service import add_address, resolve_member
from social_mall.orders.service import place_order
from social_mall.pricing.service import NONE, PricingInput
from social_mall.fulfilment import Choice
from social_mall_seckill import service
from social_mall_seckill.errors import OverLimitError, SoldOutError
from social_mall_seckill.models import SeckillClaim, SeckillItem, SeckillOrder
from social_mall_seckill.prices import BUYING, FREE_EXPRESS, PRICER, Buying
from storage.db import create_engine, session_factory
from storage.models import Order, Sku
from storage.uow import uow_factory

NOW = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)


async def _setup(uows, tenant: int, *, stock: int, limit: int) -> tuple[int, Sku]:
    async with uows() as uow:
        sku = await uow.session.scalar(select(Sku).where(Sku.tenant_id == tenant, Sku.stock >= 100).order_by(Sku.id))
        sid = await service.create_session(uow, tenant, "并发场", NOW - timedelta(minutes=1), NOW + timedelta(hours=1),
                                           5, NOW)
        item = await service.add_item(uow, tenant, sid, sku.id, 100, stock, limit)
        await uow.commit()
    return item, sku


async def _member(uows, tenant: int, openid: str) -> tuple[int, int]:
    async with uows() as uow:
        m, _ = await resolve_member(uow, tenant, "mp", openid)
        a = await add_address(uow, tenant, m.id, "张三", "13800138000", "上海市浦东新区世纪大道100号")
        await uow.commit()
    return m.id, a.id


async def _order(factory, tenant: int, member: int, address: int, item: int, sku: Sku, qty: int, token: str) -> str:
    BUYING.set(Buying(tenant, member, item, sku.id, 100, qty, "测试", token, NOW + timedelta(minutes=5)))
    async with factory() as uow:
        try:
            await place_order(uow, tenant, member, [(sku.id, qty)], address_id=address, now=NOW,
                              timeout=timedelta(minutes=7), pricing=PricingInput(NONE, 0),
                              fulfilment=(FREE_EXPRESS, Choice(FREE_EXPRESS.key)))
        except (SoldOutError, OverLimitError) as exc:
            await uow.rollback()
            return exc.code
        except MallError as exc:  # pragma: no cover - would fail the counts below
            await uow.rollback()
            return exc.code
        await uow.commit()
        return "placed"


def _workers(backend):
    engines = [create_engine(backend.db_url, schema=backend.schema) if backend.name == "pg"
               else create_engine(backend.db_url) for _ in range(2)]
    return engines, [uow_factory(session_factory(e), {}, pricers=[PRICER]) for e in engines]


async def test_two_parallel_orders_of_one_member_cannot_both_pass_the_limit(backend, engine, uows, demo):
    item, sku = await _setup(uows, demo.id, stock=10, limit=1)
    member, address = await _member(uows, demo.id, "o_race_one")
    engines, (w1, w2) = _workers(backend)
    try:
        for round_ in range(3):
            got = await asyncio.gather(_order(w1, demo.id, member, address, item, sku, 1, f"a{round_}"),
                                       _order(w2, demo.id, member, address, item, sku, 1, f"b{round_}"))
            assert got.count("placed") == (1 if round_ == 0 else 0), got
            assert set(got) <= {"placed", "seckill_over_limit"}
    finally:
        for e in engines:
            await e.dispose()
    async with uows() as uow:
        it = await uow.session.get(SeckillItem, item)
        claim = await uow.session.scalar(select(SeckillClaim.qty).where(SeckillClaim.member_id == member))
        orders = await uow.session.scalar(select(func.count()).select_from(Order).where(Order.member_id == member))
        written = await uow.session.scalar(select(func.count()).select_from(SeckillOrder))
        sku_now = await uow.session.get(Sku, sku.id, populate_existing=True)
    assert (it.sold, claim, orders, written) == (1, 1, 1, 1)
    assert sku_now.stock == sku.stock - 1          # refused orders took nothing from the SKU either


async def test_a_crowd_without_admission_never_passes_the_stock(backend, engine, uows, demo):
    item, sku = await _setup(uows, demo.id, stock=3, limit=2)
    members = [await _member(uows, demo.id, f"o_race_{i}") for i in range(8)]
    engines, workers = _workers(backend)
    try:
        got = await asyncio.gather(*(
            _order(workers[i % 2], demo.id, m, a, item, sku, 1 + i % 2, f"t{i}") for i, (m, a) in enumerate(members)))
    finally:
        for e in engines:
            await e.dispose()
    async with uows() as uow:
        it = await uow.session.get(SeckillItem, item)
        taken = await uow.session.scalar(select(func.coalesce(func.sum(SeckillOrder.qty), 0)))
        claims = await uow.session.scalar(select(func.coalesce(func.sum(SeckillClaim.qty), 0)))
        truth = await service.truth(uow, demo.id, item)
    assert it.sold == taken == claims <= 3
    assert "placed" in got and "seckill_sold_out" in got
    assert truth.stock_left == 3 - it.sold and sum(truth.members.values()) == it.sold


async def test_lots_on_two_workers_never_pass_the_stock_or_a_limit_and_match_the_single_path(backend, engine, uows,
                                                                                            demo):
    """The batched write of admitted orders (buying.write_lot), without admission: a crowd
    (some members twice, so some lots fall back to one by one) on two workers."""
    from social_mall.desk import Desk as Lots
    from social_mall_seckill.buying import Win, write_alone, write_lot

    item, sku = await _setup(uows, demo.id, stock=6, limit=1)
    members = [await _member(uows, demo.id, f"o_lot_{i}") for i in range(8)]
    engines, workers = _workers(backend)
    desks = [Lots(f"lots{i}", w, write_lot, write_alone) for i, w in enumerate(workers)]
    async with uows() as uow:
        product = (await uow.catalog.skus_by_ids(demo.id, [sku.id]))[0][1].id

    async def attempt(i: int, m: int, a: int) -> str:
        b = Buying(demo.id, m, item, sku.id, 100, 1, "测试", f"w{i}", NOW + timedelta(minutes=5))
        try:
            await desks[i % 2].submit(Win(b, product, a, "mp", NOW, timedelta(minutes=7)))
        except (SoldOutError, OverLimitError) as exc:
            return exc.code
        return "placed"
    try:   # eight members, a lot of four on each worker: one fits, the other passes the stock
        got = list(await asyncio.gather(*(attempt(i, m, a) for i, (m, a) in enumerate(members))))
        # four of them again: over the limit of 1, each lot refused by the claims
        got += await asyncio.gather(*(attempt(i, m, a) for i, (m, a) in enumerate(members[:4])))
    finally:
        for e in engines:
            await e.dispose()
    assert sum(d.batches for d in desks) >= 1 and sum(d.retried for d in desks) >= 2   # whole, and one by one
    async with uows() as uow:
        it = await uow.session.get(SeckillItem, item)
        taken = await uow.session.scalar(select(func.coalesce(func.sum(SeckillOrder.qty), 0)))
        per_member = dict((await uow.session.execute(
            select(Order.member_id, func.count()).where(Order.source == f"seckill:{item}")
            .group_by(Order.member_id))).all())
        orders = list((await uow.session.scalars(select(Order).where(Order.source == f"seckill:{item}"))).all())
        sku_now = await uow.session.get(Sku, sku.id, populate_existing=True)
    assert got.count("placed") == it.sold == taken == len(orders) == 6
    assert got[:8].count("placed") == 6 and "placed" not in got[8:]
    assert set(got) <= {"placed", "seckill_sold_out", "seckill_over_limit"}
    assert max(per_member.values()) == 1                  # nobody over the limit of 1
    assert sku_now.stock == sku.stock - 6
    # each as the single path writes it: the seckill price, free express, nothing off
    assert {(o.goods_fen, o.shipping_fen, o.discount_fen, o.total_fen, o.status) for o in orders} == \
        {(100, 0, 0, 100, "pending_payment")}
