"""Click-through and revenue per recommendation placement: product views that came through
a tracking token (「猜你喜欢」 in chat: rec.for_me; a link's ?src=rec.related on the H5 page)
are counted per token on 来源归因, with the viewers who paid within 7 days and what they paid,
beside the products each placement showed (the recommender's `rec.shown` activity) and the
click-through (views / shown).
Through the signed endpoint, the H5 page and the console."""

from __future__ import annotations

import json
import re

from tests.fakes.console_kit import login, make_admin

from ins_kit import ADDRESS, pay, record, say, simulator

A, B, C = (f"oIns_views_{x}_00000000000001" for x in "abc")


async def test_views_through_a_placement_count_with_the_purchases_that_followed(mall):
    wx = simulator(mall)
    for u in (A, B, C):
        await wx.event(u, "subscribe")
    # A: 猜你喜欢 → the first product → buys it
    assert "猜你喜欢" in await say(wx, A, "猜你喜欢")
    card = await wx.text(A, "1")
    assert card.msg_type == "news"
    asked = await say(wx, A, "1")
    if "请发来收货地址" in asked:
        asked = await say(wx, A, ADDRESS)
    assert "应付" in asked, asked
    order_no = await pay(mall, await say(wx, A, "确认"))
    # B: 猜你喜欢 → a product, no purchase; C: the shop's own listing (no token), then buys
    await say(wx, B, "猜你喜欢")
    assert (await wx.text(B, "2")).msg_type == "news"
    await say(wx, C, "分类")
    await say(wx, C, "1")
    assert (await wx.text(C, "1")).msg_type == "news"
    # someone opens a recommendation's link on the H5 page (no member known there)
    assert (await mall.client.get("/h5/product/demo/3?src=rec.related")).status == 200
    assert (await mall.client.get("/h5/product/demo/3?src=%E4%BD%A0")).status == 200   # not a token: no source
    await record(mall)

    await make_admin(mall.svc.uows, "boss")
    await login(mall.client, "boss")
    got = json.loads(await (await mall.client.get("/console/insights/attribution?format=json")).text())
    views = {v["key"]: v for v in got["views"]}
    async with mall.svc.uows() as uow:
        paid = (await uow.orders.by_no((await mall.svc.tenant("demo")).id, order_no)).total_fen
    assert {"rec.for_me", "rec.related"} <= set(views) <= {"rec.for_me", "rec.related", "rec.paid"}
    assert {k: views["rec.for_me"][k] for k in ("label", "views", "members", "buyers", "orders", "revenue_fen")} == {
        "label": "猜你喜欢", "views": 2, "members": 2, "buyers": 1, "orders": 1, "revenue_fen": paid}
    assert {k: views["rec.related"][k] for k in ("views", "members", "buyers", "revenue_fen")} == {
        "views": 1, "members": 0, "buyers": 0, "revenue_fen": 0}
    shown = views["rec.for_me"]["shown"]            # two lists of 猜你喜欢 (A's and B's), one view from each
    assert shown >= 2 and views["rec.for_me"]["ctr"] == round(2 / shown, 4)
    assert views["rec.related"]["shown"] == 0 and views["rec.related"]["ctr"] is None   # a link: nothing shown
    page = await (await mall.client.get("/console/insights/attribution")).text()
    table = page[page.index('id="attr-views"'):]
    assert re.search(rf"<td>猜你喜欢</td><td class=\"num\">{shown}</td><td class=\"num\">2</td>"
                     r"<td class=\"num\">[\d.]+%</td><td class=\"num\">2</td><td class=\"num\">1</td>"
                     r"<td class=\"num\">50.0%</td>", table), table[:800]
    assert "买了它的人还买了" in table
