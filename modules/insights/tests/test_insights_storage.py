"""Storage on both backends: monthly partitions made ahead on PostgreSQL (rows that waited
in the DEFAULT partition move into their month), nothing to do on SQLite; retention deletes
a tenant's raw events past its setting and keeps the rollups; the daily rollup is
idempotent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, text

from social_mall_insights import partitions, rollup
from social_mall_insights.campaigns import Prefs, save_prefs
from social_mall_insights.models import Daily, Event
from social_mall_insights.recorder import write
from social_mall_insights.rules import shanghai_day


async def count(uows, *where) -> int:
    async with uows() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(Event).where(*where)))


async def test_partitions_ahead_and_rows_from_the_default_partition_move_in(backend, engine, uows, demo):
    now = datetime(2031, 3, 15, tzinfo=timezone.utc)          # months no partition exists for yet
    async with uows() as uow:
        await write(uow, [(demo.id, 7, now + timedelta(days=40), "message", "mp", "", 0, 0, {})])
        await uow.commit()
    async with uows() as uow:
        made = await partitions.ensure_ahead(uow.session, now)
        await uow.commit()
    if backend.name == "sqlite":
        assert made == []
    else:
        assert made == ["insights_events_p203103", "insights_events_p203104", "insights_events_p203105",
                        "insights_events_p203106"]
        async with uows() as uow:
            in_april = await uow.session.scalar(text("SELECT count(*) FROM insights_events_p203104"))
            in_default = await uow.session.scalar(text(
                "SELECT count(*) FROM insights_events_default WHERE at >= '2031-01-01'"))
            assert (in_april, in_default) == (1, 0)
        async with uows() as uow:                               # again: nothing new
            assert await partitions.ensure_ahead(uow.session, now) == []
    assert await count(uows, Event.member_id == 7) == 1


async def test_retention_deletes_old_raw_events_and_keeps_the_rollups(backend, engine, uows, demo):
    now = datetime.now(timezone.utc)
    old = now - timedelta(days=40)
    async with uows() as uow:
        await write(uow, [(demo.id, 8, old, "message", "mp", "", 0, 0, {}),
                          (demo.id, 8, now - timedelta(days=1), "message", "mp", "", 0, 0, {})])
        await save_prefs(uow, demo.id, Prefs(retention_days=30))
        await uow.commit()
    async with uows() as uow:
        for _ in range(2):                                          # idempotent
            await rollup.rollup_day(uow, demo.id, shanghai_day(old))
        await uow.commit()
    async with uows() as uow:
        assert await rollup.apply_retention(uow, now) == 1
        await uow.commit()
    assert await count(uows, Event.member_id == 8) == 1
    async with uows() as uow:
        rows = (await uow.session.execute(select(Daily.kind, Daily.members).where(
            Daily.tenant_id == demo.id, Daily.day == shanghai_day(old)).order_by(Daily.kind))).all()
    assert rows == [("*", 1), ("message", 1)]
