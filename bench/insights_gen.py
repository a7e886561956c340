#!/usr/bin/env python3
"""Generate the insights module's data at scale on PostgreSQL, COPY-fast.

    .venv/bin/python bench/insights_gen.py                     # 1,000,000 events, 100,000 members, 200,000 orders
    .venv/bin/python bench/insights_gen.py --scale 0.1         # a tenth of each
    .venv/bin/python bench/insights_gen.py --schema bench_insights --keep   # (default) leaves the schema for bench/insights.py

Into schema `--schema` (dropped and re-created, migrated by the app's own migrations, so the
partitioned events table and its indexes are the real ones): one tenant's year of history,
written with asyncpg's COPY (binary) straight into the tables the reports read —
`insights_events` (monthly partitions created first by the module's own partitions.py),
`insights_members` (the member facts the subscribers keep, with their cohort weeks and LTV
columns), `insights_member_weeks` (a member's weeks with a payment), and the daily rollups computed
by the module's own `rollup_day` for every day. Segments read core tables too (`members.audience`: the members'
official-account openids, their tags), so the core's `tenants`, `members`,
`member_identities` (an mp openid each), one tag 「VIP」 on 10 % of the members
(`member_tags`, `member_tag_links`) are filled, with the 20 segments of `segments_of` (as many as 人群 counts) and 20 campaigns (as many as 精准推送 lists), the first sent ten days ago, one every 15
days before, each to 20,000 members (`insights_sends`:
90 % sent — 60 % template, 40 % customer service — 80 % of those delivered, 15 % opened,
10 % skipped) for the campaign report. Orders, order lines and addresses are not: the
rules on a bought product / category or a city read them (see docs/insights.md).

How the history is drawn (seed 21, reproducible): members join uniformly over 365 days
(acquisition: 20 % referral from 200 distributors, 15 % group-buy from 300 teams of 40
campaigns, 5 % store, 5 % other QR, 55 % organic; channel mp 70 %, wecom 15 %, h5 15 %);
orders go to 60 % of the members, Zipf-like (a few buy often), the first within two weeks
of joining and the rest spread over the months after, each order a placed and a paid event
of ¥20–¥600, 5 % of paid orders refunded (in full or half); every member subscribes; the rest
of the million are browsing: product views, cart adds, checkouts begun, searches, messages,
spread around the orders.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (puts the repository root on sys.path)

TENANT = 1
EVENT_COLS = ("tenant_id", "member_id", "at", "kind", "channel", "source", "ref", "amount_fen", "props")
FACT_COLS = ("tenant_id", "member_id", "first_seen_at", "first_channel", "acq_kind", "acq_source", "referrer_id",
             "first_order_at", "last_order_at", "orders", "paid_fen", "refunded_fen", "last_seen_at",
             "first_seen_week", "first_order_week", "ltv30", "ltv90", "ltv180", "ltv365")
WEEK_COLS = ("tenant_id", "member_id", "week")
HORIZONS = (30, 90, 180, 365)


def draw(n_members: int, n_orders: int, n_events: int, now: datetime, rng: random.Random):
    from social_mall_insights.rules import acquisition, shanghai_day, week_start

    def week(at: datetime):
        return week_start(shanghai_day(at))

    events: list[tuple] = []
    facts: list[tuple] = []
    weeks: list[tuple] = []
    year = timedelta(days=365)
    # member weights for orders: Zipf-like among the 60 % who buy
    buyers = rng.sample(range(1, n_members + 1), int(n_members * 0.6))
    weights = [1.0 / (k + 1) ** 0.6 for k in range(len(buyers))]
    orders_of: dict[int, int] = defaultdict(int)
    for m in buyers:          # everyone who buys buys once
        orders_of[m] += 1
    for m in rng.choices(buyers, weights=weights, k=max(0, n_orders - len(buyers))):
        orders_of[m] += 1
    oid = 0
    for m in range(1, n_members + 1):
        joined = now - year + timedelta(seconds=rng.random() * year.total_seconds() * 0.98)
        r = rng.random()
        if r < 0.20:
            dist = rng.randrange(1, 201)
            scene, referrer = f"ref_d{dist}", 1_000_000 + dist
        elif r < 0.35:
            scene, referrer = f"gb_{rng.randrange(1, 301)}", 0
        elif r < 0.40:
            scene, referrer = f"store_{rng.randrange(1, 21)}", 0
        elif r < 0.45:
            scene, referrer = f"poster_{rng.randrange(1, 11)}", 0
        else:
            scene, referrer = "", 0
        ch = rng.choices(("mp", "wecom", "h5"), (70, 15, 15))[0]
        events.append((TENANT, m, joined, "subscribe", ch, scene, 0, 0, "{}"))
        k = orders_of.get(m, 0)
        paid = refunded = 0
        first = last = None
        money: list[tuple[datetime, int]] = []
        for i in range(k):
            if i == 0:
                at = joined + timedelta(seconds=rng.random() * 14 * 86400)
            else:
                at = joined + timedelta(seconds=rng.random() * (now - joined).total_seconds())
            if at >= now:
                at = now - timedelta(seconds=rng.random() * 3600)
            oid += 1
            fen = rng.randrange(2000, 60000)
            events.append((TENANT, m, at - timedelta(minutes=3), "order.placed", ch, "", oid, fen, "{}"))
            events.append((TENANT, m, at, "order.paid", ch, "", oid, fen, '{"fulfilment": "express"}'))
            paid += fen
            money.append((at, fen))
            first = at if first is None or at < first else first
            last = at if last is None or at > last else last
            if rng.random() < 0.05:
                back = fen if rng.random() < 0.5 else fen // 2
                back_at = at + timedelta(days=rng.randrange(1, 15))
                events.append((TENANT, m, back_at, "order.refunded", ch, "", oid,
                               back, '{"full": %s}' % ("true" if back == fen else "false")))
                refunded += back
                money.append((back_at, -back))
        ltv = [0, 0, 0, 0]
        if first is not None:
            for at, fen in money:
                age = at - first
                for i, h in enumerate(HORIZONS):
                    if age < timedelta(days=h):
                        ltv[i] += fen
            weeks.extend((TENANT, m, w) for w in {week(at) for at, fen in money if fen > 0})
        facts.append((TENANT, m, joined, ch, acquisition(scene), scene, referrer, first, last, k, paid, refunded,
                      joined, week(joined), week(first) if first else None, *ltv))
    # group-buy teams' campaigns (attribution reads the open events)
    for team in range(1, 301):
        events.append((TENANT, rng.randrange(1, n_members + 1), now - timedelta(days=rng.randrange(1, 365)),
                       "groupbuy.open", "mp", "", team, 0, json.dumps({"campaign": 1 + team % 40})))
    browse = n_events - len(events)
    kinds = (("product.view", 55), ("cart.add", 20), ("checkout.start", 8), ("search", 7), ("message", 6),
             ("category.view", 4))
    names, cum = [k for k, _ in kinds], [w for _, w in kinds]
    picks = rng.choices(names, cum, k=max(0, browse))
    for kind in picks:
        m = rng.randrange(1, n_members + 1)
        at = facts[m - 1][2] + timedelta(seconds=rng.random() * (now - facts[m - 1][2]).total_seconds())
        props = '{"q": "连衣裙", "results": 12}' if kind == "search" else "{}"
        events.append((TENANT, m, at, kind, facts[m - 1][3], "", rng.randrange(1, 2001), 0, props))
    return events, facts, weeks


CAMPAIGN_SENDS = 20_000
CAMPAIGNS = 20          # as many as the 精准推送 page lists with their reports


def segments_of(now: datetime) -> list[tuple[str, dict]]:
    """The 20 segments the 人群 page counts (as many as it shows): the eight RFM segments,
    VIP members by how they came, big spenders, lapsed and recent buyers, all followers."""
    lapsed, recent = (str((now - timedelta(days=d)).date()) for d in (90, 30))
    return ([(n, {"rfm": [n]}) for n in ("重要价值客户", "重要保持客户", "重要发展客户", "重要挽留客户", "一般价值客户",
                                        "一般保持客户", "一般发展客户", "一般挽留客户")]
            + [(f"VIP {k}", {"tag": 1, "acq": [k]}) for k in ("referral", "groupbuy", "store", "qr", "organic")]
            + [(f"消费超过 ¥{y}", {"spent_over_fen": y * 100}) for y in (300, 1000, 3000)]
            + [("流失：90 天没买", {"last_before": lapsed}), ("近期买过", {"last_after": recent}),
               ("公众号来的", {"channel": "mp"}), ("全部粉丝", {})])


def core_rows(facts: list[tuple], now: datetime, rng: random.Random):
    """members, identities, VIP tag links, sends of one campaign (see the docstring)."""
    members = [(m, TENANT, f"会员{m}", f[5], f[2]) for m, f in enumerate(facts, start=1)]
    identities = [(m, TENANT, m, "mp", f"oBench{m:022d}", 0, f[2]) for m, f in enumerate(facts, start=1)]
    vip = sorted(rng.sample(range(1, len(facts) + 1), len(facts) // 10))
    links = [(i, TENANT, 1, m, "manual", now) for i, m in enumerate(vip, start=1)]
    sends = []
    sid = 0
    for c in range(1, CAMPAIGNS + 1):       # campaign 1 ten days ago, then one every 15 days back
        sent_at0 = now - timedelta(days=10 + 15 * (c - 1))
        for i, m in enumerate(sorted(rng.sample(range(1, len(facts) + 1), min(CAMPAIGN_SENDS, len(facts)))),
                              start=1):
            sid += 1
            if rng.random() < 0.10:
                sends.append((sid, TENANT, c, m, "skipped", "", rng.choice(("opted_out", "capped")), 0, sent_at0,
                              None, False, None))
                continue
            at = sent_at0 + timedelta(seconds=i / 50)          # 50 a second, as the outbox sends them
            via = "template" if rng.random() < 0.6 else "kf"
            opened = at + timedelta(minutes=rng.randrange(1, 600)) if rng.random() < 0.15 else None
            sends.append((sid, TENANT, c, m, "sent", via, "", sid if via == "template" else 0, at, at,
                          rng.random() < 0.8, opened))
    return members, identities, links, sends


async def fill_core(pg, schema: str, facts: list[tuple], now: datetime, rng: random.Random) -> int:
    members, identities, links, sends = core_rows(facts, now, rng)
    await pg.execute("INSERT INTO tenants (id, code, name, wechat_app_id, wechat_token, wechat_aes_key, "
                     "wechat_app_secret, pay_gateway, pay_mch_id, pay_app_id, pay_apiv3_key, created_at) "
                     "VALUES ($1, 'bench', '压测商城', '', '', '', '', 'sandbox', '', '', '', $2) "
                     "ON CONFLICT DO NOTHING", TENANT, now)
    await pg.copy_records_to_table("members", records=members, schema_name=schema,
                                   columns=["id", "tenant_id", "nickname", "entry_source", "created_at"])
    await pg.copy_records_to_table("member_identities", records=identities, schema_name=schema,
                                   columns=["id", "tenant_id", "member_id", "channel", "external_id", "account_id",
                                            "created_at"])
    await pg.execute("INSERT INTO member_tags (id, tenant_id, name, created_at) VALUES (1, $1, 'VIP', $2)", TENANT, now)
    await pg.copy_records_to_table("member_tag_links", records=links, schema_name=schema,
                                   columns=["id", "tenant_id", "tag_id", "member_id", "source", "created_at"])
    await pg.executemany("INSERT INTO insights_segments (id, tenant_id, name, rules, created_at) VALUES "
                         "($1, $2, $3, $4, $5)",
                         [(i, TENANT, name, json.dumps(rules, ensure_ascii=False), now)
                          for i, (name, rules) in enumerate(segments_of(now), start=1)])
    await pg.executemany("INSERT INTO insights_campaigns (id, tenant_id, segment_id, name, text, url, send_at, "
                         "status, form_key, created_at) VALUES ($1, $2, 1, $3, '会员日：全场九折', '', $4, 'sent', $5, $4)",
                         [(c, TENANT, f"会员日 {c}", now - timedelta(days=10 + 15 * (c - 1)), f"bench{c}")
                          for c in range(1, CAMPAIGNS + 1)])
    await pg.copy_records_to_table("insights_sends", records=sends, schema_name=schema,
                                   columns=["id", "tenant_id", "campaign_id", "member_id", "status", "via", "reason",
                                            "msg_id", "emitted_at", "sent_at", "delivered", "opened_at"])
    for table in ("members", "member_identities", "member_tag_links", "insights_sends"):
        await pg.execute(f"ANALYZE {table}")
    return len(sends)


async def main_async(args: argparse.Namespace) -> int:
    from sqlalchemy import text

    from social_mall_insights import partitions, rollup
    from social_mall_insights.rules import shanghai_day
    from storage.db import create_engine, migrate, session_factory
    from storage.uow import uow_factory

    schema = args.schema
    n_members, n_orders, n_events = (int(args.members * args.scale), int(args.orders * args.scale),
                                     int(args.events * args.scale))
    now = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    await C.pg_create_schema(args.pg_url, schema)
    engine = create_engine(args.pg_url, schema=schema)
    await migrate(engine)
    t_mig = time.perf_counter()
    rng = random.Random(21)
    events, facts, weeks = draw(n_members, n_orders, n_events, now, rng)
    t_draw = time.perf_counter()
    uows = uow_factory(session_factory(engine), {})
    async with uows() as uow:
        made = await partitions.ensure_months(uow.session, now - timedelta(days=400), now + timedelta(days=90))
        await uow.commit()
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        pg = raw.driver_connection
        await pg.execute("SET search_path TO " + schema)
        await pg.copy_records_to_table("insights_events", records=events, columns=list(EVENT_COLS),
                                       schema_name=schema)
        await pg.copy_records_to_table("insights_members", records=facts, columns=list(FACT_COLS),
                                       schema_name=schema)
        await pg.copy_records_to_table("insights_member_weeks", records=weeks, columns=list(WEEK_COLS),
                                       schema_name=schema)
        n_sends = await fill_core(pg, schema, facts, now, rng)
    t_copy = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE insights_events"))
        await conn.execute(text("ANALYZE insights_members"))
        await conn.execute(text("ANALYZE insights_member_weeks"))
    day = shanghai_day(now - timedelta(days=366))
    last = shanghai_day(now)
    async with uows() as uow:
        while day <= last:
            await rollup.rollup_day(uow, TENANT, day)
            day += timedelta(days=1)
        await uow.commit()
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE insights_daily"))
    t_roll = time.perf_counter()
    async with engine.connect() as conn:
        n_ev = (await conn.execute(text("SELECT count(*) FROM insights_events"))).scalar()
        n_paid = (await conn.execute(text("SELECT count(*) FROM insights_events WHERE kind = 'order.paid'"))).scalar()
        n_mem = (await conn.execute(text("SELECT count(*) FROM insights_members"))).scalar()
        size = (await conn.execute(text("SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_inherits i "
                                        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
                                        "WHERE p.relname = 'insights_events' "
                                        "AND p.relnamespace = to_regnamespace(current_schema())::oid"))).scalar()
    await engine.dispose()
    print(f"schema {schema}: {n_ev:,} events ({n_paid:,} paid orders) in {len(made)} monthly partitions "
          f"({size} with indexes), {n_mem:,} members (each with an openid; 10 % tagged VIP), "
          f"{CAMPAIGNS} campaigns, {n_sends:,} sends")
    print(f"migrate {t_mig - t0:.1f}s, draw {t_draw - t_mig:.1f}s, COPY {t_copy - t_draw:.1f}s "
          f"({len(events) / max(t_copy - t_draw, 1e-9):,.0f} rows/s), rollups of 367 days {t_roll - t_copy:.1f}s")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--schema", default="bench_insights")
    p.add_argument("--pg-url", default=C.PG_URL)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--members", type=int, default=100_000)
    p.add_argument("--orders", type=int, default=200_000)
    p.add_argument("--scale", type=float, default=1.0)
    return asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
