"""An after-sale refund and the modules that follow `order.refunded` (both backends): the
referrer's commission on the order is reversed in proportion to the money the request
refunded (the referral module's rule), the points earned are taken back in proportion
(loyalty's), and a second request for the rest reverses the remainder: nothing is left
over or reversed twice."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from social_mall.loyalty import service as loyalty
from social_mall.referral import service as referral
from social_mall.referral.rules import reversal_due
from storage.models import Order
from tests.fakes.referral_world import bind, distributor

from after_kit import REQUEST_NO, START, Clock, buy_and_pay, console, make_mall, order, post, say, settle, simulator

BUYER = "oUser_aftersale_commission1"


@pytest.fixture
def clock():
    return Clock(START)


@pytest.fixture
async def shop(backend, engine, tmp_path, fake_wechat, aiohttp_client, clock):
    return await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)


async def ask(wx, pick: str) -> int:
    await say(wx, BUYER, "申请售后")
    await say(wx, BUYER, "1")
    await say(wx, BUYER, pick)
    await say(wx, BUYER, "下一步")
    await say(wx, BUYER, "1")
    return int(REQUEST_NO.search(await say(wx, BUYER, "提交")).group(1))


async def test_a_partial_refund_reverses_the_commission_and_points_in_proportion(shop, clock):
    svc = shop.svc
    tenant = await svc.tenant("demo")
    wx = simulator(shop)
    await wx.event(BUYER, "subscribe")
    d = await distributor(svc.uows, tenant, now=clock())
    async with svc.uows() as uow:
        from social_mall.members.service import resolve_member

        buyer, _ = await resolve_member(uow, tenant.id, "mp", BUYER)
        await uow.commit()
    await bind(svc.uows, tenant, buyer.id, d.code, now=clock())
    order_no = await buy_and_pay(shop, wx, BUYER, "芒果干", 4)              # ¥119.60, free shipping
    placed = await order(shop, order_no)
    async with svc.uows() as uow:
        (c,) = await referral.repo(uow).commissions_for_order(tenant.id, placed.id)
        points = await loyalty.points_balance(uow, tenant.id, buyer.id)
    assert c.amount_fen > 0 and points == 119

    await console(shop)
    first = await ask(wx, "1 x1")
    assert (await post(shop, f"/console/after_sale/{first}/approve")).status == 303
    await settle(shop)
    async with svc.uows() as uow:
        (c1,) = await referral.repo(uow).commissions_for_order(tenant.id, placed.id)
        assert await loyalty.points_balance(uow, tenant.id, buyer.id) == 119 - 119 * 2990 // 11960
    assert c1.reversed_fen == reversal_due(c.amount_fen, 0, 11960, 2990, False) > 0
    assert c1.reversed_fen < c.amount_fen

    rest = await ask(wx, "1")                                                 # the other 3 units
    assert (await post(shop, f"/console/after_sale/{rest}/approve")).status == 303
    await settle(shop)
    async with svc.uows() as uow:
        (c2,) = await referral.repo(uow).commissions_for_order(tenant.id, placed.id)
        assert await loyalty.points_balance(uow, tenant.id, buyer.id) == 0
        status = await uow.session.scalar(select(Order.status).where(Order.id == placed.id))
    assert (c2.reversed_fen, c2.status, status) == (c.amount_fen, "reversed", "refunded")
