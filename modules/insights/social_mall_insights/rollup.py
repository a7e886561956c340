"""Daily rollups and retention.

`rollup_day` recomputes one Shanghai day of one tenant from the raw events (idempotent:
the day's rows are replaced), grouped by channel, acquisition kind (the member's, from
insights_members) and event kind, with distinct members; kind "*" is every member seen
that day (a visit; what was done to a member, on the GIVEN_CHANNELS, is none). The job `insights.rollup` (every 10 minutes) redoes today and
yesterday for every tenant with events in them, so reports read at most a day of raw
events beside the rollup. `apply_retention` deletes a tenant's raw events older than its
`retention_days`; the rollups stay."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import delete, distinct, func, insert, select

from social_mall_insights.models import Daily, Delivered, Event, MemberFacts, Settings
from social_mall_insights.recorder import rowcount
from social_mall_insights.rules import GIVEN_CHANNELS, ORGANIC, day_bounds, shanghai_day
from storage.uow import UnitOfWork

DEFAULT_RETENTION_DAYS = 730


async def rollup_day(uow: UnitOfWork, tenant: int, day: date) -> int:
    a, b = day_bounds(day)
    src = func.coalesce(MemberFacts.acq_kind, ORGANIC)
    joined = (Event.__table__.outerjoin(
        MemberFacts.__table__, (MemberFacts.tenant_id == Event.tenant_id) & (MemberFacts.member_id == Event.member_id)))
    where = (Event.tenant_id == tenant, Event.at >= a, Event.at < b)
    channel = func.coalesce(func.nullif(Event.channel, ""), MemberFacts.first_channel, "")
    by_kind = (select(channel, src, Event.kind, func.count(), func.count(distinct(Event.member_id)),
                      func.coalesce(func.sum(Event.amount_fen), 0))
               .select_from(joined).where(*where).group_by(channel, src, Event.kind))
    visits = (select(channel, src, func.count(), func.count(distinct(Event.member_id)))
              .select_from(joined).where(*where, Event.member_id != 0, Event.channel.not_in(GIVEN_CHANNELS))
              .group_by(channel, src))
    rows = [{"tenant_id": tenant, "day": day, "channel": ch, "source": s, "kind": k, "events": n, "members": m,
             "amount_fen": int(amt)} for ch, s, k, n, m, amt in await uow.session.execute(by_kind)]
    rows += [{"tenant_id": tenant, "day": day, "channel": ch, "source": s, "kind": "*", "events": n, "members": m,
              "amount_fen": 0} for ch, s, n, m in await uow.session.execute(visits)]
    await uow.session.execute(delete(Daily).where(Daily.tenant_id == tenant, Daily.day == day))
    if rows:
        await uow.session.execute(insert(Daily), rows)
    return len(rows)


async def tenants_with_events(uow: UnitOfWork, since: datetime) -> list[int]:
    return [t for (t,) in await uow.session.execute(
        select(Event.tenant_id).where(Event.at >= since).group_by(Event.tenant_id))]


async def rollup_recent(uow: UnitOfWork, now: datetime, days: int = 2) -> int:
    today = shanghai_day(now)
    first = today - timedelta(days=days - 1)
    n = 0
    for tenant in await tenants_with_events(uow, day_bounds(first)[0]):
        for k in range(days):
            n += await rollup_day(uow, tenant, first + timedelta(days=k))
    return n


async def retention_days(uow: UnitOfWork, tenant: int) -> int:
    v = await uow.session.scalar(select(Settings.retention_days).where(Settings.tenant_id == tenant))
    return int(v) if v else DEFAULT_RETENTION_DAYS


async def drop_expired_months(uow: UnitOfWork, now: datetime) -> list[str]:
    """PostgreSQL: drop whole month partitions no tenant keeps (partitions.drop_expired)."""
    from social_mall_insights.partitions import drop_expired

    async def cutoff(tenant: int) -> datetime:
        return now - timedelta(days=await retention_days(uow, tenant))

    return await drop_expired(uow.session, now, cutoff)


async def apply_retention(uow: UnitOfWork, now: datetime) -> int:
    """Delete raw events past each tenant's retention (rollups and member facts stay); on
    PostgreSQL after dropping the months no tenant keeps (`drop_expired_months`), so the
    DELETE only meets the rows of months some tenant still keeps."""
    gone = 0
    for (tenant,) in await uow.session.execute(select(Event.tenant_id).group_by(Event.tenant_id)):
        cutoff = now - timedelta(days=await retention_days(uow, tenant))
        res = await uow.session.execute(delete(Event).where(Event.tenant_id == tenant, Event.at < cutoff))
        gone += rowcount(res)
    await uow.session.execute(delete(Delivered).where(Delivered.at < now - timedelta(days=30)))
    return gone
