"""The demo shop's appointment (DEMO_SHOWCASE, both backends): 「预约」 offers the demo tea
class, which a member books and pays the deposit for through the signed endpoint and the
sandbox payment; a later start of the same shop adds no second service."""

from __future__ import annotations

from sqlalchemy import func, select

from social_mall_local.demo import SERVICE
from social_mall_local.models import Booking, Resource
from storage.models import Product

from local_kit import Clock, make_mall, order, pay_in_sandbox, say, shanghai, simulator

BUYER = "oUser_local_demo_booking_01"


async def counts(mall) -> tuple[int, int]:
    async with mall.svc.uows() as uow:
        products = await uow.session.scalar(select(func.count()).select_from(Product).where(Product.title == SERVICE[0]))
        resources = await uow.session.scalar(select(func.count()).select_from(Resource))
        return int(products), int(resources)


async def test_the_demo_service_can_be_booked_and_paid(backend, engine, tmp_path, fake_wechat, aiohttp_client):
    clock = Clock(shanghai(2025, 6, 6, 12, 0))        # Friday noon; both demo stores open 10:00–22:00 or later
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock, demo_showcase=True)
    assert await counts(mall) == (1, 2)               # the tea class, a tea master at each of two stores
    wx = simulator(mall)
    await wx.event(BUYER, "subscribe")
    services = await say(wx, BUYER, "预约")
    assert "1. 茶艺体验课 · 60 分钟 · ¥68.00（预约付定金 ¥20.00）" in services, services
    stores = await say(wx, BUYER, "1")
    assert "人民广场店" in stores and "陆家嘴店" in stores and "徐家汇店" not in stores, stores
    assert "06-06 周五（今天）" in await say(wx, BUYER, "1")
    await say(wx, BUYER, "1")
    confirm = await say(wx, BUYER, "1")
    assert "请确认预约" in confirm and "现在支付定金 ¥20.00" in confirm, confirm
    placed = await say(wx, BUYER, "确认")
    assert "应付：¥20.00" in placed, placed
    order_no = await pay_in_sandbox(mall, placed)
    assert (await order(mall, order_no)).paid_fen == 2000
    async with mall.svc.uows() as uow:
        assert (await uow.session.scalar(select(Booking.status))) == "booked"

    again = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock, demo_showcase=True)
    assert await counts(again) == (1, 2)
