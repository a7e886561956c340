"""Points earned on an order that is refunded are taken back in full, even when they were
spent meanwhile: the balance goes negative (one append-only clawback entry), 「会员」 says
what is owed, and spending points is refused until the debt is repaid; checking out
without points still works. Through the real paths: signed, encrypted chat, sandbox
payments (H5 confirm → signed notify), the console's refund (CSRF form → outbox →
gateway → order.refunded → loyalty), both backends."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from social_mall.loyalty import service as loyalty
from social_mall.members.service import resolve_member
from social_mall.orders.service import find_order
from storage.loyalty_models import PointsEntry
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN
from tests.fakes.console_kit import csrf_of, login, make_admin

USER = "oUser_e2e_clawback_00000001"


@pytest.fixture
def wx(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


async def say(wx, text: str) -> str:
    answer = await wx.text(USER, text)
    assert answer.status == 200, answer.body
    return answer.text


async def to_summary(wx, keyword: str, *, first: bool) -> str:
    """Search → (the first product) → its first SKU: the summary (a new customer sends the address)."""
    if "搜索结果" in await say(wx, f"搜索 {keyword}"):
        await wx.text(USER, "1")
    summary = await say(wx, "1")
    if first:
        return await say(wx, "王小明 13912345678 广东省深圳市南山区科技园1号")
    return summary                  # the saved address, pre-selected


async def pay(mall, placed: str) -> str:
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    pay_url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    page = await (await mall.client.get(pay_url[pay_url.index("/h5/"):])).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    await mall.settle()
    return order_no


async def points(mall) -> tuple[int, bool, list[tuple[int, str]]]:
    """(balance, balance == ledger sum, the ledger as (delta, kind))"""
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, "mp", USER)
        ledger = [(e.delta, e.kind) for e in (await uow.session.scalars(
            select(PointsEntry).where(PointsEntry.member_id == member.id).order_by(PointsEntry.id))).all()]
        return (await loyalty.points_balance(uow, tenant.id, member.id),
                await loyalty.ledger_consistent(uow, tenant.id, member.id), ledger)


async def test_points_spent_before_the_refund_are_owed_and_block_spending_until_repaid(mall, wx):
    await wx.event(USER, "subscribe")
    # 1. ¥168 paid → 168 points
    first = await to_summary(wx, "普洱", first=True)
    assert "应付：¥168.00" in first
    first_no = await pay(mall, await say(wx, "确认"))
    assert (await points(mall))[0] == 168

    # 2. all of them spent on a second order (placed, not paid yet)
    assert "可用 168 积分抵扣" in await to_summary(wx, "龙井", first=False)
    assert "积分抵扣（168 积分）：-¥1.68" in await say(wx, "用积分")
    second = await say(wx, "确认")
    assert "下单成功" in second
    second_no = re.search(r"订单号：(\d+)", second).group(1)
    assert (await points(mall))[0] == 0

    # 3. the merchant refunds the first order in full from the console
    await make_admin(mall.svc.uows, "fin_claw", role="finance")
    await login(mall.client, "fin_claw")
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        first_id = (await find_order(uow, tenant.id, first_no)).id
    csrf = await csrf_of(mall.client, f"/console/orders/{first_id}")
    resp = await mall.client.post(f"/console/orders/{first_id}/refund",
                                  data={"_csrf": csrf, "amount": "", "reason": "不要了", "confirm": "1"},
                                  allow_redirects=False)
    assert resp.status == 303, await resp.text()
    for _ in range(3):   # the gateway call, then order.refunded
        await mall.settle()
    async with mall.svc.uows() as uow:
        assert (await find_order(uow, tenant.id, first_no)).status == "refunded"
    balance, consistent, ledger = await points(mall)
    assert (balance, consistent) == (-168, True)
    assert ledger[-1] == (-168, "clawback")                  # one entry, the whole clawback

    # 4. 「会员」 says what is owed
    home = await say(wx, "会员")
    assert "积分：-168" in home and "欠 168 积分" in home and "补足前不能用积分抵扣" in home

    # 5. spending is refused, buying without points still works
    summary = await to_summary(wx, "龙井", first=False)
    assert "应付：¥298.00" in summary and "欠 168 积分" in summary and "可用" not in summary
    refused = await say(wx, "用积分 10")
    assert "欠 168 积分" in refused and "不用积分" in refused
    refused = await say(wx, "用积分")
    assert "欠 168 积分" in refused
    assert (await points(mall))[0] == -168
    placed = await say(wx, "确认")
    assert "下单成功" in placed and "应付：¥298.00" in placed
    assert (await points(mall))[0] == -168

    # 6. repaid: the unpaid second order is cancelled and its 168 points come back
    listing = await say(wx, "我的订单")
    n = re.search(r"^(\d+)\. .*待付款 ¥296\.32", listing, re.M).group(1)
    assert second_no in await say(wx, n)
    assert "已取消" in await say(wx, "取消订单")
    await mall.settle()
    balance, consistent, _ = await points(mall)
    assert (balance, consistent) == (0, True)
    assert "积分：0" in await say(wx, "会员")
