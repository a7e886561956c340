"""Retention cohorts, exactly: members grouped by the week of their first paid order (or of
their first visit), the share who paid again in each later week — a second order in the
first week is no repurchase, two orders in one later week count once, weeks not yet lived
are blank. History recorded through the module's subscribers as the outbox delivers it;
read through the console's JSON with the app's clock fixed."""

from __future__ import annotations

import json
from datetime import timedelta

from social_mall.plugins import Delivery
from social_mall_insights.subscribers import record as rec
from tests.fakes.console_kit import login, make_admin

from ins_kit import Clock, app_with_clock, shanghai

A, B, C, D, E = range(620_001, 620_006)


async def test_cohort_rates_week_by_week(backend, engine, tmp_path, fake_wechat, aiohttp_client):
    clock = Clock(shanghai(2025, 6, 4, 12, 0))                 # Wednesday; this week from Monday 2 June
    mall = await app_with_clock(backend, tmp_path, fake_wechat, aiohttp_client, clock)
    tenant = (await mall.svc.tenant("demo")).id
    w0 = shanghai(2025, 5, 6, 10, 0)                           # Tuesday of the week from Monday 5 May: 4 weeks back
    seq = iter(range(6_200_000, 6_300_000))

    async def deliver(topic: str, payload: dict, at) -> None:
        async with mall.svc.uows() as uow:
            await rec(uow, [Delivery(next(seq), tenant, topic, payload, 1)], at)
            await uow.commit()

    order = iter(range(62_000, 63_000))
    for m in (A, B, C, D):
        await deliver("member.joined", {"member_id": m, "channel": "mp", "entry_source": ""}, w0 - timedelta(days=8))
    await deliver("member.joined", {"member_id": E, "channel": "mp", "entry_source": ""}, w0 - timedelta(days=8))
    pays = {A: (0, 0, 7, 21), B: (0, 7), C: (0, 14, 15), D: (0,)}   # days after w0; A twice in its first week
    for m, days in pays.items():
        for d in days:
            await deliver("order.paid", {"member_id": m, "order_id": next(order), "paid_fen": 1000, "channel": "mp"},
                          w0 + timedelta(days=d, hours=1 if d == 0 and m == A else 0))
    await make_admin(mall.svc.uows, "boss_cohort")
    await login(mall.client, "boss_cohort")

    got = json.loads(await (await mall.client.get("/console/insights/cohorts?format=json")).text())
    (cohort,) = [c for c in got["cohorts"] if c["week"] == "2025-05-05"]
    assert cohort["size"] == 4
    assert cohort["rates"][:4] == [0.5, 0.25, 0.25, 0.0]       # A, B | C (twice: once) | A | nobody yet
    assert cohort["rates"][4:] == [None] * 8                   # weeks not lived yet
    visits = json.loads(await (await mall.client.get("/console/insights/cohorts?format=json&basis=visit")).text())
    (first_seen,) = [c for c in visits["cohorts"] if c["week"] == "2025-04-28"]
    assert first_seen["size"] == 5                              # E visited, never paid
    assert first_seen["rates"][:5] == [0.8, 0.4, 0.2, 0.2, 0.0] # weeks after 28 April: 4 paid in wk 1, A B in 2, C in 3, A in 4
    csv = (await (await mall.client.get("/console/insights/cohorts?format=csv")).text()).lstrip("\ufeff")
    assert any(line.startswith("2025-05-05,4,") for line in csv.splitlines())
