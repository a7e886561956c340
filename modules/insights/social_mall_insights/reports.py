"""The console's reports, read from the rollups and member facts (pre-aggregates) and, for
cohorts and LTV, the paid/refunded events through the (tenant_id, kind, at) index; the
arithmetic in Python (portable between SQLite and PostgreSQL; bench/insights.py measures it
at 1,000,000 events). Money stays integer fen; averages are rounded fen; rates are floats
for display only."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from datetime import date, datetime, timedelta

from sqlalchemy import distinct, func, select, text

from social_mall_insights.models import Daily, Event, MemberFacts, MemberWeek
from social_mall_insights.rules import ACQ_ZH, SEGMENT_ORDER, SEGMENTS as SEGMENT_NAMES, Rfm, median, segment, shanghai_day
from social_mall_insights.rules import coupon_source_zh, week_start
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


SCENES_LISTED = 30   # the entry scenes the funnel offers (most members first)


async def entry_scenes(uow: UnitOfWork, tenant: int, *, limit: int = SCENES_LISTED) -> list[tuple[str, int]]:
    """The QR scenes / links members first came through (a distributor's ref_…, a team's
    gb_…, a poster's…), most members first: (scene, members)."""
    q = (select(MemberFacts.acq_source, func.count()).where(MemberFacts.tenant_id == tenant,
                                                             MemberFacts.acq_source != "")
         .group_by(MemberFacts.acq_source).order_by(func.count().desc(), MemberFacts.acq_source).limit(limit))
    return [(str(s), int(n)) for s, n in await uow.session.execute(q)]


async def scene_funnel(uow: UnitOfWork, tenant: int, first: date, last: date, scene: str) -> Funnel:
    """`funnel` for the members who first came through one entry scene, from their raw
    events (the rollups keep the acquisition kind, not the scene: a scene has a handful to
    thousands of members, read through (tenant, member, at)): members at each stage per
    Shanghai day, a visit being any event of theirs off the given channels."""
    from social_mall_insights.rules import GIVEN_CHANNELS, day_bounds

    kinds = [k for k, _ in STAGES]
    a, _ = day_bounds(first)
    _, b = day_bounds(last)
    members = [int(m) for (m,) in await uow.session.execute(select(MemberFacts.member_id).where(
        MemberFacts.tenant_id == tenant, MemberFacts.acq_source == scene))]
    seen: dict[date, list[set[int]]] = defaultdict(lambda: [set() for _ in kinds])
    paid: dict[date, int] = defaultdict(int)
    for i in range(0, len(members), 500):
        for member, kind, channel, at, fen in await uow.session.execute(
                select(Event.member_id, Event.kind, Event.channel, Event.at, Event.amount_fen).where(
                    Event.tenant_id == tenant, Event.member_id.in_(members[i:i + 500]), Event.at >= a, Event.at < b)):
            day = shanghai_day(at)
            stages = seen[day]
            if channel not in GIVEN_CHANNELS:
                stages[0].add(int(member))
            if kind in kinds[1:]:
                stages[kinds.index(kind)].add(int(member))
                if kind == "order.paid":
                    paid[day] += int(fen)
    rows = []
    d = first
    while d <= last:
        rows.append(FunnelRow(d, tuple(len(x) for x in seen[d]) if d in seen else (0,) * len(kinds), paid.get(d, 0)))
        d += timedelta(days=1)
    total = FunnelRow(last, tuple(sum(r.counts[i] for r in rows) for i in range(len(kinds))),
                      sum(r.paid_fen for r in rows))
    return Funnel(rows, total, [], [])


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


_PG_LTV = text("""
SELECT month, acq, GROUPING(month) AS gm, GROUPING(acq) AS ga, count(*) AS n,
  avg(ltv30) FILTER (WHERE first_order_at <= :c0), percentile_cont(0.5) WITHIN GROUP (ORDER BY ltv30)
    FILTER (WHERE first_order_at <= :c0), count(*) FILTER (WHERE first_order_at <= :c0),
  avg(ltv90) FILTER (WHERE first_order_at <= :c1), percentile_cont(0.5) WITHIN GROUP (ORDER BY ltv90)
    FILTER (WHERE first_order_at <= :c1), count(*) FILTER (WHERE first_order_at <= :c1),
  avg(ltv180) FILTER (WHERE first_order_at <= :c2), percentile_cont(0.5) WITHIN GROUP (ORDER BY ltv180)
    FILTER (WHERE first_order_at <= :c2), count(*) FILTER (WHERE first_order_at <= :c2),
  avg(ltv365) FILTER (WHERE first_order_at <= :c3), percentile_cont(0.5) WITHIN GROUP (ORDER BY ltv365)
    FILTER (WHERE first_order_at <= :c3), count(*) FILTER (WHERE first_order_at <= :c3)
FROM (SELECT to_char(first_order_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS month, acq_kind AS acq,
             first_order_at, ltv30, ltv90, ltv180, ltv365
      FROM insights_members WHERE tenant_id = :tenant AND first_order_at >= :since) AS s
GROUP BY GROUPING SETS ((month, acq), (month), (acq), ())
""")


def _fen(v: object) -> int | None:
    """An average or a median from SQL (Decimal, float) as whole fen (floor)."""
    return None if v is None else math.floor(float(str(v)))


async def _ltv_pg(uow: UnitOfWork, tenant: int, now: datetime, since: datetime) -> list[LtvRow]:
    cuts = {f"c{i}": now - timedelta(days=h) for i, h in enumerate(HORIZONS)}
    rows = []
    for r in await uow.session.execute(_PG_LTV, {"tenant": tenant, "since": since, **cuts}):
        month, acq, gm, ga, n, *stats = r
        cohort = "全部" if gm else str(month)
        avgs = tuple(_fen(stats[3 * i]) for i in range(len(HORIZONS)))
        meds = tuple(_fen(stats[3 * i + 1]) for i in range(len(HORIZONS)))
        counted = tuple(int(stats[3 * i + 2]) for i in range(len(HORIZONS)))
        rows.append(LtvRow(cohort, "" if ga else str(acq), int(n), avgs, meds, counted))
    rows.sort(key=lambda x: (x.cohort == "全部", x.cohort, x.acq))
    return rows


async def ltv(uow: UnitOfWork, tenant: int, now: datetime, *, months_back: int = 12) -> list[LtvRow]:
    """Cumulative net revenue (paid − refunded) per member within 30/90/180/365 days of the
    first paid order, by first-order month and acquisition kind, plus each kind over all
    months ("全部"). A horizon counts only members whose first order is at least that old.
    Reads the member facts' LTV columns (kept as orders are paid and refunded), one row a
    buyer: no event scan. On PostgreSQL the grouping, averages and medians run in SQL
    (GROUPING SETS, percentile_cont): 60,000 buyers in one statement."""
    since = now - timedelta(days=31 * months_back)
    bind = uow.session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        return await _ltv_pg(uow, tenant, now, since)
    return await ltv_python(uow, tenant, now, since)


async def ltv_python(uow: UnitOfWork, tenant: int, now: datetime, since: datetime) -> list[LtvRow]:
    """`ltv` with the arithmetic in Python (SQLite; bench/insights.py compares it with the SQL)."""
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
            avgs.append(sum(vals) // len(vals) if vals else None)
            meds.append(median(vals) if vals else None)
        rows.append(LtvRow(cohort, acq, len(items), tuple(avgs), tuple(meds), tuple(counted)))
    return rows


# -- RFM -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RfmSegment:
    name: str
    members: int
    revenue_fen: int


def _scored(tenant: int) -> Any:
    """R, F, M quintiles per buyer in SQL (window functions: PostgreSQL and SQLite alike):
    a value's score is 1 + (its rank − 1) × 5 ÷ buyers, ties sharing the lowest rank (as
    rules.quintile_scores). R ranks the last order's time (later: higher), F the orders, M
    the net fen."""
    net = (MemberFacts.paid_fen - MemberFacts.refunded_fen).label("net")
    base = (select(MemberFacts.member_id, MemberFacts.last_order_at, MemberFacts.orders, net)
            .where(MemberFacts.tenant_id == tenant, MemberFacts.orders > 0, MemberFacts.last_order_at.is_not(None))
            .subquery())
    n = func.count().over()

    def q(col: Any) -> Any:
        return 1 + ((func.rank().over(order_by=col) - 1) * 5) // n

    return select(base.c.member_id, q(base.c.last_order_at).label("r"), q(base.c.orders).label("f"),
                  q(base.c.net).label("m"), base.c.net).subquery()


async def rfm_scores(uow: UnitOfWork, tenant: int, now: datetime) -> dict[int, tuple[Rfm, str, int]]:
    """member → (scores, segment name, net fen), for members with a paid order."""
    s = _scored(tenant)
    out = {}
    for m, r, f, mm, net in await uow.session.execute(select(s.c.member_id, s.c.r, s.c.f, s.c.m, s.c.net)):
        score = Rfm(int(r), int(f), int(mm))
        out[int(m)] = (score, segment(score), int(net))
    return out


async def rfm_by_segment(uow: UnitOfWork, tenant: int) -> dict[str, set[int]]:
    """Every buyer by RFM segment name (the high/low flags computed in SQL: three booleans a
    row, not the scores): what a page of segments shares."""
    s = _scored(tenant)
    out: dict[str, set[int]] = defaultdict(set)
    for m, r, f, mm in await uow.session.execute(select(s.c.member_id, s.c.r > 3, s.c.f > 3, s.c.m > 3)):
        out[SEGMENT_NAMES[(bool(r), bool(f), bool(mm))]].add(int(m))
    return dict(out)


async def rfm_members(uow: UnitOfWork, tenant: int, names: Sequence[str]) -> set[int]:
    """The members in those RFM segments, chosen in SQL (the same quintiles as
    `rfm_scores`; only the matching ids come back: a segment's count reads a sixth of the
    buyers, not all of them scored one by one)."""
    flags = [k for k, v in SEGMENT_NAMES.items() if v in set(names)]
    if not flags:
        return set()
    s = _scored(tenant)
    hi = (s.c.r > 3, s.c.f > 3, s.c.m > 3)

    def side(cond: Any, want: bool) -> Any:
        return cond if want else ~cond

    from sqlalchemy import and_, or_
    match = or_(*(and_(*(side(c, w) for c, w in zip(hi, f))) for f in flags))
    return {int(m) for (m,) in await uow.session.execute(select(s.c.member_id).where(match))}


async def rfm(uow: UnitOfWork, tenant: int, now: datetime) -> list[RfmSegment]:
    """Members and net revenue per segment: one grouped query (8 rows at most)."""
    s = _scored(tenant)
    hi = (s.c.r > 3, s.c.f > 3, s.c.m > 3)
    counts: dict[str, int] = defaultdict(int)
    revenue: dict[str, int] = defaultdict(int)
    for r, f, m, n, fen in await uow.session.execute(
            select(*hi, func.count(), func.coalesce(func.sum(s.c.net), 0)).group_by(*hi)):
        name = SEGMENT_NAMES[(bool(r), bool(f), bool(m))]
        counts[name] += int(n)
        revenue[name] += int(fen)
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
    coupons: list[Attributed] = field(default_factory=list)   # by how given: members given, users, their orders' pay
    views: list[ViewSource] = field(default_factory=list)     # product views by tracking token (recommendations…)


#: what a tracking token on a product view stands for (the recommendation placements'
#: tokens, `rec.<placement>`); any other token is shown as it is
VIEW_SOURCE_ZH = {"rec.for_me": "猜你喜欢", "rec.related": "买了它的人还买了", "rec.paid": "支付后推荐"}
SHOWN = "rec.shown"                  # a recommendation's showing (one per product shown; source its token)
VIEW_WINDOW = timedelta(days=7)      # a view's purchases: paid within 7 days after the member's first such view
VIEW_SINCE = timedelta(days=30)      # the views counted: the last 30 days


@dataclass(frozen=True)
class ViewSource:
    """Product views that came through one tracking token (a recommendation's placement, a
    link's ?src=) over the last 30 days: views, members who viewed, and of those the ones
    who paid within 7 days after their first such view, their paid orders and revenue."""

    key: str
    label: str
    views: int
    members: int
    buyers: int
    orders: int
    revenue_fen: int
    shown: int = 0       # products shown at that placement (activity `rec.shown`; 0: a link's token)

    @property
    def conversion(self) -> float | None:
        return self.buyers / self.members if self.members else None

    @property
    def ctr(self) -> float | None:
        """Click-through: views that came through the token over the products shown with it."""
        return self.views / self.shown if self.shown else None


async def view_sources(uow: UnitOfWork, tenant: int, now: datetime, *, limit: int = 50) -> list[ViewSource]:
    """Click-through and revenue per tracking token (see ViewSource). Two reads on the
    (tenant, kind, at) index: the tokened views of the last 30 days, then the paid orders
    of the members who viewed, from their first view on."""
    since = now - VIEW_SINCE
    views: dict[str, int] = defaultdict(int)
    first: dict[tuple[str, int], datetime] = {}
    for src, member, at in await uow.session.execute(
            select(Event.source, Event.member_id, Event.at).where(
                Event.tenant_id == tenant, Event.kind == "product.view", Event.at >= since, Event.source != "")):
        views[str(src)] += 1
        if member:
            seen = (str(src), int(member))
            if seen not in first or at < first[seen]:
                first[seen] = at
    members = sorted({m for _, m in first})
    paid: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for i in range(0, len(members), 500):
        for member, at, fen in await uow.session.execute(
                select(Event.member_id, Event.at, Event.amount_fen).where(
                    Event.tenant_id == tenant, Event.kind == "order.paid", Event.at >= since,
                    Event.member_id.in_(members[i:i + 500]))):
            paid[int(member)].append((at, int(fen)))
    shown = {str(src): int(n) for src, n in await uow.session.execute(
        select(Event.source, func.count()).where(Event.tenant_id == tenant, Event.kind == SHOWN, Event.at >= since)
        .group_by(Event.source))}
    out = []
    for key in sorted(set(views) | set(shown)):
        n = views.get(key, 0)
        viewers = [(m, at) for (k, m), at in first.items() if k == key]
        buyers = orders = revenue = 0
        for m, at in viewers:
            mine = [fen for when, fen in paid.get(m, ()) if at <= when < at + VIEW_WINDOW]
            buyers += bool(mine)
            orders += len(mine)
            revenue += sum(mine)
        out.append(ViewSource(key, VIEW_SOURCE_ZH.get(key, key), n, len(viewers), buyers, orders, revenue,
                              shown.get(key, 0)))
    out.sort(key=lambda v: (-v.revenue_fen, -v.views, v.key))
    return out[:limit]


async def attribution(uow: UnitOfWork, tenant: int, *, limit: int = 50, now: datetime | None = None) -> Attribution:
    """Which acquisition kinds, QR scenes, referral distributors and group-buy campaigns
    brought members, buyers and net revenue (the members' whole net revenue so far); with
    `now`, also the product views by tracking token (view_sources)."""
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
    return Attribution(kinds, scenes, dists, campaigns, await _coupons(uow, tenant, limit),
                       await view_sources(uow, tenant, now, limit=limit) if now is not None else [])


async def _coupons(uow: UnitOfWork, tenant: int, limit: int) -> list[Attributed]:
    """Coupons by how they were given (claimed, an admin, a job): members given one, members
    who used one, and what the orders they were used on paid."""
    given = dict((str(s), int(n)) for s, n in await uow.session.execute(
        select(Event.source, func.count(distinct(Event.member_id)))
        .where(Event.tenant_id == tenant, Event.kind == "coupon.claimed").group_by(Event.source)))
    users: dict[str, set[int]] = defaultdict(set)
    orders: dict[int, str] = {}
    for src, member, props in await uow.session.execute(select(Event.source, Event.member_id, Event.props).where(
            Event.tenant_id == tenant, Event.kind == "coupon.used")):
        users[str(src)].add(int(member))
        o = props.get("order") if isinstance(props, dict) else None
        if isinstance(o, int) and o:
            orders[o] = str(src)
    revenue: dict[str, int] = defaultdict(int)
    ids = sorted(orders)
    for i in range(0, len(ids), 500):
        for ref, fen in await uow.session.execute(select(Event.ref, Event.amount_fen).where(
                Event.tenant_id == tenant, Event.kind == "order.paid", Event.ref.in_(ids[i:i + 500]))):
            revenue[orders[int(ref)]] += int(fen)
    keys = sorted(set(given) | set(users), key=lambda k: (-revenue[k], -given.get(k, 0), k))[:limit]
    return [Attributed(k, coupon_source_zh(k), given.get(k, 0), len(users[k]), revenue[k]) for k in keys]


# -- a member's timeline -----------------------------------------------------------------------------

KIND_ZH = {
    "subscribe": "关注", "unsubscribe": "取消关注", "scan": "扫码", "message": "发消息", "menu.click": "点击菜单",
    "product.view": "浏览商品", "category.view": "浏览分类", "search": "搜索", "cart.add": "加入购物车",
    "checkout.start": "开始结算", "order.placed": "下单", "order.paid": "支付", "order.cancelled": "订单取消",
    "order.completed": "确认收货", "order.refunded": "退款", "member.joined": "成为会员",
    "groupbuy.open": "开团", "groupbuy.join": "参团", "referral.bound": "绑定推荐人", "coupon.claimed": "领取优惠券",
    "store.verify": "到店核销", "campaign.open": "打开推送", "rec.shown": "看到推荐", "coupon.used": "使用优惠券",
    "share": "分享被打开",
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
                                                                            "title", "campaign", "via", "what",
                                                                            "order"))
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
