#!/usr/bin/env python3
"""Each insights report over the data bench/insights_gen.py made (PostgreSQL).

    .venv/bin/python bench/insights_gen.py          # once: 1,000,000 events, 100,000 members, 200,000 orders
    .venv/bin/python bench/insights.py              # every report, 5 runs each: median and worst
    .venv/bin/python bench/insights.py --runs 3 --explain

Each report runs through the module's own functions (social_mall_insights.reports) on a
unit of work, as the console page does (its HTML rendering is not counted). Beside the
total, "sql" is the time of a read alone (rows fetched, no arithmetic): for cohorts the
report's own grouped read; for LTV (Python) and RFM the 60,000 buyer rows that arithmetic in
Python would need (the reports do it in SQL instead: compare the totals). The reports read the
pre-aggregates (daily rollups, member facts with cohort weeks and LTV columns, member
weeks), not the million raw events. Segment counts run `segments.members` (the core's
`members.audience` over the openids and tags, the member facts, RFM scores) as 「计算人数」
does; the campaign report reads the campaign's sends and its recipients' paid orders
within 7 days (raw events through (tenant, kind, at)). `--explain` prints the
plans of those reads (EXPLAIN ANALYZE, buffers).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (puts the repository root on sys.path)

TENANT = 1


async def main_async(args: argparse.Namespace) -> int:
    from sqlalchemy import func, select, text

    from social_mall_insights import campaigns, reports, segments
    from social_mall_insights.models import MemberFacts, MemberWeek
    from social_mall_insights.rules import shanghai_day
    from storage.db import create_engine, session_factory
    from storage.uow import uow_factory

    engine = create_engine(args.pg_url, schema=args.schema)
    uows = uow_factory(session_factory(engine), {})
    now = datetime.now(timezone.utc)
    today = shanghai_day(now)
    since = now - timedelta(days=31 * 12)
    async with engine.connect() as conn:
        n = (await conn.execute(text("SELECT count(*) FROM insights_events"))).scalar()
        m = (await conn.execute(text("SELECT count(*) FROM insights_members"))).scalar()
    print(f"# schema {args.schema}: {n:,} events, {m:,} members; load average {open('/proc/loadavg').read().split()[0]}"
          f" on {__import__('os').cpu_count()} cores")

    async def run(fn):
        async with uows() as uow:
            return await fn(uow)

    big_reads = {
        "cohorts": select(MemberFacts.first_order_week, MemberWeek.week, func.count())
        .select_from(MemberWeek.__table__.join(MemberFacts.__table__, (MemberFacts.tenant_id == MemberWeek.tenant_id)
                                               & (MemberFacts.member_id == MemberWeek.member_id)))
        .where(MemberWeek.tenant_id == TENANT, MemberFacts.first_order_week >= (now - timedelta(weeks=12)).date(),
               MemberWeek.week > MemberFacts.first_order_week)
        .group_by(MemberFacts.first_order_week, MemberWeek.week),
        "ltv": select(MemberFacts.first_order_at, MemberFacts.acq_kind, MemberFacts.ltv30, MemberFacts.ltv90,
                      MemberFacts.ltv180, MemberFacts.ltv365).where(MemberFacts.tenant_id == TENANT,
                                                                     MemberFacts.first_order_at >= since),
        "rfm": select(MemberFacts.member_id, MemberFacts.last_order_at, MemberFacts.orders,
                      MemberFacts.paid_fen - MemberFacts.refunded_fen).where(
            MemberFacts.tenant_id == TENANT, MemberFacts.orders > 0),
    }
    jobs = {
        "funnel 30 days": lambda uow: reports.funnel(uow, TENANT, today - timedelta(days=29), today),
        "funnel 365 days": lambda uow: reports.funnel(uow, TENANT, today - timedelta(days=364), today),
        "funnel 30d, one channel+source": lambda uow: reports.funnel(uow, TENANT, today - timedelta(days=29), today,
                                                                    channel="mp", source="referral"),
        "cohorts (first order, 12 weeks)": lambda uow: reports.cohorts(uow, TENANT, now),
        "cohorts (first visit, 12 weeks)": lambda uow: reports.cohorts(uow, TENANT, now, basis="visit"),
        "ltv (12 months, 4 horizons)": lambda uow: reports.ltv(uow, TENANT, now),
        "rfm (quintiles, 8 segments)": lambda uow: reports.rfm(uow, TENANT, now),
        "attribution": lambda uow: reports.attribution(uow, TENANT),
        "attribution + views by tracking token (30 days)": lambda uow: reports.attribution(uow, TENANT, now=now),
        "funnel 30d, the largest entry scene (raw events)": lambda uow: _scene_funnel(uow, reports, today),
        "member timeline (50)": lambda uow: reports.timeline(uow, TENANT, 4242),
        "segment count: all followers": lambda uow: _count(uow, segments, segments.Rules(), now),
        "segment count: RFM 重要价值客户": lambda uow: _count(uow, segments, segments.Rules(rfm=("重要价值客户",)), now),
        "segment count: tag VIP + referral": lambda uow: _count(uow, segments, segments.Rules(tag=1, acq=("referral",)),
                                                                now),
        "segment count: spent over ¥500, last 90 d": lambda uow: _count(
            uow, segments, segments.Rules(spent_over_fen=50_000, last_after=str(today - timedelta(days=90))), now),
        "segments page (20 saved, counted)": lambda uow: _segments_page(uow, segments, now),
        "segments page, one by one instead": lambda uow: _segments_one_by_one(uow, segments, now),
        "campaign report (20,000 sends)": lambda uow: campaigns.report(uow, TENANT, 1),
        "campaigns page (20 reports of 20,000 sends)": lambda uow: _campaigns_page(uow, campaigns),
    }
    jobs["ltv, arithmetic in Python instead"] = lambda uow: reports.ltv_python(uow, TENANT, now, since)
    sql_of = {"cohorts (first order, 12 weeks)": "cohorts", "ltv, arithmetic in Python instead": "ltv",
              "rfm (quintiles, 8 segments)": "rfm"}
    print(f"{'report':<44} {'median':>9} {'worst':>9} {'sql':>9} {'rows':>9}")
    worst_all = 0.0
    for name, fn in jobs.items():
        if args.only and not any(o in name for o in args.only):
            continue
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            got = await run(fn)
            times.append(time.perf_counter() - t)
        sql_s, rows = "", ""
        if isinstance(got, int):                          # a segment's live count
            rows = f"{got:,}"
        elif isinstance(got, dict):                       # a page's counts / reports
            rows = f"{len(got)} rows"
        elif hasattr(got, "targeted"):                    # a campaign's report
            rows = f"{got.targeted:,}"
            print(f"  campaign: {got.targeted:,} targeted, {got.sent:,} sent, {got.delivered:,} delivered, "
                  f"{got.opened:,} opened, {got.buyers:,} buyers, {got.orders:,} orders, ¥{got.revenue_fen // 100:,}")
        if name in sql_of:
            t = time.perf_counter()
            got = await run(lambda uow: uow.session.execute(big_reads[sql_of[name]]))
            k = len(list(got))
            sql_s, rows = f"{(time.perf_counter() - t) * 1000:7.0f}ms", f"{k:,}"
        if "instead" not in name:             # the comparison lines are not reports
            worst_all = max(worst_all, max(times))
        print(f"{name:<44} {statistics.median(times) * 1000:7.0f}ms {max(times) * 1000:7.0f}ms {sql_s:>9} {rows:>9}",
              flush=True)
    print(f"{'PASS' if worst_all < 2.0 else 'FAIL'}  every report under 2 s (worst run {worst_all:.2f} s; the "
          "Python comparison line aside)")
    if args.explain:
        for key, stmt in big_reads.items():
            async with engine.connect() as conn:
                sql = str(stmt.compile(engine.sync_engine, compile_kwargs={"literal_binds": True}))
                plan = (await conn.execute(text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql))).scalars().all()
            print(f"\n-- {key}\n" + "\n".join(plan[:25]))
    await engine.dispose()
    return 0


async def _count(uow, segments, rules, now):
    """The live count (「计算人数」): the segment's members with an official-account openid."""
    return len(await segments.members(uow, TENANT, rules, now))


async def _segments_page(uow, segments, now):
    """What 人群 does: the saved segments, their problems and counts (`page_counts`)."""
    return (await segments.page_counts(uow, TENANT, await segments.listed(uow, TENANT), now))[1]


async def _segments_one_by_one(uow, segments, now):
    """The same counts, each segment evaluated alone (as 「计算人数」 does): the comparison."""
    return {seg.id: len(await segments.members(uow, TENANT, segments.Rules.of(seg.rules), now))
            for seg in (await segments.listed(uow, TENANT))[:segments.PAGE_COUNTED]}


async def _campaigns_page(uow, campaigns):
    """What 精准推送 does: the campaigns listed, a report each for the first 20."""
    rows = await campaigns.listed(uow, TENANT)
    return {c.id: await campaigns.report(uow, TENANT, c.id) for c in rows[:20]}


async def _scene_funnel(uow, reports, today):
    scenes = await reports.entry_scenes(uow, TENANT, limit=1)
    return await reports.scene_funnel(uow, TENANT, today - timedelta(days=29), today, scenes[0][0]) if scenes else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--schema", default="bench_insights")
    p.add_argument("--pg-url", default=C.PG_URL)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--explain", action="store_true")
    p.add_argument("--only", action="append", default=[], help="only the reports whose name holds this (repeatable)")
    return asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
