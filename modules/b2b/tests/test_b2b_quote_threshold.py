"""The quote threshold (console 询价 → 大额询价门槛): from that many pieces of one line, quick
order tells the business buyer 「数量较大，可回复「询价 …」获取报价」 beside the 企业价, and the
product card says from how many pieces a quote is worth asking; 0 (the default) says
nothing; a consumer never sees it; a bad value is refused, nothing written."""

from __future__ import annotations

import re

from sqlalchemy import select

from social_mall_b2b.models import ShopTerms
from storage.models import AuditEntry

from b2b_kit import count, make_mall, say, simulator
from test_b2b_quick_order import BUYER, SHOPPER, business_with_codes

ASK = "数量较大，可回复「询价"


async def test_lines_past_the_threshold_are_pointed_to_a_quote(backend, engine, tmp_path, fake_wechat,
                                                               aiohttp_client):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = simulator(mall)
    await business_with_codes(mall, wx)        # signs the console in
    page = await (await mall.client.get("/console/b2b/quotes")).text()
    csrf = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)
    post = mall.client.post

    # default: no threshold, no hint
    table = await say(wx, BUYER, "快速下单 A1023 x 48, B77 3")
    assert "企业价 ¥22.00 × 48 = ¥1056.00" in table and ASK not in table, table
    assert "询价" not in await say(wx, BUYER, "搜索 芒果干")

    # a bad threshold: refused, nothing written
    audits = await count(mall, AuditEntry)
    for bad in ("-1", "abc", "1000000"):
        resp = await post("/console/b2b/quotes/threshold", data={"_csrf": csrf, "quote_from": bad})
        assert resp.status == 400 and "询价门槛须为" in await resp.text(), bad
    assert await count(mall, AuditEntry) == audits and await count(mall, ShopTerms) == 0

    assert (await post("/console/b2b/quotes/threshold", data={"_csrf": csrf, "quote_from": "40"})).status == 200
    assert 'name="quote_from" value="40"' in await (await mall.client.get("/console/b2b/quotes")).text()
    assert await count(mall, AuditEntry) == audits + 1
    table = await say(wx, BUYER, "快速下单 A1023 x 48, B77 3")
    # the price stays, the large line is pointed to a quote with the exact command
    assert "企业价 ¥22.00 × 48 = ¥1056.00" in table and "回复「确认下单」" in table, table
    assert "数量较大，可回复「询价 A1023 x 48」获取报价。" in table
    assert "B77 x 3" not in table
    quote = await say(wx, BUYER, "询价 A1023 x 48")
    assert "询价" in quote and "#" in quote, quote
    card = await say(wx, BUYER, "搜索 芒果干")
    assert "40 件以上数量较大，可回复「询价」获取报价" in card and "企业价 ¥22.00" in card, card

    # a consumer: retail, no hint
    await wx.event(SHOPPER, "subscribe")
    assert "询价" not in await say(wx, SHOPPER, "搜索 芒果干")

    # 0 turns it off again
    assert (await post("/console/b2b/quotes/threshold", data={"_csrf": csrf, "quote_from": "0"})).status == 200
    async with mall.svc.uows() as uow:
        assert await uow.session.scalar(select(ShopTerms.quote_from_qty)) == 0
    assert ASK not in await say(wx, BUYER, "快速下单 A1023 x 48")
    assert "询价" not in await say(wx, BUYER, "搜索 芒果干")
