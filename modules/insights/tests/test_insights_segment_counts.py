"""The 人群 page counts its segments together (the openids, the member facts and every
buyer's RFM segment read once, each segment filtering them); 「计算人数」 counts one alone
(in SQL). Both give the same members for every kind of rule. Followers through the signed
endpoint, their orders through the module's subscribers as the outbox delivers them, the
console over HTTP."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from social_mall.plugins import Delivery
from social_mall_insights.rules import SEGMENT_ORDER, shanghai_day
from social_mall_insights.subscribers import record as rec
from tests.fakes.console_kit import login, make_admin

from ins_kit import member_of, record, simulator

USERS = [(f"oIns_segcount_{i:02d}_00000000001", scene) for i, scene in enumerate(
    ("poster_1", "poster_1", "poster_1", "ref_d7", "ref_d7", "", "", ""))]
# (user index, days ago, fen): repeat buyers, big and small spenders, recent and lapsed
ORDERS = [(0, 100, 50_000), (0, 40, 20_000), (0, 5, 30_000), (1, 120, 3_000), (2, 10, 80_000), (3, 60, 1_000),
          (3, 2, 2_000), (5, 200, 45_000), (6, 15, 9_000)]


async def test_the_pages_counts_are_the_counts_of_each_segment_alone(mall):
    wx = simulator(mall)
    for user, scene in USERS:
        await wx.event(user, "subscribe", f"qrscene_{scene}" if scene else "")
    await record(mall)
    members = [await member_of(mall, u) for u, _ in USERS]
    tenant = (await mall.svc.tenant("demo")).id
    now = datetime.now(timezone.utc)
    for k, (i, days, fen) in enumerate(ORDERS):
        async with mall.svc.uows() as uow:
            await rec(uow, [Delivery(770_000 + k, tenant, "order.paid", {
                "member_id": members[i], "order_id": 880_000 + k, "paid_fen": fen, "channel": "mp"}, 1)],
                now - timedelta(days=days))
            await uow.commit()
    async with mall.svc.uows() as uow:
        await rec(uow, [Delivery(779_999, tenant, "order.refunded", {
            "member_id": members[2], "order_id": 880_004, "refund_fen": 60_000, "full": False}, 1)],
            now - timedelta(days=9))
        await uow.commit()

    await make_admin(mall.svc.uows, "boss_segcount")
    csrf = await login(mall.client, "boss_segcount")
    day = str(shanghai_day(now - timedelta(days=30)))
    rules: list[dict[str, str | list[str]]] = [{"rfm": n} for n in SEGMENT_ORDER] + [
        {"rfm": ["重要价值客户", "一般挽留客户"]}, {"spent_over": "300"}, {"spent_over": "300", "acq": "qr"},
        {"last_after": day}, {"last_before": day}, {"acq": ["referral", "organic"]}, {"channel": "mp"},
        {"acq": "qr", "last_after": day}, {"rfm": "重要价值客户", "spent_over": "500"}, {}]
    alone: dict[str, int] = {}
    for k, rule in enumerate(rules):
        form = [("_csrf", csrf), ("name", f"人群{k:02d}"), ("action", "count")]
        form += [(key, v) for key, vs in rule.items() for v in ([vs] if isinstance(vs, str) else vs)]
        page = await (await mall.client.post("/console/insights/segments", data=form)).text()
        alone[f"人群{k:02d}"] = int(re.search(r"符合条件：(\d+) 人", page).group(1))
        saved = await mall.client.post("/console/insights/segments", data=[*form[:2], ("action", "save"), *form[3:]],
                                       allow_redirects=False)
        assert saved.status == 303
    page = await (await mall.client.get("/console/insights/segments")).text()
    together = {name: int(n) for name, n in re.findall(
        r'<tr><td>\d+</td><td>(人群\d\d)</td><td>.*?</td><td class="num">(\d+)</td>', page)}
    assert together == alone
    # a few by hand: 8 followers (and the demo shop's own); spent over ¥300 net: 0 (¥1,000), 2 (¥800 − ¥600 = ¥200: no),
    # 5 (¥450); of them through the poster: 0
    assert alone["人群09"] == 2 and alone["人群10"] == 1
    assert alone["人群13"] == 5                                    # referral 3, 4; organic 5, 6, 7
    assert sum(alone[f"人群{k:02d}"] for k in range(8)) == 6         # each of the 6 buyers in one RFM segment
    assert alone["人群17"] >= 8
