"""Done when: a chat purchase (signed endpoint + sandbox pay notify), a group-buy join and a
store verification (a clerk scans the pick-up code) all show in the funnel and on the
console member page's timeline; the reports answer as HTML, CSV and JSON."""

from __future__ import annotations

import json
import pathlib
import re
import sys
from datetime import datetime

from social_mall_insights import reports
from social_mall_insights.rules import shanghai_day
from tests.conftest import Mall
from tests.fakes.console_kit import login, make_admin
from tests.fakes.groupbuy_kit import make_campaign

from ins_kit import ADDRESS, events_of, member_of, pay, record, say, simulator

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "local_services" / "tests"))
from local_kit import Clock, bind_staff, buy_for_pickup, codes_in, make_mall, pushes, shanghai  # noqa: E402

BUYER = "oIns_journey_buyer_0000001"
LEADER = "oIns_journey_leader_000001"
CLERK = "oIns_journey_clerk_0000001"


async def express_purchase(mall: Mall, wx, user: str) -> str:
    await wx.event(user, "subscribe")
    assert "水果生鲜" in await say(wx, user, "分类")
    assert "赣南脐橙" in await say(wx, user, "1")
    assert (await wx.text(user, "1")).msg_type == "news"
    asked = await say(wx, user, "1×2")
    if "门店自提" in asked:
        asked = await say(wx, user, "1")
    if "请发来收货地址" in asked:
        asked = await say(wx, user, ADDRESS)
    assert "应付" in asked, asked
    return await pay(mall, await say(wx, user, "确认"))


async def groupbuy_join(mall: Mall, wx, leader: str, user: str, now: datetime) -> int:
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        await make_campaign(uow, tenant.id, title="丹东草莓", size=3, start=now)
        await uow.commit()
    await wx.event(leader, "subscribe")
    await say(wx, leader, "拼团")
    await wx.text(leader, "1")
    await say(wx, leader, "开团")
    await say(wx, leader, "确认")
    placed = await say(wx, leader, ADDRESS)
    team_id = int(re.search(r"团(\d+)", placed).group(1))
    await pay(mall, placed)
    await wx.event(user, "SCAN", f"gb_{team_id}")
    asked = await say(wx, user, "参团")
    assert "拼团价" in asked, asked
    answer = await say(wx, user, "确认")
    if "参团成功" not in answer:
        answer = await say(wx, user, ADDRESS if "地址" in answer else "1")
    assert "参团成功" in answer, answer
    await pay(mall, answer)
    return team_id


async def test_purchase_groupbuy_join_and_store_verification_reach_funnel_and_timeline(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    clock = Clock(shanghai(2025, 6, 6, 12, 0))          # a Friday noon: the stores are open
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    wx = simulator(mall)
    await express_purchase(mall, wx, BUYER)
    team_id = await groupbuy_join(mall, wx, LEADER, BUYER, clock())
    confirm = await buy_for_pickup(mall, wx, BUYER, "桂花乌龙", 1, store=2)
    assert confirm
    await pay(mall, await say(wx, BUYER, "确认"))
    (code,) = codes_in([p for p in pushes(mall, BUYER) if "取货码" in p][-1])
    await bind_staff(mall, wx, CLERK, "人民广场店")
    assert "核销确认" in (await wx.scan(CLERK, "LOCAL_VERIFY", code)).text
    assert "核销成功" in await say(wx, CLERK, "确认")
    await record(mall)

    member = await member_of(mall, BUYER)
    kinds = [k for k, *_ in await events_of(mall, member)]
    assert kinds.count("order.paid") == 3, kinds
    assert "groupbuy.join" in kinds and "store.verify" in kinds and "search" in kinds
    joined = [(ref, src) for k, ref, _a, src in await events_of(mall, member) if k == "groupbuy.join"]
    assert joined == [(team_id, "")]
    assert [src for k, _r, _a, src in await events_of(mall, member) if k == "store.verify"] == ["人民广场店"]

    tenant = await mall.svc.tenant("demo")
    day = shanghai_day(clock())
    async with mall.svc.uows() as uow:
        f = await reports.funnel(uow, tenant.id, day, day)
    visits, views, carts, orders, paid = f.total.counts
    assert visits >= 3 and views >= 1 and orders >= 2      # buyer, leader, clerk visited
    assert paid == 2                                        # distinct members who paid that day: buyer, leader
    assert f.total.paid_fen > 0

    await make_admin(mall.svc.uows, "boss2")
    await login(mall.client, "boss2")
    page = await (await mall.client.get(f"/console/members/{member}")).text()
    timeline = page[page.index('id="insights-timeline"'):]
    for label in ("支付", "参团", "到店核销", "浏览商品", "搜索", "关注"):
        assert label in timeline, label
    assert "人民广场店" in timeline

    html = await mall.client.get("/console/insights?days=7")
    assert html.status == 200 and 'id="funnel"' in await html.text()
    data = json.loads(await (await mall.client.get("/console/insights?days=7&format=json")).text())
    assert data["total"]["members"][4] == paid and data["total"]["paid_fen"] == f.total.paid_fen
    csv = await (await mall.client.get("/console/insights?days=7&format=csv")).text()
    assert csv.lstrip("\ufeff").startswith("日期,访问,浏览商品")
    for path in ("/console/insights/cohorts", "/console/insights/ltv", "/console/insights/rfm",
                 "/console/insights/attribution"):
        for fmt in ("", "?format=csv", "?format=json"):
            r = await mall.client.get(path + fmt)
            assert r.status == 200, (path, fmt, await r.text())
    rfm = json.loads(await (await mall.client.get("/console/insights/rfm?format=json")).text())
    assert sum(s["members"] for s in rfm["segments"]) == 2          # the buyer and the leader paid
    attr = json.loads(await (await mall.client.get("/console/insights/attribution?format=json")).text())
    assert any(x["key"] == "organic" for x in attr["kinds"])
