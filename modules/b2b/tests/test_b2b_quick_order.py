"""Quick order (快速下单) end to end: codes set in the console; a business member pastes
five lines in one message (full-width digits, ×, *, commas, semicolons), gets a table with
each line's 企业价 or its problem (unknown code, below the minimum, not a whole case, short
stock: nothing to confirm, nothing written), pastes again fixed, confirms, gets checkout's
summary at the same total and pays it in the sandbox. A consumer is not offered it."""

from __future__ import annotations

from sqlalchemy import select

from social_mall_b2b.quick import quick_quote
from social_mall_b2b.rules import parse_quick_order
from storage.models import Order, OrderLine

from b2b_kit import apply_in_chat, console, count, make_mall, pay_in_sandbox, say, simulator
from test_b2b_prices import sku_of

BUYER = "oUser_b2b_quick_buyer_000001"
SHOPPER = "oUser_b2b_quick_shopper_0001"
ADDRESS = "王小明 13912345678 上海市黄浦区南京东路1号"


async def business_with_codes(mall, wx):
    csrf = await console(mall)
    await wx.event(BUYER, "subscribe")
    await apply_in_chat(wx, BUYER)
    from social_mall_b2b.models import Company

    async with mall.svc.uows() as uow:
        c = await uow.session.scalar(select(Company))
    post = mall.client.post
    assert (await post(f"/console/b2b/companies/{c.id}/decide", data={"_csrf": csrf, "verdict": "approve"})).status == 200
    skus = {name: await sku_of(mall, name) for name in ("芒果干", "海苔脆", "黑巧克力", "挂耳咖啡", "每日坚果")}
    mango, seaweed, choc, coffee, nuts = skus.values()
    resp = await post("/console/b2b/lists", data={
        "_csrf": csrf, "name": "批发", "kind": "override", "company_id": str(c.id), "percent_off": "10",
        "tiers": f"{mango.id} 1 25\n{mango.id} 10 22", "active": "1"})
    assert resp.status == 200
    for sku, code, moq, case in ((mango, "A1023", 12, 12), (seaweed, "B77", 1, 1), (choc, "C9", 10, 1),
                                 (coffee, "D-4", 1, 1), (nuts, "E5", 1, 1)):
        resp = await post("/console/b2b/terms", data={"_csrf": csrf, "sku_id": str(sku.id), "moq": str(moq),
                                                      "case_pack": str(case), "code": code.lower()})
        assert resp.status == 200
    resp = await post("/console/b2b/terms", data={"_csrf": csrf, "sku_id": str(coffee.id), "code": "B77"})
    assert resp.status == 400 and "已被其他 SKU 使用" in await resp.text()
    return skus


async def test_quick_order_five_lines_problems_then_fixed_confirmed_and_paid(backend, engine, tmp_path, fake_wechat,
                                                                            aiohttp_client):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = simulator(mall)
    skus = await business_with_codes(mall, wx)
    orders = await count(mall, Order)

    bad = await say(wx, BUYER, "快速下单 A1023 x ２５，b77*3；C9 5, ZZ9 2, E5 × 1000")
    assert "1. A1023 芒果干 500g 企业价 ¥22.00 × 25：需整箱订，最接近 24 件" in bad, bad
    assert "2. B77 海苔脆 10包 企业价 ¥17.91 × 3 = ¥53.73" in bad            # 10% off ¥19.90
    assert "3. C9 黑巧克力 100g 企业价 ¥22.50 × 5：起订量不足，最接近 10 件" in bad
    assert "4. ZZ9 × 2：没有这个商品编码" in bad
    assert "5. E5 每日坚果 30袋 企业价 ¥89.10 × 1000：库存只剩 100 件" in bad
    assert "有 4 处问题" in bad and "确认下单" not in bad
    after_bad = await say(wx, BUYER, "确认下单")          # nothing to confirm: no summary, no order
    assert "请确认订单" not in after_bad and "您要买" not in after_bad
    assert await count(mall, Order) == orders

    good = await say(wx, BUYER, "快速下单 A1023x24 B77 3 C9*10 D-4 2 E5 1")
    # 24 × 22.00 + 3 × 17.91 + 10 × 22.50 + 2 × 53.10 + 1 × 89.10
    assert "商品合计：¥1002.03" in good and "回复「确认下单」" in good, good
    summary = await say(wx, BUYER, "确认下单")
    assert "企业价 ¥22.00 × 24 = ¥528.00" in summary and "商品合计：¥1002.03" in summary, summary
    summary = await say(wx, BUYER, ADDRESS)
    assert "请确认订单" in summary and "应付：¥1002.03" in summary
    order_no = await pay_in_sandbox(mall, await say(wx, BUYER, "确认"))
    async with mall.svc.uows() as uow:
        o = await uow.session.scalar(select(Order).where(Order.order_no == order_no))
        assert (o.status, o.goods_fen, o.discount_fen, o.paid_fen) == ("paid", 100203, 0, 100203)
        lines = {ln.sku_id: (ln.price_fen, ln.qty) for ln in
                 (await uow.session.scalars(select(OrderLine).where(OrderLine.order_id == o.id))).all()}
    assert lines[skus["芒果干"].id] == (2200, 24) and lines[skus["每日坚果"].id] == (8910, 1)

    # 「再来一单」 at today's prices: the list now takes 20% off retail instead of 10%
    from social_mall_b2b.models import PriceListRow
    from tests.fakes.console_kit import csrf_of

    async with mall.svc.uows() as uow:
        pl = await uow.session.scalar(select(PriceListRow))
    mango = skus["芒果干"].id
    resp = await mall.client.post(f"/console/b2b/lists/{pl.id}", data={
        "_csrf": await csrf_of(mall.client, "/console/b2b/prices"), "name": "批发", "kind": "override",
        "company_id": str(pl.company_id), "percent_off": "20", "tiers": f"{mango} 1 25\n{mango} 10 21", "active": "1"})
    assert resp.status == 200
    again = await say(wx, BUYER, "再来一单")
    assert f"重下订单 {order_no}" in again and "请确认订单" in again, again
    # 24 × 21.00 + 3 × 15.92 + 10 × 20.00 + 2 × 47.20 + 1 × 79.20
    assert "企业价 ¥21.00 × 24 = ¥504.00" in again and "企业价 ¥15.92 × 3" in again and "应付：¥925.36" in again
    assert "仅对已认证的企业账户开放" in await say(wx, SHOPPER, "再来一单")

    await wx.event(SHOPPER, "subscribe")
    assert "仅对已认证的企业账户开放" in await say(wx, SHOPPER, "快速下单 B77 3")
    assert "一条消息发送商品编码和数量" in await say(wx, BUYER, "快速下单")


async def test_two_hundred_lines_parse_and_price_in_one_quote(backend, engine, tmp_path, fake_wechat, aiohttp_client):
    """200 lines: parsed and priced through the service in three queries (the figure is in
    the module's README, measured with modules/b2b/bench_quick.py)."""
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = simulator(mall)
    skus = await business_with_codes(mall, wx)
    text = "快速下单 " + "，".join(f"B77 x 1, ZZ{i} 2" for i in range(100))
    items, unparsed = parse_quick_order(text.removeprefix("快速下单 "))
    assert items[0] == ("B77", 100) and len(items) == 101 and not unparsed
    tenant = await mall.svc.tenant("demo")
    from social_mall.members.service import resolve_member

    async with mall.svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, "mp", BUYER)
        q = await quick_quote(uow, tenant.id, member.id, items, unparsed, mall.svc.clock())
    assert q.lines[0].unit_fen == 1791 and q.lines[0].sku_id == skus["海苔脆"].id
    assert sum(1 for ln in q.lines if ln.problem == "unknown") == 100
    reply = await say(wx, BUYER, text)
    assert "有 100 处问题" in reply
