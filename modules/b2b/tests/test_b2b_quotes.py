"""Quotes (询价) end to end: a business member asks in chat, the console answers with
prices and an expiry (a bad form changes nothing), the answer is pushed, the member
accepts once and the order is placed at exactly the quoted prices and paid in the
sandbox; accepting again, or after the expiry, places nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from social_mall_b2b.models import Quote
from storage.models import Order, OrderLine

from tests.fakes.console_kit import csrf_of

from b2b_kit import Clock, count, make_mall, pay_in_sandbox, pushes, say, simulator
from test_b2b_quick_order import BUYER, SHOPPER, business_with_codes

SHANGHAI = timezone(timedelta(hours=8))
ADDRESS = "王小明 13912345678 上海市黄浦区南京东路1号"


@pytest.fixture
def clock():
    return Clock(datetime(2030, 6, 6, 12, 0, tzinfo=SHANGHAI).astimezone(timezone.utc))


async def test_ask_answer_accept_once_and_pay_at_the_quoted_prices(backend, engine, tmp_path, fake_wechat,
                                                                    aiohttp_client, clock):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    wx = simulator(mall)
    skus = await business_with_codes(mall, wx)
    csrf = await csrf_of(mall.client, "/console/b2b/quotes")   # logged in by business_with_codes

    assert "询价 A1023 x 500" in await say(wx, BUYER, "询价")
    assert "看不懂或不存在的商品编码：ZZ9" in await say(wx, BUYER, "询价 A1023 x 480, ZZ9 3")
    await wx.event(SHOPPER, "subscribe")
    assert "仅对已认证的企业账户开放" in await say(wx, SHOPPER, "询价 B77 3")
    assert await count(mall, Quote) == 0
    asked = await say(wx, BUYER, "询价 A1023 x 192，B77*120")
    assert "已提交询价 #" in asked and "芒果干 500g × 192" in asked and "海苔脆 10包 × 120" in asked
    async with mall.svc.uows() as uow:
        q = await uow.session.scalar(select(Quote))
    assert "待报价" in await say(wx, BUYER, "我的询价")

    page = await (await mall.client.get("/console/b2b/quotes")).text()
    assert f"#{q.id}" in page and "上海味之源餐饮管理有限公司" in page
    mango, seaweed = skus["芒果干"].id, skus["海苔脆"].id
    today = "2030-06-06"
    bad = await mall.client.post(f"/console/b2b/quotes/{q.id}/answer",
                                 data={"_csrf": csrf, f"price_{mango}": "18", "expires_on": today})
    assert bad.status == 400 and "每一行都要填" in await bad.text()
    bad = await mall.client.post(f"/console/b2b/quotes/{q.id}/answer", data={
        "_csrf": csrf, f"price_{mango}": "18", f"price_{seaweed}": "15.5", "expires_on": "2030-06-05"})
    assert bad.status == 400 and "有效期" in await bad.text()
    async with mall.svc.uows() as uow:
        assert (await uow.session.get(Quote, q.id)).status == "requested"
    ok = await mall.client.post(f"/console/b2b/quotes/{q.id}/answer", data={
        "_csrf": csrf, f"price_{mango}": "18", f"price_{seaweed}": "15.50", "expires_on": today})
    assert ok.status == 200
    again = await mall.client.post(f"/console/b2b/quotes/{q.id}/answer", data={
        "_csrf": csrf, f"price_{mango}": "1", f"price_{seaweed}": "1", "expires_on": today})
    assert again.status == 409
    await mall.settle()
    pushed = pushes(mall, BUYER)[-1]
    # 192 × 18.00 + 120 × 15.50 = 3456 + 1860 (120: above the retail cap of 99 a line)
    assert f"询价 #{q.id} 已报价：合计 ¥5316.00" in pushed and f"接受报价 {q.id}" in pushed

    orders = await count(mall, Order)
    ask_address = await say(wx, BUYER, f"接受报价 {q.id}")
    assert "请发来收货地址" in ask_address and await count(mall, Order) == orders
    placed = await say(wx, BUYER, ADDRESS)
    assert "下单成功" in placed and "应付：¥5316.00" in placed, placed
    assert "已经下过单了" in await say(wx, BUYER, f"接受报价 {q.id}")
    assert await count(mall, Order) == orders + 1
    order_no = await pay_in_sandbox(mall, placed)
    async with mall.svc.uows() as uow:
        o = await uow.session.scalar(select(Order).where(Order.order_no == order_no))
        lines = {ln.sku_id: (ln.price_fen, ln.qty) for ln in
                 (await uow.session.scalars(select(OrderLine).where(OrderLine.order_id == o.id))).all()}
        assert (o.status, o.goods_fen, o.paid_fen, o.source) == ("paid", 531600, o.total_fen, f"b2b:quote:{q.id}")
        assert (await uow.session.get(Quote, q.id)).order_id == o.id
    assert lines == {mango: (1800, 192), seaweed: (1550, 120)}

    # a second quote, answered, accepted after its expiry: nothing placed
    await say(wx, BUYER, "询价 C9 x 20")
    async with mall.svc.uows() as uow:
        q2 = (await uow.session.scalars(select(Quote).order_by(Quote.id.desc()))).first()
    choc = skus["黑巧克力"].id
    ok = await mall.client.post(f"/console/b2b/quotes/{q2.id}/answer", data={
        "_csrf": csrf, f"price_{choc}": "20", "expires_on": today})
    assert ok.status == 200
    clock.advance(days=1)            # 2030-06-07 12:00 Shanghai: past the end of the 6th
    assert "已过期" in await say(wx, BUYER, f"接受报价 {q2.id}")
    assert "报价已过期" in await say(wx, BUYER, "我的询价")
    assert await count(mall, Order) == orders + 1
    async with mall.svc.uows() as uow:
        assert (await uow.session.get(Quote, q2.id)).status == "answered"


async def test_quick_orders_and_accepted_quotes_through_a_second_account_are_paid_at_its_merchant(
        backend, engine, tmp_path, fake_wechat, aiohttp_client, aiohttp_server, clock):
    import re

    from tests.channels_kit import MCH2, open_native, opened, second_entrance

    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    wx2, fake2, account, merchant = await second_entrance(mall, aiohttp_server, tmp_path)
    await business_with_codes(mall, wx2)
    csrf = await csrf_of(mall.client, "/console/b2b/quotes")
    # a quick order (checkout's place)
    assert "回复「确认下单」" in await say(wx2, BUYER, "快速下单 B77 3")
    await say(wx2, BUYER, "确认下单")
    assert "请确认订单" in await say(wx2, BUYER, ADDRESS)
    quick = await say(wx2, BUYER, "确认")
    # a quote answered in the console and accepted in chat (the quote's own place)
    assert "已提交询价 #" in await say(wx2, BUYER, "询价 B77*120")
    async with mall.svc.uows() as uow:
        q = await uow.session.scalar(select(Quote))
    seaweed = await sku_id_of(mall, "海苔脆")
    ok = await mall.client.post(f"/console/b2b/quotes/{q.id}/answer", data={
        "_csrf": csrf, f"price_{seaweed}": "15.50", "expires_on": "2030-06-06"})
    assert ok.status == 200, await ok.text()
    accepted = await say(wx2, BUYER, f"接受报价 {q.id}")    # the address is saved by now
    assert "下单成功" in accepted, accepted
    for text in (quick, accepted):
        order_no = re.search(r"订单号：(\d+)", text).group(1)
        assert await open_native(mall, order_no) == (account, merchant)
        assert opened(fake2, order_no) == [MCH2]


async def sku_id_of(mall, name: str) -> int:
    from test_b2b_prices import sku_of

    return (await sku_of(mall, name)).id
