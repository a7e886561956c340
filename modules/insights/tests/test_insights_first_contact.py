"""A crowd's first contacts through the insights module (#18): the member.joined lot is
recorded once (a repeated delivery adds nothing), each member gets one facts row with its
first sight, and the activity recorder's next flush does not insert those rows again (the
subscriber told it) while still moving their last-seen time. Both backends (PostgreSQL:
the constant-shape unnest statements)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select

from social_mall.activity import Activity
from social_mall.plugins import Delivery
from social_mall_insights.models import Delivered, Event, MemberFacts
from social_mall_insights import recorder
from social_mall_insights.recorder import Recorder
from social_mall_insights.subscribers import record

AT = datetime(2026, 12, 4, 9, 30, tzinfo=timezone.utc)


def joined(i: int, tenant: int, member: int) -> Delivery:
    return Delivery(1000 + i, tenant, "member.joined",
                    {"tenant_id": tenant, "member_id": member, "channel": "mp", "entry_source": "qr1" if i == 0 else ""}, 1)


async def test_a_crowd_of_joins_is_recorded_once_and_the_flush_does_not_insert_their_facts_again(
        backend, engine, uows, demo, monkeypatch):
    t = demo.id
    lot = [joined(i, t, 500 + i) for i in range(5)]
    async with uows() as uow:
        keys = await record(uow, lot, AT)
        await uow.commit()
    assert sorted(keys) == [(t, 500 + i) for i in range(5)]
    async with uows() as uow:                      # the same lot again (the outbox retried it)
        assert await record(uow, lot, AT) == []
        await uow.commit()
    async with uows() as uow:
        s = uow.session
        assert await s.scalar(select(func.count()).select_from(Delivered)) == 5
        assert await s.scalar(select(func.count()).select_from(Event).where(Event.kind == "member.joined")) == 5
        facts = {f.member_id: f for f in (await s.execute(select(MemberFacts).where(MemberFacts.tenant_id == t))).scalars()}
    assert sorted(facts) == [500 + i for i in range(5)]
    assert facts[500].acq_source == "qr1" and facts[500].acq_kind != "organic"
    assert facts[501].acq_kind == "organic" and facts[501].first_channel == "mp"
    assert all(f.first_seen_at == AT and f.last_seen_at is None for f in facts.values())

    rec = Recorder(lambda: uows)
    rec.known(keys)
    later = datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)
    for m in (500, 501, 777):                      # two joined members and one the subscriber never saw
        rec(Activity(t, m, "mp", "message", later, 0, "", {}))
    ensured: list[int] = []
    real = recorder.ensure_facts

    async def spy(uow, seen):                      # noqa: ANN001
        ensured.extend(m for _, m, _, _, _ in seen)
        await real(uow, seen)

    monkeypatch.setattr(recorder, "ensure_facts", spy)
    assert await rec.flush() == 3
    assert ensured == [777]                        # the joined members' rows are not inserted again
    async with uows() as uow:
        rows = {f.member_id: f for f in (await uow.session.execute(
            select(MemberFacts).where(MemberFacts.tenant_id == t))).scalars()}
    assert sorted(rows) == [500, 501, 502, 503, 504, 777]
    assert rows[500].last_seen_at == later and rows[501].last_seen_at == later and rows[777].last_seen_at == later
    assert rows[502].last_seen_at is None


async def test_last_seen_moves_forward_for_many_members_at_once_and_never_back(backend, engine, uows, demo):
    """set_last_seen writes a crowd in one go (PostgreSQL: unnest; SQLite: one prebuilt
    statement, executemany): each member's time moves forward only."""
    t = demo.id
    lot = [joined(i, t, 600 + i) for i in range(4)]
    async with uows() as uow:
        await record(uow, lot, AT)
        await uow.commit()
    later = datetime(2026, 12, 4, 11, 0, tzinfo=timezone.utc)
    earlier = datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)
    async with uows() as uow:
        await recorder.set_last_seen(uow, {(t, 600): later, (t, 601): later, (t, 602): earlier})
        await uow.commit()
    async with uows() as uow:   # 600 comes back with an older time; 602 with a newer one; 603 untouched
        await recorder.set_last_seen(uow, {(t, 600): earlier, (t, 602): later})
        await uow.commit()
    async with uows() as uow:
        rows = {f.member_id: f.last_seen_at for f in (await uow.session.execute(
            select(MemberFacts).where(MemberFacts.tenant_id == t, MemberFacts.member_id >= 600))).scalars()}
    assert rows == {600: later, 601: later, 602: later, 603: None}
