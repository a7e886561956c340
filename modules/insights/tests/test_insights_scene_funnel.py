"""The funnel of one entry scene: 转化漏斗 offers the QR scenes / links members first came
through, and for one of them counts only those members, stage by stage, with what they
paid. Through the signed endpoint, the sandbox payment and the console."""

from __future__ import annotations

import json

from tests.fakes.console_kit import login, make_admin

from ins_kit import ADDRESS, pay, record, say, simulator

P9A, P9B, P5, ORG = (f"oIns_scene_{x}_00000000000001" for x in ("p9a", "p9b", "p5x", "org"))


async def buy(mall, wx, user: str) -> str:
    assert "水果生鲜" in await say(wx, user, "分类")
    assert "赣南脐橙" in await say(wx, user, "1")
    assert (await wx.text(user, "1")).msg_type == "news"
    assert "请发来收货地址" in await say(wx, user, "1×2")
    assert "应付" in await say(wx, user, ADDRESS)
    return await pay(mall, await say(wx, user, "确认"))


async def test_one_scenes_members_have_a_funnel_of_their_own(mall):
    wx = simulator(mall)
    for user, scene in ((P9A, "poster_9"), (P9B, "poster_9"), (P5, "poster_5")):
        await wx.event(user, "subscribe", f"qrscene_{scene}")
    await wx.event(ORG, "subscribe")
    order = await buy(mall, wx, P9A)                   # through poster 9: buys
    await say(wx, P9B, "分类")                           # through poster 9: only looks at the shelf
    await say(wx, P5, "分类")
    await say(wx, P5, "1")
    assert (await wx.text(P5, "1")).msg_type == "news"  # through poster 5: views a product
    await buy(mall, wx, ORG)                           # organic: buys too
    await record(mall)
    async with mall.svc.uows() as uow:
        paid = (await uow.orders.by_no((await mall.svc.tenant("demo")).id, order)).total_fen

    await make_admin(mall.svc.uows, "boss")
    await login(mall.client, "boss")
    page = await (await mall.client.get("/console/insights")).text()
    assert '<option value="poster_9">poster_9（2 人）</option>' in page and "poster_5（1 人）" in page
    got = json.loads(await (await mall.client.get("/console/insights?days=7&scene=poster_9&format=json")).text())
    assert got["scene"] == "poster_9" and got["stages"] == ["访问", "浏览商品", "加购", "下单", "支付"]
    assert got["total"]["members"] == [2, 1, 0, 1, 1] and got["total"]["paid_fen"] == paid
    other = json.loads(await (await mall.client.get("/console/insights?days=7&scene=poster_5&format=json")).text())
    assert other["total"]["members"] == [1, 1, 0, 0, 0] and other["total"]["paid_fen"] == 0
    everyone = json.loads(await (await mall.client.get("/console/insights?days=7&format=json")).text())
    assert everyone["scene"] == "" and everyone["total"]["members"][4] == 2
    unknown = json.loads(await (await mall.client.get("/console/insights?days=7&scene=nope&format=json")).text())
    assert unknown["scene"] == "" and unknown["total"] == everyone["total"]   # not a scene: the whole funnel
    page = await (await mall.client.get("/console/insights?days=7&scene=poster_9")).text()
    assert '<option value="poster_9" selected>' in page
