"""Dashboard figures for one tenant: today's orders, GMV, paying members, visit → order
conversion, and a daily series (orders, GMV) for the chart. Days are Shanghai days."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from social_mall.console import rules
from storage.console_repos import ConsoleRepo
from storage.uow import UnitOfWork

VISIT_TOPICS = ("member.joined", "member.entered", "order.placed")


@dataclass(frozen=True)
class DayPoint:
    day: date
    orders: int
    gmv_fen: int


@dataclass(frozen=True)
class Dashboard:
    today: date
    orders_today: int
    gmv_today_fen: int
    paying_members_today: int
    visitors_today: int
    ordering_members_today: int
    series: tuple[DayPoint, ...]
    status_counts: dict[str, int]
    refunds_failed: int = 0  # orders whose refund the gateway refused: the merchant's to-do

    @property
    def conversion_permille(self) -> int:
        """Ordering members per thousand visitors today (integer; shown as a percentage)."""
        if not self.visitors_today:
            return 0
        return min(1000, self.ordering_members_today * 1000 // self.visitors_today)


async def dashboard(uow: UnitOfWork, tenant: int, now: datetime, *, days: int = 14) -> Dashboard:
    repo = ConsoleRepo(uow.session)
    today = rules.shanghai_date(now)
    first = today - timedelta(days=days - 1)
    since, today_start = rules.day_start(first), rules.day_start(today)
    orders: dict[date, int] = defaultdict(int)
    gmv: dict[date, int] = defaultdict(int)
    ordering: set[int] = set()
    for at, member in await repo.orders_created(tenant, since):
        orders[rules.shanghai_date(at)] += 1
        if at >= today_start:
            ordering.add(member)
    paying: set[int] = set()
    for at, fen, member in await repo.orders_paid(tenant, since):
        gmv[rules.shanghai_date(at)] += fen
        if at >= today_start:
            paying.add(member)
    visitors = set(await repo.visits(tenant, today_start, VISIT_TOPICS)) | ordering
    series = tuple(DayPoint(d, orders[d], gmv[d]) for d in (first + timedelta(days=i) for i in range(days)))
    return Dashboard(
        today=today, orders_today=orders[today], gmv_today_fen=gmv[today], paying_members_today=len(paying),
        visitors_today=len(visitors), ordering_members_today=len(ordering), series=series,
        status_counts=await uow.orders.count_by_status(tenant),
        refunds_failed=await repo.count_refund_failed(tenant),
    )
