"""Store pick-up (门店自提) and verification codes (核销), end to end through the signed
official-account endpoint, the sandbox pay notify and the console over HTTP:

a member sends a location, picks a store, orders for pick-up, pays, gets the code (push
and 「我的券码」, H5 page with QR); a staff member bound with the console's one-time code
scans it (scancode_waitmsg) and the order completes. Every refusal (not staff, wrong
store, unknown, another tenant's, expired, used, too many tries) is a clear answer and
changes nothing."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from sqlalchemy import func, select

from social_mall_local.models import Attempt, OrderFulfilment, Ticket, Verification
from social_mall_local.verify import lookup
from storage.models import Order
from tests.fakes.pay_kit import XRW, oauth_payer

from local_kit import (
    PEOPLE_SQUARE, Clock, bind_staff, buy_for_pickup, codes_in, make_mall, order, pay_in_sandbox, pushes, say,
    shanghai, simulator,
)

BUYER = "oUser_local_pickup_buyer_0001"
CLERK = "oUser_local_pickup_clerk_0001"
CLERK2 = "oUser_local_pickup_clerk_0002"
OTHER_CLERK = "oUser_local_pickup_lujiazui_01"


@pytest.fixture
def clock():
    return Clock(shanghai(2025, 6, 6, 12, 0))     # a Friday, noon


@pytest.fixture
async def shop(backend, engine, tmp_path, fake_wechat, aiohttp_client, clock):
    return await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)


async def ticket_row(mall, code: str) -> Ticket:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(Ticket).where(Ticket.code == code))


async def count(mall, model) -> int:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(func.count()).select_from(model))


async def paid_pickup(shop, wx, qty: int = 2) -> tuple[str, str]:
    """A paid pick-up order of 桂花乌龙 at 人民广场店, today 13:00; (order no, code)."""
    confirm = await buy_for_pickup(shop, wx, BUYER, "桂花乌龙", qty, store=2)  # 陆家嘴, 人民广场, 徐家汇
    order_no = await pay_in_sandbox(shop, await say(wx, BUYER, "确认"))
    (code,) = codes_in(pushes(shop, BUYER)[-1])
    assert confirm
    return order_no, code


async def test_location_store_pickup_pay_code_and_a_staff_scan_completes_the_order(shop):
    wx = simulator(shop)
    await wx.event(BUYER, "subscribe")
    listed = (await wx.location(BUYER, *PEOPLE_SQUARE, "人民广场")).text
    assert listed.splitlines()[1].startswith("1. 人民广场店")
    assert "设为您的门店" in await say(wx, BUYER, "1")

    confirm = await buy_for_pickup(shop, wx, BUYER, "桂花乌龙", 2)
    assert "门店自提：人民广场店（上海市黄浦区南京东路800号），今天 13:00-14:00" in confirm
    assert "运费" not in confirm and "应付：¥72.00" in confirm          # pick-up is free
    order_no = await pay_in_sandbox(shop, await say(wx, BUYER, "确认"))
    placed = await order(shop, order_no)
    assert (placed.status, placed.fulfilment, placed.shipping_fen, placed.paid_fen) == ("paid", "pickup", 0, 7200)
    async with shop.svc.uows() as uow:
        ful = await uow.session.scalar(select(OrderFulfilment).where(OrderFulfilment.order_id == placed.id))
        assert ful.pickup_at == shanghai(2025, 6, 6, 13, 0)

    paid_push, code_push = pushes(shop, BUYER)[-2:]
    assert "支付成功" in paid_push and "发货" not in paid_push
    (code,) = codes_in(code_push)
    assert code_push.startswith("取货码：") and "桂花乌龙 10包 ×2" in code_push and "人民广场店" in code_push
    link = re.search(r"(http\S+/local/ticket/demo/\d+\?s=\w+)", code_push).group(1)
    page = await (await shop.client.get(link[link.index("/local/"):])).text()
    assert 'src="data:image/png;base64,' in page and re.sub(r"\s", "", page).count(code) == 1
    assert codes_in(await say(wx, BUYER, "我的券码")) == [code]

    await bind_staff(shop, wx, CLERK, "人民广场店")
    shown = (await wx.scan(CLERK, "LOCAL_VERIFY", code)).text          # the menu's scan button
    assert "核销确认" in shown and "桂花乌龙 10包 ×2" in shown and "人民广场店" in shown
    done = await say(wx, CLERK, "确认")
    assert "核销成功" in done and "订单已完成" in done
    assert (await order(shop, order_no)).status == "completed"
    await shop.settle()
    assert any("已在「人民广场店」核销" in p for p in pushes(shop, BUYER)[-2:])   # another module may push after it
    t = await ticket_row(shop, code)
    assert (t.status, t.uses_left) == ("used", 0)
    async with shop.svc.uows() as uow:
        (v,) = (await uow.session.scalars(select(Verification))).all()
        assert (v.ticket_id, v.store_id, v.uses, v.uses_left, v.actor) == (t.id, t.store_id, 1, 0, v.actor)
        assert v.staff_member_id is not None and v.actor.startswith("staff:")
        assert (await uow.session.get(Order, placed.id)).status == "completed"
    # used: refused, nothing changes
    assert "已经核销过了" in (await wx.scan(CLERK, "LOCAL_VERIFY", code)).text
    assert await count(shop, Verification) == 1
    assert codes_in(await say(wx, BUYER, "我的券码")) == []


async def test_refusals_are_clear_and_change_nothing(shop, clock):
    wx = simulator(shop)
    order_no, code = await paid_pickup(shop, wx)
    await bind_staff(shop, wx, OTHER_CLERK, "陆家嘴店")
    before = await ticket_row(shop, code)

    # a member who is not staff can't even look a code up
    assert "您还不是核销员" in await say(wx, BUYER, f"核销 {code}")
    # another store's staff: told which store, nothing redeemed
    assert "只能在该门店核销" in await say(wx, OTHER_CLERK, f"核销 {code[:4]} {code[4:8]} {code[8:]}")
    assert "「人民广场店」" in await say(wx, OTHER_CLERK, f"核销 {code}")
    # a code of no ticket, a malformed one
    assert "没有这个券码" in await say(wx, OTHER_CLERK, "核销 000000000001")
    assert "券码是 12 位数字" in await say(wx, OTHER_CLERK, "核销 12345")
    after = await ticket_row(shop, code)
    assert (after.status, after.uses_left, after.store_id) == (before.status, before.uses_left, before.store_id)
    assert await count(shop, Verification) == 0
    assert (await order(shop, order_no)).status == "paid"

    # expired: the validity ended (30 days after the pick-up time)
    await bind_staff(shop, wx, CLERK, "人民广场店")
    clock.at = before.valid_until
    assert "已于 2025-07-06 13:00 过期" in await say(wx, CLERK, f"核销 {code}")
    assert (await ticket_row(shop, code)).uses_left == 1 and await count(shop, Verification) == 0


async def test_guessing_is_limited_per_staff_member_and_logged(shop, clock):
    wx = simulator(shop)
    _, code = await paid_pickup(shop, wx)
    await bind_staff(shop, wx, CLERK, "人民广场店")
    for n in range(10):
        assert "没有这个券码" in await say(wx, CLERK, f"核销 1000000000{n:02d}")
    # at the limit even the right code is refused (no look-up at all)
    assert "失败次数太多，请 10 分钟后再试" in await say(wx, CLERK, f"核销 {code}")
    async with shop.svc.uows() as uow:
        (row,) = (await uow.session.scalars(select(Attempt).where(Attempt.subject.like("staff:%")))).all()
        assert (row.failures, row.last_reason) == (10, "unknown")
    assert (await ticket_row(shop, code)).uses_left == 1
    clock.advance(minutes=10)                          # the next window
    assert "核销确认" in await say(wx, CLERK, f"核销 {code}")


async def test_another_tenants_code_is_unknown_here(shop):
    from tests.fakes.console_kit import make_tenant, paid_order

    wx = simulator(shop)
    _, code = await paid_pickup(shop, wx)
    await bind_staff(shop, wx, CLERK, "人民广场店")
    other = await make_tenant(shop.svc.uows, "other")
    async with shop.svc.uows() as uow:                 # the same code looked up in the other tenant
        found = await lookup(uow, other, code, shop.svc.clock(), staff=None)
    assert found.reason == "unknown"
    await paid_order(shop.svc.uows, other, "oOther_buyer_000000000000001")
    assert "核销确认" in await say(wx, CLERK, f"核销 {code}")


async def test_two_staff_redeeming_one_code_at_once_succeed_once(shop):
    wx = simulator(shop)
    _, code = await paid_pickup(shop, wx)
    await bind_staff(shop, wx, CLERK, "人民广场店")
    wx2 = simulator(shop)
    await bind_staff(shop, wx2, CLERK2, "人民广场店")
    assert "核销确认" in await say(wx, CLERK, f"核销 {code}")
    assert "核销确认" in await say(wx2, CLERK2, f"核销 {code}")
    answers = await asyncio.gather(say(wx, CLERK, "确认"), say(wx2, CLERK2, "确认"))
    assert sorted("核销成功" in a for a in answers) == [False, True], answers
    assert any("已经核销过了" in a for a in answers)
    assert await count(shop, Verification) == 1
    assert (await ticket_row(shop, code)).uses_left == 0


async def test_the_ticket_page_needs_its_signed_link(shop):
    wx = simulator(shop)
    _, code = await paid_pickup(shop, wx)
    link = re.search(r"(/local/ticket/demo/(\d+)\?s=(\w+))", pushes(shop, BUYER)[-1])
    path, ticket_id, sig = link.groups()
    assert (await shop.client.get(path)).status == 200
    for bad in (f"/local/ticket/demo/{ticket_id}?s={sig[:-1]}0", f"/local/ticket/demo/{ticket_id}",
                f"/local/ticket/demo/{int(ticket_id) + 1}?s={sig}", f"/local/ticket/nope/{ticket_id}?s={sig}",
                f"/local/ticket/demo/%C2%B2?s={sig}", f"/local/ticket/demo/{ticket_id}?s=%F0%9F%98%80"):
        resp = await shop.client.get(bad)
        assert resp.status == 404, bad
        assert code not in await resp.text()


async def test_the_pay_page_address_picker_leaves_a_pickup_order_alone(shop):
    wx = simulator(shop)
    await buy_for_pickup(shop, wx, BUYER, "桂花乌龙", 1, store=2)
    placed = await say(wx, BUYER, "确认")
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    path = url[url.index("/h5/"):]
    await oauth_payer(shop, shop.client, path, BUYER)
    before = await order(shop, order_no)
    order_path, _, query = path.partition("?")
    resp = await shop.client.post(f"{order_path}/address?{query}", headers={**XRW, "Content-Type": "application/json"},
                                  data=json.dumps({"userName": "李四", "telNumber": "13900139000", "provinceName": "上海市",
                                                   "cityName": "上海市", "countryName": "浦东新区",
                                                   "detailInfo": "世纪大道200号"}, ensure_ascii=False))
    assert resp.status == 409 and "不是快递配送" in (await resp.json())["message"]
    assert await order(shop, order_no) == before
