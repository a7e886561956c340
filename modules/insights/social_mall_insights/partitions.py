"""Monthly partitions of insights_events on PostgreSQL (declarative partitioning).

The migration creates the table `PARTITION BY RANGE (at)` with a DEFAULT partition and the
current month and the next two; the job `insights.partitions` (daily) keeps three months
ahead. A month created after rows for it reached the DEFAULT partition (the job did not run)
takes them over: they are moved in the same transaction, so nothing is lost. Bounds are
month starts in UTC. Retention of raw events is per tenant (a DELETE by (tenant_id, at),
rollup.apply_retention); a month that no tenant with rows in it keeps any more is dropped
whole (`drop_expired`, run by the job insights.retention before the DELETE): dropping a
partition costs nothing whatever its size and leaves no dead rows for VACUUM. The rollups
and member facts keep the aggregates. The DEFAULT partition is never dropped."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

PARENT = "insights_events"
DEFAULT = "insights_events_default"
_MONTH = re.compile(rf"^{PARENT}_p(\d{{4}})(\d{{2}})$")
MIN_RETENTION = timedelta(days=30)   # the shortest retention a tenant may set
LOCK_KEY = 2_100_210_021             # one dropper at a time (pg_try_advisory_xact_lock)


def month_start(year: int, month: int) -> datetime:
    """`month` may run past 12 or below 1 (month + k)."""
    y, m = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(y, m, 1, tzinfo=timezone.utc)


def partition_name(start: datetime) -> str:
    return f"{PARENT}_p{start.year:04d}{start.month:02d}"


def month_ddl(year: int, month: int) -> list[str]:
    """Statements that create the month's partition, moving its rows out of DEFAULT first
    (literal bounds: computed here, never from input)."""
    a, b = month_start(year, month), month_start(year, month + 1)
    name = partition_name(a)
    lo, hi = a.isoformat(), b.isoformat()
    return [
        f"CREATE TEMP TABLE IF NOT EXISTS _insights_moving (LIKE {PARENT}) ON COMMIT DELETE ROWS",
        f"INSERT INTO _insights_moving SELECT * FROM {DEFAULT} WHERE at >= '{lo}' AND at < '{hi}'",
        f"DELETE FROM {DEFAULT} WHERE at >= '{lo}' AND at < '{hi}'",
        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {PARENT} FOR VALUES FROM ('{lo}') TO ('{hi}')",
        f"INSERT INTO {PARENT} SELECT * FROM _insights_moving",
        "DELETE FROM _insights_moving",
    ]


async def existing(session: AsyncSession) -> set[str]:
    rows = await session.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :parent "
        "AND p.relnamespace = to_regnamespace(current_schema())::oid"), {"parent": PARENT})
    return {r[0] for r in rows}


async def ensure_months(session: AsyncSession, first: datetime, last: datetime) -> list[str]:
    """Create the partitions of every month from `first` to `last` (inclusive) that do not
    exist yet; returns the names created. PostgreSQL only (the caller checks)."""
    have = await existing(session)
    made: list[str] = []
    k = 0
    while True:
        start = month_start(first.year, first.month + k)
        if start > last:
            break
        name = partition_name(start)
        if name not in have:
            for stmt in month_ddl(start.year, start.month):
                await session.execute(text(stmt))
            made.append(name)
        k += 1
    return made


async def ensure_ahead(session: AsyncSession, now: datetime, months: int = 3) -> list[str]:
    if session.bind is None or session.bind.dialect.name != "postgresql":
        return []
    return await ensure_months(session, now, month_start(now.year, now.month + months))


def month_of(name: str) -> tuple[datetime, datetime] | None:
    """A month partition's bounds [start, end) from its name; None for any other table."""
    m = _MONTH.match(name)
    if m is None or not 1 <= int(m[2]) <= 12:
        return None
    y, mo = int(m[1]), int(m[2])
    return month_start(y, mo), month_start(y, mo + 1)


async def drop_expired(session: AsyncSession, now: datetime,
                       cutoff: Callable[[int], Awaitable[datetime]]) -> list[str]:
    """Drop the month partitions whose every row is past its tenant's retention
    (`cutoff(tenant)`: the instant before which that tenant's raw events go), an empty one
    once it ends before the shortest retention; returns the names dropped. PostgreSQL only;
    one worker at a time (an advisory lock: another worker finds it taken and does
    nothing), idempotent. Rows of a month still kept by some tenant stay for the DELETE."""
    if session.bind is None or session.bind.dialect.name != "postgresql":
        return []
    if not await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY}):
        return []
    dropped: list[str] = []
    for name in sorted(await existing(session)):
        bounds = month_of(name)
        if bounds is None or bounds[1] > now - MIN_RETENTION:
            continue
        tenants = [int(t) for (t,) in await session.execute(text(f"SELECT DISTINCT tenant_id FROM {name}"))]
        kept = False
        for t in tenants:
            kept = kept or bounds[1] > await cutoff(t)
        if not kept:
            await session.execute(text("SET LOCAL lock_timeout = '5s'"))   # writers wait at most that
            await session.execute(text(f"DROP TABLE IF EXISTS {name}"))
            dropped.append(name)
    return dropped
