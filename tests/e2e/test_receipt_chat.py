"""Receipt of a shipped order, through the signed endpoint (both backends): 「确认收货」 on
the order's detail completes it (a repeat says so, an unshipped one is refused with
nothing changed); the auto-confirm job tells the member the day before and confirms the
order after the tenant's period."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from handlers.mp_simulator import MPSimulator
from social_mall.orders.service import find_order
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, Mall, app_settings
from tests.fakes.console_kit import csrf_of, login, make_admin

USER = "oUser_e2e_receipt_000000001"


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
async def shop(backend, engine, fake_wechat, aiohttp_client, tmp_path):
    from bot import build_app
    from handlers.context import SERVICES

    clock = Clock()
    app = build_app(app_settings(backend, tmp_path, fake_wechat.base_url), auto_setup=True, clock=clock)
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    mall = Mall(client, app, app[SERVICES].settings, fake_wechat)
    mall.clock = clock
    return mall


async def say(wx, text: str) -> str:
    answer = await wx.text(USER, text)
    assert answer.status == 200, answer.body
    return answer.text


async def paid_in_chat(shop, wx) -> str:
    await wx.event(USER, "subscribe")
    await say(wx, "搜索 芒果干")
    await say(wx, "1 x1")
    await say(wx, "王小明 13912345678 广东省深圳市南山区科技园1号")
    placed = await say(wx, "确认")
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    pay_url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    page = await (await shop.client.get(pay_url[pay_url.index("/h5/"):])).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await shop.client.post(action)).text()
    await shop.settle()
    return order_no


async def ship(shop, order_no: str) -> None:
    tenant = await shop.svc.tenant("demo")
    async with shop.svc.uows() as uow:
        oid = (await find_order(uow, tenant.id, order_no)).id
    await make_admin(shop.svc.uows, "boss_receipt")
    await login(shop.client, "boss_receipt")
    resp = await shop.client.post(f"/console/orders/{oid}/ship", allow_redirects=False,
                                  data={"_csrf": await csrf_of(shop.client), "tracking_no": "SF9000000001"})
    assert resp.status == 303
    await shop.settle()


async def status(shop, order_no: str) -> str:
    tenant = await shop.svc.tenant("demo")
    async with shop.svc.uows() as uow:
        return (await find_order(uow, tenant.id, order_no)).status


def wx_of(shop) -> MPSimulator:
    return MPSimulator(shop.client.session, str(shop.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


async def test_the_member_confirms_receipt_in_chat(shop):
    wx = wx_of(shop)
    order_no = await paid_in_chat(shop, wx)
    await say(wx, "我的订单")
    assert "已付款" in await say(wx, "1")
    assert "还未发货，不能确认收货" in await say(wx, "确认收货")                  # paid, not shipped yet
    assert await status(shop, order_no) == "paid"
    await ship(shop, order_no)
    await say(wx, "我的订单")
    detail = await say(wx, "1")
    assert "收到货了请回复「确认收货」" in detail
    done = await say(wx, "确认收货")
    assert f"已确认收货，订单 {order_no} 已完成" in done
    assert await status(shop, order_no) == "completed"
    assert "已完成" in await say(wx, "确认收货")                                 # a repeat: no change
    tenant = await shop.svc.tenant("demo")
    async with shop.svc.uows() as uow:
        assert await uow.outbox.count("order.completed") == 1
    assert tenant


async def test_the_day_before_the_member_is_told_then_the_order_is_confirmed(shop):
    wx = wx_of(shop)
    order_no = await paid_in_chat(shop, wx)
    await ship(shop, order_no)
    jobs = {j.name: j for j in shop.svc.registry.jobs}
    shop.clock.at += timedelta(days=8, hours=23)                 # the deployment's 10 days: not yet
    assert await jobs["orders.receipt_reminders"].run() == 0
    shop.clock.at += timedelta(hours=2)
    assert await jobs["orders.receipt_reminders"].run() == 1
    assert await jobs["orders.receipt_reminders"].run() == 0
    await shop.settle()
    texts = [m["text"]["content"] for m in shop.fake.sent_messages(USER) if m.get("msgtype") == "text"]
    assert any("自动确认收货" in t and order_no in t for t in texts)
    assert await jobs["orders.auto_complete"].run() == 0
    shop.clock.at += timedelta(days=1)
    assert await jobs["orders.auto_complete"].run() == 1
    assert await status(shop, order_no) == "completed"


async def test_the_merchant_sets_the_auto_confirm_period_in_the_settings(shop):
    wx = wx_of(shop)
    order_no = await paid_in_chat(shop, wx)
    await ship(shop, order_no)                               # and logs in as the shop's owner
    page = await (await shop.client.get("/console/settings")).text()
    assert "自动确认收货" in page and "当前：默认" in page
    tenant = await shop.svc.tenant("demo")
    bad = await shop.client.post("/console/settings", allow_redirects=False,
                                 data={"_csrf": await csrf_of(shop.client), "auto_complete_days": "99"})
    assert bad.status == 400
    async with shop.svc.uows() as uow:
        assert (await uow.tenants.auto_complete_days())[tenant.id] is None
    ok = await shop.client.post("/console/settings", allow_redirects=False,
                                data={"_csrf": await csrf_of(shop.client), "auto_complete_days": "3"})
    assert ok.status == 303
    assert "当前：3 天" in await (await shop.client.get("/console/settings")).text()
    jobs = {j.name: j for j in shop.svc.registry.jobs}
    shop.clock.at += timedelta(days=3, minutes=1)
    assert await jobs["orders.auto_complete"].run() == 1
    assert await status(shop, order_no) == "completed"
