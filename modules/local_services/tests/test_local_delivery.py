"""Same-city delivery (同城配送) through the signed endpoint, the sandbox pay notify and the
console: a location and contact make an address with coordinates, the zone and its
distance tier price it, a slot is taken atomically (never past its capacity, also with
many buyers at once on separate connections), an unpaid order gives its place back, the
rider hand-off is pushed and completes the order; outside every zone, under the minimum
and holidays get clear answers and change nothing."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from social_mall.catalog.service import list_products
from social_mall.fulfilment import Choice
from social_mall.members.service import add_address, resolve_member
from social_mall.orders.service import place_order
from social_mall_local import delivery as D
from social_mall_local.errors import SlotFullError
from social_mall_local.fulfil import DELIVERY
from social_mall_local.geo import Point, distance_m
from social_mall_local.models import AddressPoint, OrderFulfilment, SlotUse, Store, Zone
from storage.models import Address
from tests.fakes.console_kit import login, make_admin

from local_kit import FAR_AWAY, Clock, make_mall, order, pay_in_sandbox, pushes, say, shanghai, simulator, to_checkout

BUYER = "oUser_local_delivery_0000001"
NEAR_PEOPLE_SQUARE = ("31.235470", "121.487400")     # 1.2 km east of 人民广场店


@pytest.fixture
def clock():
    return Clock(shanghai(2025, 6, 6, 12, 0))     # Friday noon: today's 18:00 and 19:00 slots are open


@pytest.fixture
async def shop(backend, engine, tmp_path, fake_wechat, aiohttp_client, clock):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    await make_admin(mall.svc.uows, "boss")
    return mall


async def start_delivery(wx, user: str = BUYER, keyword: str = "燕麦片", qty: int = 1) -> str:
    methods = await to_checkout(wx, user, keyword, qty)
    assert "1. 门店自提 / 到店使用\n2. 同城配送" in methods          # 燕麦片 doesn't ship by express
    return await say(wx, user, "2")


async def rows(mall, model) -> int:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(func.count()).select_from(model))


async def test_a_delivery_order_shows_the_distance_fee_takes_a_slot_and_the_rider_hands_it_over(shop):
    wx = simulator(shop)
    assert "请发送收货位置" in await start_delivery(wx)
    ask = (await wx.location(BUYER, *NEAR_PEOPLE_SQUARE, "南京东路步行街")).text
    assert "在配送范围内" in ask and "南京东路步行街" in ask
    assert "11 位" in await say(wx, BUYER, "王小明 123")               # a bad phone: asked again
    slots = await say(wx, BUYER, "王小明 13912345678 3号楼502")
    assert "由「人民广场店」配送，距离 1.2km，配送费 ¥5.00（¥20.00 起送）" in slots
    assert "1. 今天 18:00-19:00（剩 10 单）" in slots and "今天 11:00" not in slots   # 11:00 has passed
    confirm = await say(wx, BUYER, "1")
    assert "配送费：¥5.00" in confirm and "应付：¥34.90" in confirm      # ¥29.90 + ¥5.00
    assert "同城配送：人民广场店发出，距离 1.2km，送达时段 今天 18:00-19:00" in confirm
    assert "收货：王小明 139****5678 南京东路步行街 3号楼502" in confirm
    order_no = await pay_in_sandbox(shop, await say(wx, BUYER, "确认"))
    placed = await order(shop, order_no)
    assert (placed.fulfilment, placed.shipping_fen, placed.total_fen, placed.paid_fen) == ("delivery", 500, 3490, 3490)
    async with shop.svc.uows() as uow:
        ful = await uow.session.scalar(select(OrderFulfilment).where(OrderFulfilment.order_id == placed.id))
        use = await uow.session.get(SlotUse, ful.slot_id)
        expected = distance_m(Point(31_235_470, 121_474_790), Point(31_235_470, 121_487_400))   # store → address
        assert (ful.distance_m, ful.fee_fen, ful.status, use.taken, use.start_min) == (expected, 500, "placed", 1, 1080)
    assert "支付成功" in pushes(shop, BUYER)[-1] and "发货" not in pushes(shop, BUYER)[-1]

    # the console: dispatch to a rider, then delivered
    csrf = await login(shop.client, "boss")
    page = await (await shop.client.get("/console/local/deliveries")).text()
    assert order_no in page and "待派单" in page
    ship = await shop.client.post(f"/console/orders/{placed.id}/ship", data={"_csrf": csrf, "tracking_no": "SF123456"})
    assert ship.status in (400, 409)                                   # not an express order: no tracking number
    assert (await order(shop, order_no)).tracking_no == ""
    sent = await shop.client.post(f"/console/local/deliveries/{placed.id}/dispatch",
                                  data={"_csrf": csrf, "rider": "李师傅 13800000000"}, allow_redirects=False)
    assert sent.status == 303
    await shop.settle()
    assert "已由骑手取货" in pushes(shop, BUYER)[-1] and "李师傅" in pushes(shop, BUYER)[-1]
    again = await shop.client.post(f"/console/local/deliveries/{placed.id}/dispatch",
                                   data={"_csrf": csrf, "rider": "别人"})
    assert again.status == 409
    done = await shop.client.post(f"/console/local/deliveries/{placed.id}/delivered", data={"_csrf": csrf},
                                  allow_redirects=False)
    assert done.status == 303
    await shop.settle()
    assert any("已送达" in p for p in pushes(shop, BUYER)[-2:])    # order.completed may bring another module's push
    assert (await order(shop, order_no)).status == "completed"

    # next time the located address is offered
    listed = await start_delivery(wx)
    assert "1. 王小明 139****5678 南京东路步行街 3号楼502" in listed


async def test_outside_every_zone_and_below_the_minimum_change_nothing(shop):
    wx = simulator(shop)
    await start_delivery(wx)
    far = (await wx.location(BUYER, *FAR_AWAY, "天安门")).text
    assert "不在任何门店的配送范围内" in far
    assert await rows(shop, Address) == 1 and await rows(shop, AddressPoint) == 0   # the demo buyer's only
    async with shop.svc.uows() as uow:
        for zone in (await uow.session.scalars(select(Zone))).all():
            zone.min_order_fen = 5000
        await uow.commit()
    await wx.location(BUYER, *NEAR_PEOPLE_SQUARE, "")
    slots = await say(wx, BUYER, "王小明 13912345678")            # no label, no door: the coordinates
    assert "¥50.00 起送，当前商品 ¥29.90" in slots
    assert await rows(shop, SlotUse) == 0
    assert await rows(shop, SlotUse) == 0 and await rows(shop, OrderFulfilment) == 0


async def test_a_holiday_has_no_slots_and_a_slot_closes_before_it_starts(shop, clock):
    async with shop.svc.uows() as uow:
        store = await uow.session.scalar(select(Store).where(Store.name == "人民广场店"))
        store.exceptions = {"2025-06-07": []}                 # Saturday closed
        await uow.commit()
    clock.at = shanghai(2025, 6, 6, 17, 40)                 # today's 18:00 closes at 17:30
    wx = simulator(shop)
    await start_delivery(wx)
    await wx.location(BUYER, *NEAR_PEOPLE_SQUARE, "南京东路")
    slots = await say(wx, BUYER, "王小明 13912345678")
    assert "今天 18:00" not in slots and "1. 今天 19:00-20:00" in slots
    assert "明天" not in slots and "后天 11:00-12:00" in slots


async def test_a_slot_never_takes_more_orders_than_its_capacity(shop, other_worker):
    """20 buyers at once for a slot of 3 places, on two workers' connections: 3 orders."""
    tenant = await shop.svc.tenant("demo")
    async with shop.svc.uows() as uow:
        store = await uow.session.scalar(select(Store).where(Store.name == "人民广场店"))
        from social_mall_local.models import SlotTemplate

        for t in (await uow.session.scalars(select(SlotTemplate).where(SlotTemplate.store_id == store.id))).all():
            t.capacity = 3
        product = (await list_products(uow, tenant.id, keyword="燕麦片")).items[0]
        sku = (await uow.catalog.skus(tenant.id, product.id))[0]
        buyers = []
        for i in range(20):
            member, _ = await resolve_member(uow, tenant.id, "mp", f"oBuyer_slot_{i:020d}")
            address = await add_address(uow, tenant.id, member.id, "买家", "13912345678", f"南京东路{i}号")
            await D.save_address_point(uow, tenant.id, member.id, address.id, Point(31_235_470, 121_487_400))
            buyers.append((member.id, address.id))
        await uow.commit()
    now = shop.svc.clock()
    slot_key = int(shanghai(2025, 6, 6, 18, 0).timestamp()) // 60

    async def buy(uows, member: int, address: int) -> str:
        try:
            async with uows() as uow:
                await place_order(uow, tenant.id, member, [(sku.id, 1)], address_id=address, now=now,
                                  timeout=timedelta(minutes=30),
                                  fulfilment=(DELIVERY, Choice("delivery", {"slot": slot_key, "addr": address})))
                await uow.commit()
                return "placed"
        except SlotFullError:
            return "full"

    results = await asyncio.gather(*(buy(shop.svc.uows if i % 2 else other_worker, m, a)
                                     for i, (m, a) in enumerate(buyers)))
    assert results.count("placed") == 3 and results.count("full") == 17
    async with shop.svc.uows() as uow:
        (use,) = (await uow.session.scalars(select(SlotUse))).all()
        assert (use.taken, use.capacity) == (3, 3)
        assert await uow.session.scalar(select(func.count()).select_from(OrderFulfilment)) == 3


async def test_an_unpaid_order_gives_its_slot_place_back_once(shop, clock):
    wx = simulator(shop)
    await start_delivery(wx)
    await wx.location(BUYER, *NEAR_PEOPLE_SQUARE, "南京东路")
    await say(wx, BUYER, "王小明 13912345678")
    await say(wx, BUYER, "1")
    placed = await say(wx, BUYER, "确认")
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    async with shop.svc.uows() as uow:
        assert (await uow.session.scalar(select(SlotUse.taken))) == 1
    clock.advance(minutes=31)
    jobs = {j.name: j for j in shop.svc.registry.jobs}
    assert await jobs["orders.cancel_expired"].run() == 2      # ours and the demo order made at start
    await shop.settle()
    assert (await order(shop, order_no)).status == "cancelled"
    tenant = await shop.svc.tenant("demo")
    async with shop.svc.uows() as uow:
        assert (await uow.session.scalar(select(SlotUse.taken))) == 0
        ful = await uow.session.scalar(select(OrderFulfilment))
        assert ful.status == "released"
        assert not await D.release(uow, tenant.id, ful.order_id, shop.svc.clock())   # a repeat: nothing
        await uow.commit()
    async with shop.svc.uows() as uow:
        assert (await uow.session.scalar(select(SlotUse.taken))) == 0


async def test_console_zone_and_slot_forms_refuse_bad_input(shop):
    csrf = await login(shop.client, "boss")
    base = {"_csrf": csrf, "store_id": "1", "name": "东区", "kind": "radius", "radius_m": "3000",
            "tiers": "3000 6.00", "min_order": "10", "active": "1"}
    before = await rows(shop, Zone)
    for bad in ({"tiers": "3km 6"}, {"radius_m": "-1"}, {"kind": "polygon", "polygon": "31.2 121.4"},
                {"min_order": "1e3"}, {"store_id": "999999"}):
        resp = await shop.client.post("/console/local/zones", data={**base, **bad})
        assert resp.status == 400, bad
        assert 'role="alert"' in await resp.text()
    assert await rows(shop, Zone) == before
    ok = await shop.client.post("/console/local/zones", data={**base, "kind": "polygon",
                                                              "polygon": "31.24 121.47\n31.24 121.49\n31.22 121.48"},
                                allow_redirects=False)
    assert ok.status == 303 and await rows(shop, Zone) == before + 1
    slot = {"_csrf": csrf, "store_id": "1", "day_1": "1", "start": "20:00", "end": "21:00", "capacity": "5"}
    for bad in ({"end": "19:00"}, {"capacity": "0"}, {"start": "25:00"}, {"day_1": ""}):
        assert (await shop.client.post("/console/local/slots", data={**slot, **bad})).status == 400, bad
    assert (await shop.client.post("/console/local/slots", data=slot, allow_redirects=False)).status == 303
    week = await (await shop.client.get("/console/local/slots?store_id=1")).text()
    assert "20:00–21:00" in week and "0/5" in week and "0/10" in week
