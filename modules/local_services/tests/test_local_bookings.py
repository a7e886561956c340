"""Appointments (预约), end to end through the signed endpoint and the sandbox payment, and
the capacity under contention on separate connections: a service is booked (deposit),
reminded (customer-service message, or the template message outside the 48-hour window),
checked in with its code; 50 members booking the last places at once get exactly the
capacity; a resource is never double-booked, slots past midnight included; cancel and
reschedule follow the rules; no-shows and unpaid holds are closed by the jobs."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from social_mall.catalog.service import list_products
from social_mall.members.service import resolve_member
from social_mall_local import bookings as B
from social_mall_local.errors import SlotFullError
from social_mall_local.models import Booking, ResourceCell, Store
from social_mall_local.stores import get_store
from storage.models import Product, Refund, Sku
from tests.fakes.console_kit import login, make_admin

from local_kit import (
    Clock, bind_staff, codes_in, make_mall, order, pay_in_sandbox, pushes, say, shanghai, simulator,
)

BUYER = "oUser_local_booking_0000001"
CLERK = "oUser_local_booking_clerk_01"


@pytest.fixture
def clock():
    return Clock(shanghai(2025, 6, 6, 12, 0))     # Friday noon; 人民广场店 is open 10:00–02:00 on Fridays


@pytest.fixture
async def shop(backend, engine, tmp_path, fake_wechat, aiohttp_client, clock):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    await make_admin(mall.svc.uows, "boss")
    return mall


async def setup_service(mall, *, duration=60, step=30, deposit="20.00", free_hours=24, late_pct=50, remind=2,
                        resources=("工位1",)) -> int:
    """精洗车 (¥80.00) bookable at 人民广场店 with `resources`, through the console."""
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        product = (await list_products(uow, tenant.id, keyword="电动牙刷")).items[0]
        row = await uow.session.get(Product, product.id)
        row.title = "精洗车"
        for sku in (await uow.session.scalars(select(Sku).where(Sku.product_id == product.id))).all():
            sku.price_fen, sku.stock = 8000, 10_000
        store_id = await uow.session.scalar(select(Store.id).where(Store.name == "人民广场店"))
        await uow.commit()
    csrf = await login(mall.client, "boss")
    resp = await mall.client.post("/console/local/services", data={
        "_csrf": csrf, "product_id": str(product.id), "duration_min": str(duration), "step_min": str(step),
        "deposit": deposit, "cancel_free_hours": str(free_hours), "late_refund_pct": str(late_pct),
        "remind_hours": str(remind)}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    for name in resources:
        resp = await mall.client.post("/console/local/resources", data={
            "_csrf": csrf, "store_id": str(store_id), "name": name, "kind": "staff", f"p_{product.id}": "1"},
            allow_redirects=False)
        assert resp.status == 303, await resp.text()
    return product.id


async def book_in_chat(mall, wx, user: str, *, day: int = 1, slot: int = 1) -> str:
    await wx.event(user, "subscribe")
    services = await say(wx, user, "预约")
    assert "1. 精洗车 · 60 分钟 · ¥80.00（预约付定金 ¥20.00）" in services, services
    assert "1. 人民广场店" in await say(wx, user, "1")
    assert "06-06 周五（今天）" in await say(wx, user, "1")
    await say(wx, user, str(day))
    confirm = await say(wx, user, str(slot))
    assert "请确认预约" in confirm, confirm
    return confirm


async def cells(mall) -> int:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(func.count()).select_from(ResourceCell))


async def booking(mall) -> Booking:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(Booking).order_by(Booking.id.desc()))


async def test_book_pay_deposit_get_reminded_and_check_in_with_the_code(shop, clock):
    await setup_service(shop)
    wx = simulator(shop)
    await wx.event(BUYER, "subscribe")
    confirm = await book_in_chat(shop, wx, BUYER)
    assert "时间：06-06 周五 13:00–14:00" in confirm
    assert "现在支付定金 ¥20.00，到店再付 ¥60.00" in confirm and "之后取消退还 50%" in confirm
    placed = await say(wx, BUYER, "确认")
    assert "预约已保留" in placed and "应付：¥20.00" in placed
    order_no = await pay_in_sandbox(shop, placed)
    assert (await order(shop, order_no)).paid_fen == 2000
    b = await booking(shop)
    assert (b.status, b.deposit, b.starts_at) == ("booked", True, shanghai(2025, 6, 6, 13, 0))
    assert await cells(shop) == 4                                    # four 15-minute cells of 工位1
    (code,) = codes_in(pushes(shop, BUYER)[-1])
    assert "精洗车 06-06 13:00" in pushes(shop, BUYER)[-1]
    assert "精洗车 · 人民广场店 · 06-06 周五 13:00 · 已预约" in await say(wx, BUYER, "我的预约")

    jobs = {j.name: j for j in shop.svc.registry.jobs}
    assert await jobs["local.booking_reminders"].run() == 1           # within 2 h of 13:00
    assert await jobs["local.booking_reminders"].run() == 0           # once
    await shop.settle()
    assert "预约提醒" in pushes(shop, BUYER)[-1] and "06-06 周五 13:00" in pushes(shop, BUYER)[-1]

    clock.at = shanghai(2025, 6, 6, 12, 55)
    await bind_staff(shop, wx, CLERK, "人民广场店")
    assert "核销确认" in (await wx.scan(CLERK, "LOCAL_VERIFY", code)).text
    assert "核销成功" in await say(wx, CLERK, "确认")
    assert (await booking(shop)).status == "checked_in"
    assert (await order(shop, order_no)).status == "completed"
    assert "已到店" not in await say(wx, BUYER, "我的预约")           # no longer upcoming


async def test_fifty_members_booking_the_last_places_get_exactly_the_capacity(shop, other_worker):
    product = await setup_service(shop, resources=("工位1", "工位2", "工位3"))
    tenant = await shop.svc.tenant("demo")
    async with shop.svc.uows() as uow:
        store_id = await uow.session.scalar(select(Store.id).where(Store.name == "人民广场店"))
        members = [(await resolve_member(uow, tenant.id, "mp", f"oBooker_{i:020d}"))[0].id for i in range(50)]
        await uow.commit()
    now, start = shop.svc.clock(), shanghai(2025, 6, 6, 15, 0)

    async def one(uows, member: int) -> str:
        try:
            async with uows() as uow:
                await B.book(uow, tenant.id, member, product, store_id, start, now=now, timeout=timedelta(minutes=30))
                await uow.commit()
                return "booked"
        except SlotFullError:
            return "full"

    results = await asyncio.gather(*(one(shop.svc.uows if i % 2 else other_worker, m) for i, m in enumerate(members)))
    assert results.count("booked") == 3 and results.count("full") == 47
    async with shop.svc.uows() as uow:
        rows = (await uow.session.scalars(select(Booking))).all()
        assert len(rows) == 3 and len({r.resource_id for r in rows}) == 3     # each on its own resource
        assert await uow.session.scalar(select(func.count()).select_from(ResourceCell)) == 12
        store = await get_store(uow, tenant.id, store_id)
        svc = await B.service(uow, tenant.id, product)
        free = await B.free_slots(uow, tenant.id, svc, store, start.astimezone(B.SHANGHAI).date(), now)
        assert all(not (f.starts < start + timedelta(hours=1) and start < f.ends) for f in free)  # none overlapping


async def test_slots_past_midnight_and_no_resource_twice(shop):
    product = await setup_service(shop, duration=120, step=60)
    tenant = await shop.svc.tenant("demo")
    async with shop.svc.uows() as uow:
        store_id = await uow.session.scalar(select(Store.id).where(Store.name == "人民广场店"))
        store = await get_store(uow, tenant.id, store_id)
        svc = await B.service(uow, tenant.id, product)
        friday = shanghai(2025, 6, 6).astimezone(B.SHANGHAI).date()
        starts = [f.starts for f in await B.free_slots(uow, tenant.id, svc, store, friday, shop.svc.clock())]
        assert starts[0] == shanghai(2025, 6, 6, 13, 0) and starts[-1] == shanghai(2025, 6, 7, 0, 0)  # ends 02:00
        member, _ = await resolve_member(uow, tenant.id, "mp", BUYER)
        await B.book(uow, tenant.id, member.id, product, store_id, shanghai(2025, 6, 6, 23, 0), now=shop.svc.clock(),
                     timeout=timedelta(minutes=30))
        await uow.commit()
    wx = simulator(shop)
    await wx.event(BUYER, "subscribe")
    await say(wx, BUYER, "预约")
    await say(wx, BUYER, "1")
    await say(wx, BUYER, "1")
    listed = await say(wx, BUYER, "1")                                 # Friday
    assert "22:00–次日 00:00" not in listed and "23:00–次日 01:00" not in listed   # overlap the booking
    assert "21:00–23:00" in listed and "次日 00:00–次日 02:00" not in listed
    async with shop.svc.uows() as uow:
        with pytest.raises(SlotFullError):
            await B.book(uow, tenant.id, member.id, product, store_id, shanghai(2025, 6, 7, 0, 0),
                         now=shop.svc.clock(), timeout=timedelta(minutes=30))
    assert await cells(shop) == 8


async def test_cancel_and_reschedule_follow_the_rules(shop, clock):
    product = await setup_service(shop)
    wx = simulator(shop)
    await book_in_chat(shop, wx, BUYER, day=3)                         # Sunday 10:00
    order_no = await pay_in_sandbox(shop, await say(wx, BUYER, "确认"))
    assert (await booking(shop)).starts_at == shanghai(2025, 6, 8, 10, 0)

    await say(wx, BUYER, "我的预约")
    await say(wx, BUYER, "1")
    await say(wx, BUYER, "改期")
    await say(wx, BUYER, "3")                                          # Sunday again
    moved = await say(wx, BUYER, "1")                                  # 11:00 (10:00–11:00 is its own)
    assert "已改期" in moved and "06-08 周日 11:00" in moved
    assert (await booking(shop)).starts_at == shanghai(2025, 6, 8, 11, 0) and await cells(shop) == 4

    clock.at = shanghai(2025, 6, 7, 12, 0)                            # within 24 h: late
    await say(wx, BUYER, "我的预约")
    await say(wx, BUYER, "1")
    assert "已超过可以取消或改期的时间" in await say(wx, BUYER, "改期")
    assert (await booking(shop)).starts_at == shanghai(2025, 6, 8, 11, 0)
    cancelled = await say(wx, BUYER, "取消预约")
    assert "将退款 ¥10.00" in cancelled                                # 50 % of ¥20.00
    await shop.settle()
    assert (await booking(shop)).status == "cancelled" and await cells(shop) == 0
    assert (await order(shop, order_no)).refunded_fen == 1000
    async with shop.svc.uows() as uow:
        assert (await uow.session.scalar(select(Refund.amount_fen))) == 1000
    tenant = await shop.svc.tenant("demo")
    async with shop.svc.uows() as uow:                                 # the slot is free again
        b = await booking(shop)
        store = await get_store(uow, tenant.id, b.store_id)
        svc = await B.service(uow, tenant.id, product)
        free = await B.free_slots(uow, tenant.id, svc, store, b.starts_at.astimezone(B.SHANGHAI).date(),
                                  shop.svc.clock())
        assert any(f.starts == b.starts_at for f in free)


async def test_a_free_cancel_refunds_everything_and_after_the_start_nothing_moves(shop, clock):
    await setup_service(shop)
    wx = simulator(shop)
    await book_in_chat(shop, wx, BUYER, day=3)
    order_no = await pay_in_sandbox(shop, await say(wx, BUYER, "确认"))
    await say(wx, BUYER, "我的预约")
    await say(wx, BUYER, "1")
    assert "将退款 ¥20.00" in await say(wx, BUYER, "取消预约")
    await shop.settle()
    done = await order(shop, order_no)
    assert (done.refunded_fen, done.status) == (2000, "refunded")

    await book_in_chat(shop, wx, BUYER, day=3)
    await pay_in_sandbox(shop, await say(wx, BUYER, "确认"))
    clock.at = shanghai(2025, 6, 8, 10, 5)                            # it has started
    await say(wx, BUYER, "我的预约")
    await say(wx, BUYER, "1")
    assert "已超过可以取消或改期的时间" in await say(wx, BUYER, "取消预约")
    assert (await booking(shop)).status == "booked"


async def test_outside_the_48_hour_window_the_reminder_is_a_template_message(shop, clock):
    await setup_service(shop)
    csrf = await login(shop.client, "boss")
    assert (await shop.client.post("/console/local/settings", data={"_csrf": csrf, "reminder_template_id": "TPL_remind_1"},
                                   allow_redirects=False)).status == 303
    wx = simulator(shop)
    await book_in_chat(shop, wx, BUYER, day=2)                         # Saturday 10:00
    await pay_in_sandbox(shop, await say(wx, BUYER, "确认"))
    jobs = {j.name: j for j in shop.svc.registry.jobs}
    assert await jobs["local.booking_reminders"].run() == 0           # not yet: 2 h before
    clock.at = shanghai(2025, 6, 7, 8, 0)
    shop.fake.outside_48h.add(BUYER)                                  # the member has been quiet
    assert await jobs["local.booking_reminders"].run() == 1
    await shop.settle()
    (sent,) = shop.fake.sent_templates(BUYER)
    assert sent["template_id"] == "TPL_remind_1" and sent["data"]["thing1"]["value"] == "精洗车"
    assert sent["data"]["time2"]["value"] == "06-07 周六 10:00"
    assert not any("预约提醒" in p for p in pushes(shop, BUYER))


async def test_no_shows_and_unpaid_holds_are_closed_by_the_jobs(shop, clock):
    await setup_service(shop)
    wx = simulator(shop)
    await book_in_chat(shop, wx, BUYER)                                # today 13:00, paid
    order_no = await pay_in_sandbox(shop, await say(wx, BUYER, "确认"))
    other = "oUser_local_booking_0000002"
    await book_in_chat(shop, wx, other, slot=3)                        # today 14:00, never paid
    unpaid = re.search(r"订单号：(\d+)", await say(wx, other, "确认")).group(1)
    assert await cells(shop) == 8
    jobs = {j.name: j for j in shop.svc.registry.jobs}
    clock.advance(minutes=31)
    await jobs["orders.cancel_expired"].run()
    await shop.settle()
    assert (await order(shop, unpaid)).status == "cancelled" and await cells(shop) == 4
    clock.at = shanghai(2025, 6, 6, 14, 31)                           # 13:00–14:00, not checked in
    assert await jobs["local.no_shows"].run() == 1
    assert await jobs["local.no_shows"].run() == 0
    async with shop.svc.uows() as uow:
        b = await uow.session.scalar(select(Booking).where(Booking.status == "no_show"))
        assert b is not None
    done = await order(shop, order_no)
    assert (done.status, done.refunded_fen) == ("completed", 0)


async def test_a_booking_made_through_a_second_account_is_paid_at_its_merchant(shop, aiohttp_server, tmp_path):
    from tests.channels_kit import MCH2, open_native, opened, second_entrance

    wx2, fake2, account, merchant = await second_entrance(shop, aiohttp_server, tmp_path)
    await setup_service(shop)
    await book_in_chat(shop, wx2, "oUser_local_booking_second_01")
    placed = await say(wx2, "oUser_local_booking_second_01", "确认")
    assert "预约已保留" in placed, placed
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    assert await open_native(shop, order_no) == (account, merchant)
    assert opened(fake2, order_no) == [MCH2]
