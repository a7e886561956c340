"""Local services fill the core's place seam (social_mall/places.py): the store a member
picked and an order's pick-up store, with their city, come before the core's address
city; a member who picked none has the core's places only."""

from __future__ import annotations

import pytest

from sqlalchemy import select

from social_mall.places import member_places, order_places
from social_mall_local.models import Store

from local_kit import PEOPLE_SQUARE, Clock, buy_for_pickup, make_mall, order, pay_in_sandbox, say, shanghai, simulator

BUYER = "oUser_local_places_buyer_001"


@pytest.fixture
def clock():
    return Clock(shanghai(2025, 6, 6, 12, 0))     # a Friday, noon


@pytest.fixture
async def shop(backend, engine, tmp_path, fake_wechat, aiohttp_client, clock):
    return await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)


async def test_the_picked_store_and_the_pickup_store_are_the_members_and_the_orders_places(shop):
    wx = simulator(shop)
    tenant = (await shop.svc.tenant("demo")).id
    sources = shop.svc.registry.place_sources
    await wx.event(BUYER, "subscribe")
    await wx.location(BUYER, *PEOPLE_SQUARE, "人民广场")
    assert "设为您的门店" in await say(wx, BUYER, "1")
    confirm = await buy_for_pickup(shop, wx, BUYER, "桂花乌龙", 1)
    assert "人民广场店" in confirm
    placed = await order(shop, await pay_in_sandbox(shop, await say(wx, BUYER, "确认")))
    async with shop.svc.uows() as uow:
        store = await uow.session.scalar(select(Store).where(Store.tenant_id == tenant, Store.name == "人民广场店"))
        mine = await member_places(uow, tenant, placed.member_id, sources)
        bought = await order_places(uow, tenant, placed.id, sources)
        nobody = await member_places(uow, tenant, 0, sources)
    assert mine[:2] == (f"store:{store.id}", "city:上海"), mine
    assert bought[:2] == (f"store:{store.id}", "city:上海"), bought
    assert nobody == ()
