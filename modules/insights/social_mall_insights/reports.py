"""The console's reports, read from the rollups and member facts (pre-aggregates) and, for
cohorts and LTV, the paid/refunded events through the (tenant_id, kind, at) index; the
arithmetic in Python (portable between SQLite and PostgreSQL; bench/insights.py measures it
at 1,000,000 events). Money stays integer fen; averages are rounded fen; rates are floats
for display only."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from social_mall_insights.models import Daily, Event, MemberFacts, MemberWeek
from social_mall_insights.rules import (
    ACQ_ZH, SEGMENT_ORDER, Rfm, median, quintile_scores, segment, shanghai_day, week_start,
)
from storage.uow import UnitOfWork

# -- funnel -----------------------------------------------------------------------------------

STAGES = (("*", "访问"), ("product.view", "浏览商品"), ("cart.add", "加购"), ("order.placed", "下单"),
          ("order.paid", "支付"))


@dataclass(frozen=True)
class FunnelRow:
    day: date
    counts: tuple[int, ...]          # members at each stage (STAGES order)
    paid_fen: int

    @property
    def rates(self) -> tuple[float | None, ...]:
        """Each stage over the one before (the first: None), then paid over visits."""
        c = self.counts
        steps = [None] + [(c[i] / c[i - 1]) if c[i - 1] else None for i in range(1, len(c))]
        return (*steps, (c[-1] / c[0]) if c[0] else None)


@dataclass(frozen=True)
class Funnel:
    rows: list[FunnelRow]
    total: FunnelRow
    channels: list[str]
    sources: list[str]


async def funnel(uow: UnitOfWork, tenant: int, first: date, last: date, *, channel: str = "",
                 source: str = "") -> Funnel:
    """Members at each stage per day (distinct per day, channel and acquisition kind:
    a member seen on two channels one day counts on each); the total sums the days."""
    kinds = [k for k, _ in STAGES]
    q = (select(Daily.day, Daily.kind, func.sum(Daily.members), func.sum(Daily.amount_fen))
         .where(Daily.tenant_id == tenant, Daily.day >= first, Daily.day <= last, Daily.kind.in_(kinds))
         .group_by(Daily.day, Daily.kind))
    if channel:
        q = q.where(Daily.channel == channel)
    if source:
        q = q.where(Daily.source == source)
    by_day: dict[date, dict[str, int]] = defaultdict(dict)
    paid: dict[date, int] = defaultdict(int)
    for day, kind, members, amount in await uow.session.execute(q):
        by_day[day][kind] = int(members or 0)
        if kind == "order.paid":
            paid[day] = int(amount or 0)
    rows = []
    d = first
    while d <= last:
        rows.append(FunnelRow(d, tuple(by_day.get(d, {}).get(k, 0) for k in kinds), paid.get(d, 0)))
        d += timedelta(days=1)
    total = FunnelRow(last, tuple(sum(r.counts[i] for r in rows) for i in range(len(kinds))),
                      sum(r.paid_fen for r in rows))
    dims = await uow.session.execute(select(Daily.channel, Daily.source).where(Daily.tenant_id == tenant)
                                     .group_by(Daily.channel, Daily.source))
    pairs = list(dims)
    return Funnel(rows, total, sorted({c for c, _ in pairs if c}), sorted({s for _, s in pairs if s}))


# -- retention cohorts -----------------------------------------------------------------------

@dataclass(frozen=True)
class Cohort:
    week: date
    size: int
    rates: tuple[float | None, ...]  # week 1..N: share of the cohort that paid again that week (None: not yet)


async def cohorts(uow: UnitOfWork, tenant: int, now: datetime, *, weeks: int = 12, cohorts_back: int = 12,
                  basis: str = "order") -> list[Cohort]:
    """Members grouped by the week (Shanghai, from Monday) of their first paid order (basis
    "order") or first visit ("visit"); for each later week k = 1..weeks, the share who paid
    in week k after the cohort's week. Two grouped reads of the pre-aggregates (the member
    facts' cohort week, insights_member_weeks: a row per member and week with a payment)."""
    this_week = week_start(shanghai_day(now))
    since_week = this_week - timedelta(weeks=cohorts_back - 1)
    start = MemberFacts.first_order_week if basis == "order" else MemberFacts.first_seen_week
    sizes: dict[date, int] = {}
    for w, n in await uow.session.execute(
            select(start, func.count()).where(MemberFacts.tenant_id == tenant, start >= since_week).group_by(start)):
        if w is not None:
            sizes[w] = int(n)
    repeat: dict[date, dict[int, int]] = defaultdict(dict)
    q = (select(start, MemberWeek.week, func.count())
         .select_from(MemberWeek.__table__.join(MemberFacts.__table__, (MemberFacts.tenant_id == MemberWeek.tenant_id)
                                                & (MemberFacts.member_id == MemberWeek.member_id)))
         .where(MemberWeek.tenant_id == tenant, start >= since_week, MemberWeek.week > start)
         .group_by(start, MemberWeek.week))
    for w, paid_week, n in await uow.session.execute(q):
        if w is None:
            continue
        k = (paid_week - w).days // 7
        if 1 <= k <= weeks:
            repeat[w][k] = int(n)
    out = []
    for w in sorted(sizes):
        elapsed = (this_week - w).days // 7
        rates = tuple((repeat[w].get(k, 0) / sizes[w]) if k <= elapsed else None for k in range(1, weeks + 1))
        out.append(Cohort(w, sizes[w], rates))
    return out


# -- LTV -----------------------------------------------------------------------------------------

HORIZONS = (30, 90, 180, 365)


@dataclass(frozen=True)
class LtvRow:
    cohort: str                      # "2026-03" (first-order month) or "全部"
    acq: str                         # acquisition kind, "" for all
    members: int
    avg: tuple[int | None, ...]      # per horizon: average net fen of the members old enough (None: none are)
    med: tuple[int | None, ...]
    counted: tuple[int, ...] = field(default=())   # members old enough per horizon


async def ltv(uow: UnitOfWork, tenant: int, now: datetime, *, months_back: int = 12) -> list[LtvRow]:
    """Cumulative net revenue (paid − refunded) per member within 30/90/180/365 days of the
    first paid order, by first-order month and acquisition kind, plus each kind over all
    months ("全部"). A horizon counts only members whose first order is at least that old.
    Reads the member facts' LTV columns (kept as orders are paid and refunded), one row a
    buyer: no event scan."""
    since = now - timedelta(days=31 * months_back)
    groups: dict[tuple[str, str], list[tuple[datetime, tuple[int, int, int, int]]]] = defaultdict(list)
    for first, acq, a, b, c, d in await uow.session.execute(
            select(MemberFacts.first_order_at, MemberFacts.acq_kind, MemberFacts.ltv30, MemberFacts.ltv90,
                   MemberFacts.ltv180, MemberFacts.ltv365)
            .where(MemberFacts.tenant_id == tenant, MemberFacts.first_order_at >= since)):
        if first is None:
            continue
        month = shanghai_day(first).strftime("%Y-%m")
        item = (first, (int(a), int(b), int(c), int(d)))
        for key in ((month, acq), (month, ""), ("全部", acq), ("全部", "")):
            groups[key].append(item)
    rows = []
    old_enough = [now - timedelta(days=h) for h in HORIZONS]
    for (cohort, acq), items in sorted(groups.items(), key=lambda kv: (kv[0][0] == "全部", kv[0][0], kv[0][1])):
        avgs: list[int | None] = []
        meds: list[int | None] = []
        counted = []
        for i in range(len(HORIZONS)):
            vals = [v[i] for first, v in items if first <= old_enough[i]]
            counted.append(len(vals))
            avgs.append(round(sum(vals) / len(vals)) if vals else None)
            meds.append(median(vals) if vals else None)
        rows.append(LtvRow(cohort, acq, len(items), tuple(avgs), tuple(meds), tuple(counted)))
    return rows


# -- RFM -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RfmSegment:
    name: str
    members: int
    revenue_fen: int


async def rfm_scores(uow: UnitOfWork, tenant: int, now: datetime) -> dict[int, tuple[Rfm, str, int]]:
    """member → (scores, segment name, net fen), for members with a paid order. Quintiles
    within the tenant: recency in days since the last order (fewer is better), frequency in
    orders, monetary in net fen."""
    rows = list(await uow.session.execute(
        select(MemberFacts.member_id, MemberFacts.last_order_at, MemberFacts.orders,
               MemberFacts.paid_fen - MemberFacts.refunded_fen)
        .where(MemberFacts.tenant_id == tenant, MemberFacts.orders > 0, MemberFacts.last_order_at.is_not(None))))
    if not rows:
        return {}
    rec = quintile_scores([int((now - (r[1] or now)).total_seconds() // 86400) for r in rows],
                          higher_is_better=False)
    frq = quintile_scores([int(r[2]) for r in rows])
    mon = quintile_scores([int(r[3]) for r in rows])
    out = {}
    for i, r in enumerate(rows):
        s = Rfm(rec[i], frq[i], mon[i])
        out[int(r[0])] = (s, segment(s), int(r[3]))
    return out


async def rfm(uow: UnitOfWork, tenant: int, now: datetime) -> list[RfmSegment]:
    counts: dict[str, int] = defaultdict(int)
    revenue: dict[str, int] = defaultdict(int)
    for _s, name, fen in (await rfm_scores(uow, tenant, now)).values():
        counts[name] += 1
        revenue[name] += fen
    return [RfmSegment(n, counts[n], revenue[n]) for n in SEGMENT_ORDER]


# -- attribution ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attributed:
    key: str           # acquisition kind, QR scene, distributor member id, group-buy campaign id
    label: str
    members: int
    buyers: int
    revenue_fen: int


@dataclass(frozen=True)
class Attribution:
    kinds: list[Attributed]
    scenes: list[Attributed]
    distributors: list[Attributed]
    campaigns: list[Attributed]


async def attribution(uow: UnitOfWork, tenant: int, *, limit: int = 50) -> Attribution:
    """Which acquisition kinds, QR scenes, referral distributors and group-buy campaigns
    brought members, buyers and net revenue (the members' whole net revenue so far)."""
    net = MemberFacts.paid_fen - MemberFacts.refunded_fen
    buyers = func.sum(func.cast(MemberFacts.orders > 0, MemberFacts.orders.type))

    async def grouped(col: Any, *where: Any) -> list[tuple[str, int, int, int]]:
        q = (select(col, func.count(), buyers, func.coalesce(func.sum(net), 0))
             .where(MemberFacts.tenant_id == tenant, *where).group_by(col)
             .order_by(func.coalesce(func.sum(net), 0).desc()).limit(limit))
        return [(str(k), int(n), int(b or 0), int(r)) for k, n, b, r in await uow.session.execute(q)]

    kinds = [Attributed(k, ACQ_ZH.get(k, k), n, b, r) for k, n, b, r in await grouped(MemberFacts.acq_kind)]
    scenes = [Attributed(k, k, n, b, r) for k, n, b, r in
              await grouped(MemberFacts.acq_source, MemberFacts.acq_source != "")]
    dists = [Attributed(k, f"会员 #{k}", n, b, r) for k, n, b, r in
             await grouped(MemberFacts.referrer_id, MemberFacts.referrer_id != 0)]
    # group-buy campaigns: the members who came through a team's QR code (gb_<team>), the
    # team's campaign from its groupbuy.open event
    team_campaign: dict[str, int] = {}
    for ref, props in await uow.session.execute(
            select(Event.ref, Event.props).where(Event.tenant_id == tenant, Event.kind == "groupbuy.open")):
        c = props.get("campaign") if isinstance(props, dict) else None
        if isinstance(c, int):
            team_campaign[f"gb_{ref}"] = c
    camp: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for s in scenes:
        c = team_campaign.get(s.key)
        if c is not None:
            acc = camp[c]
            acc[0] += s.members
            acc[1] += s.buyers
            acc[2] += s.revenue_fen
    campaigns = [Attributed(str(c), f"拼团活动 #{c}", *v) for c, v in sorted(camp.items(), key=lambda kv: -kv[1][2])]
    return Attribution(kinds, scenes, dists, campaigns)


# -- a member's timeline -----------------------------------------------------------------------------

KIND_ZH = {
    "subscribe": "关注", "unsubscribe": "取消关注", "scan": "扫码", "message": "发消息", "menu.click": "点击菜单",
    "product.view": "浏览商品", "category.view": "浏览分类", "search": "搜索", "cart.add": "加入购物车",
    "checkout.start": "开始结算", "order.placed": "下单", "order.paid": "支付", "order.cancelled": "订单取消",
    "order.completed": "确认收货", "order.refunded": "退款", "member.joined": "成为会员",
    "groupbuy.open": "开团", "groupbuy.join": "参团", "referral.bound": "绑定推荐人", "coupon.claimed": "领取优惠券",
    "store.verify": "到店核销", "campaign.open": "打开推送",
}


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str
    label: str
    channel: str
    source: str
    ref: int
    amount_fen: int
    detail: str


async def timeline(uow: UnitOfWork, tenant: int, member: int, *, limit: int = 50) -> list[TimelineItem]:
    rows = await uow.session.execute(
        select(Event.at, Event.kind, Event.channel, Event.source, Event.ref, Event.amount_fen, Event.props)
        .where(Event.tenant_id == tenant, Event.member_id == member)
        .order_by(Event.at.desc(), Event.id.desc()).limit(limit))
    out = []
    for at, kind, ch, src, ref, amt, props in rows:
        p = props if isinstance(props, dict) else {}
        detail = " ".join(f"{k}={v}" for k, v in sorted(p.items()) if k in ("q", "results", "key", "kind", "qty",
                                                                            "title", "campaign"))
        out.append(TimelineItem(at, kind, KIND_ZH.get(kind, kind), ch, src, int(ref), int(amt), detail))
    return out


def percent(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def yuan(fen: int | None) -> str:
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}¥{fen // 100}.{fen % 100:02d}"


def weeks_header(n: int) -> Sequence[str]:
    return [f"第{k}周" for k in range(1, n + 1)]
