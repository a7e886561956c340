"""Orders on a real database: stock reservation under contention, cancel, the sweeper."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from social_mall.errors import IllegalTransitionError, OutOfStockError
from social_mall.jobs import cancel_expired_orders
from social_mall.members.service import add_address, resolve_member
from social_mall.orders.service import cancel_order, find_order, place_order, restock_unshipped, return_unshipped_units
from storage.models import Sku
from storage.uow import UnitOfWork

NOW = datetime(2030, 11, 25, 4, 0, tzinfo=timezone.utc)
TIMEOUT = timedelta(minutes=30)


async def buyer(uows, tenant, name: str) -> tuple[int, int]:
    async with uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, "mp", name)
        address = await add_address(uow, tenant.id, member.id, "李四", "13912345678", "北京市朝阳区建国路88号")
        await uow.commit()
    return member.id, address.id


async def make_sku(uows, tenant, stock: int) -> int:
    async with uows() as uow:
        uow: UnitOfWork
        page, _ = await uow.catalog.products(tenant.id, category_id=None, keyword=None, offset=0, limit=1)
        sku = Sku(tenant_id=tenant.id, product_id=page[0].id, spec="限量款", price_fen=1999, stock=stock)
        await uow.catalog.add(sku)
        await uow.commit()
        return sku.id


async def stock_of(uows, tenant, sku_id: int) -> int:
    async with uows() as uow:
        return await uow.catalog.stock(tenant.id, sku_id)


async def test_fifty_concurrent_orders_for_ten_in_stock_sell_exactly_ten(uows, demo):
    sku_id = await make_sku(uows, demo, stock=10)
    buyers = [await buyer(uows, demo, f"o_buyer_{i:02d}") for i in range(50)]

    async def attempt(member_id: int, address_id: int) -> str:
        async with uows() as uow:
            try:
                order = await place_order(uow, demo.id, member_id, [(sku_id, 1)], address_id=address_id,
                                          now=NOW, timeout=TIMEOUT)
            except OutOfStockError:
                await uow.rollback()
                return "sold_out"
            await uow.commit()
            return order.order_no

    results = await asyncio.gather(*(attempt(m, a) for m, a in buyers))
    placed = [r for r in results if r != "sold_out"]
    assert len(placed) == 10
    assert len(set(placed)) == 10
    assert await stock_of(uows, demo, sku_id) == 0


async def test_out_of_stock_on_a_later_line_gives_back_what_earlier_lines_took(uows, demo):
    plenty = await make_sku(uows, demo, stock=5)
    scarce = await make_sku(uows, demo, stock=1)
    member_id, address_id = await buyer(uows, demo, "o_two_lines")
    async with uows() as uow:
        with pytest.raises(OutOfStockError) as err:
            await place_order(uow, demo.id, member_id, [(plenty, 2), (scarce, 3)], address_id=address_id,
                              now=NOW, timeout=TIMEOUT)
        await uow.rollback()
    assert err.value.left == 1
    assert await stock_of(uows, demo, plenty) == 5
    assert await stock_of(uows, demo, scarce) == 1


async def test_cancel_restores_stock_exactly_once(uows, demo):
    sku_id = await make_sku(uows, demo, stock=3)
    member_id, address_id = await buyer(uows, demo, "o_cancel")
    async with uows() as uow:
        order = await place_order(uow, demo.id, member_id, [(sku_id, 2)], address_id=address_id,
                                  now=NOW, timeout=TIMEOUT)
        await uow.commit()
    assert await stock_of(uows, demo, sku_id) == 1

    async def cancel() -> str:
        async with uows() as uow:
            view = await cancel_order(uow, demo.id, order.id, reason="buyer", now=NOW, member_id=member_id)
            await uow.commit()
            return view.status

    assert await asyncio.gather(cancel(), cancel(), cancel()) == ["cancelled"] * 3
    assert await stock_of(uows, demo, sku_id) == 3


async def test_units_put_back_before_shipping_are_put_back_once_whoever_asks(uows, demo):
    """A refund of part of an unshipped order puts its units back at once; a second
    worker asking for the same units, or more than the line holds, puts back nothing more;
    the order's close (a full refund, a cancel) puts back only the rest."""
    sku_id = await make_sku(uows, demo, stock=5)
    member_id, address_id = await buyer(uows, demo, "o_partial_back")
    async with uows() as uow:
        order = await place_order(uow, demo.id, member_id, [(sku_id, 3)], address_id=address_id,
                                  now=NOW, timeout=TIMEOUT)
        await uow.commit()
    assert await stock_of(uows, demo, sku_id) == 2

    async def give_back(qty: int) -> int:
        async with uows() as uow:
            back = await return_unshipped_units(uow, demo.id, order.id, sku_id, qty)
            await uow.commit()
            return back

    first = await asyncio.gather(give_back(2), give_back(2))      # two workers at once: 2, then what is left (0 or 1)
    assert 2 in first and sum(first) <= 3
    assert await stock_of(uows, demo, sku_id) == 2 + sum(first)
    assert await give_back(5) == 3 - sum(first)                                 # never past the line's 3
    assert await give_back(1) == 0
    assert await stock_of(uows, demo, sku_id) == 5
    async with uows() as uow:
        assert await restock_unshipped(uow, demo.id, order.id) == 0             # the close: nothing left to put back
        await uow.commit()
    assert await stock_of(uows, demo, sku_id) == 5


async def test_another_member_cannot_cancel_or_read_my_order(uows, demo):
    sku_id = await make_sku(uows, demo, stock=3)
    mine, address_id = await buyer(uows, demo, "o_owner")
    other, _ = await buyer(uows, demo, "o_other")
    async with uows() as uow:
        order = await place_order(uow, demo.id, mine, [(sku_id, 1)], address_id=address_id, now=NOW, timeout=TIMEOUT)
        await uow.commit()
    async with uows() as uow:
        from social_mall.errors import NotFoundError

        with pytest.raises(NotFoundError):
            await find_order(uow, demo.id, order.order_no, member_id=other)
        with pytest.raises(NotFoundError):
            await cancel_order(uow, demo.id, order.id, reason="x", now=NOW, member_id=other)


async def test_sweeper_cancels_expired_orders_once_even_when_two_run_at_once(uows, demo):
    sku_id = await make_sku(uows, demo, stock=10)
    member_id, address_id = await buyer(uows, demo, "o_slowpoke")
    orders = []
    for _ in range(4):
        async with uows() as uow:
            orders.append(await place_order(uow, demo.id, member_id, [(sku_id, 2)], address_id=address_id,
                                            now=NOW, timeout=TIMEOUT))
            await uow.commit()
    assert await stock_of(uows, demo, sku_id) == 2
    early = await cancel_expired_orders(uows, NOW + timedelta(minutes=29))
    assert early == 0
    later = NOW + timedelta(minutes=31)
    counts = await asyncio.gather(cancel_expired_orders(uows, later), cancel_expired_orders(uows, later))
    assert sum(counts) == 4
    assert await stock_of(uows, demo, sku_id) == 10
    async with uows() as uow:
        assert await uow.outbox.count("order.cancelled") == 4
        view = await find_order(uow, demo.id, orders[0].order_no)
    assert view.status == "cancelled"


async def test_paid_order_cannot_be_cancelled(uows, demo):
    sku_id = await make_sku(uows, demo, stock=3)
    member_id, address_id = await buyer(uows, demo, "o_paid")
    async with uows() as uow:
        order = await place_order(uow, demo.id, member_id, [(sku_id, 1)], address_id=address_id, now=NOW, timeout=TIMEOUT)
        assert await uow.orders.move(demo.id, order.id, "pending_payment", "paid")
        await uow.commit()
    async with uows() as uow:
        with pytest.raises(IllegalTransitionError):
            await cancel_order(uow, demo.id, order.id, reason="x", now=NOW)
    assert await stock_of(uows, demo, sku_id) == 2


async def test_shipped_orders_are_confirmed_received_after_the_window(uows, demo):
    from social_mall.jobs import complete_shipped_orders
    from social_mall.orders.service import ship_order

    sku_id = await make_sku(uows, demo, stock=3)
    member_id, address_id = await buyer(uows, demo, "o_receiver")
    async with uows() as uow:
        order = await place_order(uow, demo.id, member_id, [(sku_id, 1)], address_id=address_id, now=NOW, timeout=TIMEOUT)
        assert await uow.orders.move(demo.id, order.id, "pending_payment", "paid")
        await ship_order(uow, demo.id, order.id, tracking_no="SF1", now=NOW)
        await uow.commit()
    week = timedelta(days=7)
    assert await complete_shipped_orders(uows, NOW + timedelta(days=6), after=week) == 0
    later = NOW + timedelta(days=8)
    await asyncio.gather(complete_shipped_orders(uows, later, after=week),
                         complete_shipped_orders(uows, later, after=week))
    async with uows() as uow:
        assert (await find_order(uow, demo.id, order.order_no)).status == "completed"
        assert await uow.outbox.count("order.completed") == 1  # two sweepers, one completion


async def test_the_tenants_period_the_day_before_reminder_and_holds(uows, demo):
    """A tenant's own period (4 days here, the deployment's 7 elsewhere), the member told
    the day before (once, by one of two sweepers), and an order a hold keeps (an open
    after-sale request, say) neither told nor confirmed until the hold lets go."""
    from social_mall.jobs import complete_shipped_orders, remind_receipts
    from social_mall.orders.service import ship_order

    sku_id = await make_sku(uows, demo, stock=5)
    member_id, address_id = await buyer(uows, demo, "o_receiver_tenant_period")
    ids = []
    async with uows() as uow:
        await uow.tenants.set_auto_complete_days(demo.id, 4)
        for _ in range(2):
            order = await place_order(uow, demo.id, member_id, [(sku_id, 1)], address_id=address_id, now=NOW,
                                      timeout=TIMEOUT)
            assert await uow.orders.move(demo.id, order.id, "pending_payment", "paid")
            await ship_order(uow, demo.id, order.id, tracking_no="SF2", now=NOW)
            ids.append(order.id)
        await uow.commit()
    held = {ids[1]}

    async def hold(uow: UnitOfWork, tenant: int, order_id: int) -> bool:
        return order_id in held

    week = timedelta(days=7)
    assert await remind_receipts(uows, NOW + timedelta(days=2, hours=23), after=week, holds=[hold]) == 0
    day3 = NOW + timedelta(days=3, minutes=1)
    told = await asyncio.gather(remind_receipts(uows, day3, after=week, holds=[hold]),
                                remind_receipts(uows, day3, after=week, holds=[hold]))
    assert sum(told) == 1
    assert await remind_receipts(uows, day3 + timedelta(hours=1), after=week, holds=[hold]) == 0
    async with uows() as uow:
        assert await uow.outbox.count("order.receipt_due") == 1
    day4 = NOW + timedelta(days=4, minutes=1)
    assert await complete_shipped_orders(uows, day4, after=week, holds=[hold]) == 1
    async with uows() as uow:
        statuses = [(await uow.orders.get(demo.id, i)).status for i in ids]
    assert statuses == ["completed", "shipped"]
    held.clear()                                                  # the request ended
    assert await remind_receipts(uows, day4, after=week, holds=[hold]) == 1
    assert await complete_shipped_orders(uows, day4, after=week, holds=[hold]) == 1
    async with uows() as uow:
        assert (await uow.orders.get(demo.id, ids[1])).status == "completed"
        assert await uow.outbox.count("order.completed") == 2
