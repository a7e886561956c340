"""The transactional outbox: events written with the change, delivered after commit,
retried with backoff, each row handed to one worker at a time."""

import asyncio
from datetime import datetime, timedelta, timezone

from social_mall.events import OrderPlaced
from social_mall.outbox import OutboxWorker, dispatch_due
from social_mall.plugins import Delivery, Module, build_registry
from storage.db import session_factory
from storage.uow import uow_factory

def t0() -> datetime:
    """Just after now: rows are written due at the wall clock's now."""
    return datetime.now(timezone.utc) + timedelta(seconds=1)


def event(i: int) -> OrderPlaced:
    return OrderPlaced(tenant_id=1, order_id=i, order_no=f"N{i}", member_id=7, total_fen=100 * i)


async def test_events_are_not_written_when_the_transaction_rolls_back(engine, demo):
    uows = uow_factory(session_factory(engine), {"order.placed": ["a"]})
    async with uows() as uow:
        uow.emit(event(1))
        await uow.rollback()
    async with uows() as uow:
        assert await uow.outbox.count("order.placed") == 0


async def test_a_failing_subscriber_is_retried_with_backoff_and_others_are_not_repeated(engine, demo):
    calls: dict[str, list[int]] = {"flaky": [], "steady": []}

    async def flaky(d: Delivery) -> None:
        calls["flaky"].append(d.attempt)
        if d.attempt < 3:
            raise RuntimeError("push API down")

    async def steady(d: Delivery) -> None:
        calls["steady"].append(d.attempt)

    subs = {("order.placed", "flaky"): flaky, ("order.placed", "steady"): steady}
    uows = uow_factory(session_factory(engine), {"order.placed": ["flaky", "steady"]})
    async with uows() as uow:
        uow.emit(event(1))
        await uow.commit()

    T0 = t0()
    now = T0
    assert await dispatch_due(uows, subs, now=lambda: now) == 1       # steady done, flaky failed
    assert await dispatch_due(uows, subs, now=lambda: now) == 0       # flaky not due yet
    now = T0 + timedelta(seconds=6)
    assert await dispatch_due(uows, subs, now=lambda: now) == 0       # second failure, 10 s wait
    now = T0 + timedelta(seconds=30)
    assert await dispatch_due(uows, subs, now=lambda: now) == 1
    assert calls == {"flaky": [1, 2, 3], "steady": [1]}
    async with uows() as uow:
        assert await uow.outbox.count("order.placed", status="done") == 1  # both rows of one event done
        assert await uow.outbox.pending_count() == 0


async def test_two_workers_dispatching_at_once_deliver_each_event_once(engine, demo):
    seen: list[int] = []

    async def record(d: Delivery) -> None:
        await asyncio.sleep(0.001)
        seen.append(int(d.payload["order_id"]))

    subs = {("order.placed", "rec"): record}
    uows = uow_factory(session_factory(engine), {"order.placed": ["rec"]})
    async with uows() as uow:
        for i in range(30):
            uow.emit(event(i))
        await uow.commit()
    a, b = OutboxWorker(uows, subs), OutboxWorker(uows, subs)
    await asyncio.gather(a.run_once(), b.run_once(), a.run_once())
    assert sorted(seen) == list(range(30))


async def test_a_lot_past_half_its_lease_gives_the_rest_back_undelivered(engine, demo):
    """Due rows are leased together; a slow subscriber never gets a row whose lease could
    run out under it (another worker would claim it again): past half the lease, the rest
    of the lot goes back, due at once, its attempt not counted."""
    clock = {"now": t0()}
    seen: list[tuple[int, int]] = []

    async def slow(d: Delivery) -> None:
        seen.append((int(d.payload["order_id"]), d.attempt))
        clock["now"] += timedelta(seconds=20)  # of the 60 s lease

    subs = {("order.placed", "slow"): slow}
    uows = uow_factory(session_factory(engine), {"order.placed": ["slow"]})
    async with uows() as uow:
        for i in range(5):
            uow.emit(event(i))
        await uow.commit()
    assert await dispatch_due(uows, subs, now=lambda: clock["now"]) == 2   # at 0 s and 20 s; 40 s: back
    async with uows() as uow:
        assert await uow.outbox.pending_count() == 3
    assert await dispatch_due(uows, subs, now=lambda: clock["now"]) == 2
    assert await dispatch_due(uows, subs, now=lambda: clock["now"]) == 1
    assert seen == [(i, 1) for i in range(5)]
    async with uows() as uow:
        assert await uow.outbox.pending_count() == 0


async def test_a_batched_subscriber_takes_its_rows_of_a_lot_in_one_call_or_each_alone(engine, demo):
    from social_mall.plugins import Batched

    lots: list[list[int]] = []
    singles: list[int] = []
    fail_lot = {"on": False}

    async def one(d: Delivery) -> None:
        if int(d.payload["order_id"]) == 3 and d.attempt == 1:
            raise RuntimeError("this one is bad")
        singles.append(int(d.payload["order_id"]))

    async def many(ds) -> None:
        if fail_lot["on"]:
            raise RuntimeError("the lot fails as a whole")
        lots.append([int(d.payload["order_id"]) for d in ds])

    subs = {("order.placed", "b"): Batched(one, many)}
    uows = uow_factory(session_factory(engine), {"order.placed": ["b"]})

    async def emit(ids) -> None:
        async with uows() as uow:
            for i in ids:
                uow.emit(event(i))
            await uow.commit()

    await emit(range(5))
    T0 = t0()
    assert await dispatch_due(uows, subs, now=lambda: T0) == 5
    assert lots == [[0, 1, 2, 3, 4]] and singles == []
    fail_lot["on"] = True
    await emit(range(2, 5))
    assert await dispatch_due(uows, subs, now=lambda: T0) == 2   # 2 and 4 alone; 3 fails alone
    assert singles == [2, 4]
    assert await dispatch_due(uows, subs, now=lambda: T0 + timedelta(seconds=6)) == 1   # 3's retry
    assert singles == [2, 4, 3]
    async with uows() as uow:
        assert await uow.outbox.pending_count() == 0


async def test_modules_register_subscribers_and_can_be_switched_off(engine, demo):
    got: list[str] = []

    def setup_a(reg):
        async def on(d): got.append("a")
        reg.subscribe("order.placed", "a.on", on)

    def setup_b(reg):
        async def on(d): got.append("b")
        reg.subscribe("order.placed", "b.on", on)

    reg = build_registry(object(), [Module("a", setup_a), Module("b", setup_b)], disabled=["b"])
    assert reg.modules == ["a"]
    uows = uow_factory(session_factory(engine), reg.topic_map())
    async with uows() as uow:
        uow.emit(event(1))
        await uow.commit()
    await dispatch_due(uows, reg.subscribers)
    assert got == ["a"]


def _statements(engine) -> list[str]:
    """The SQL texts sent on `engine` from now on (a list the caller reads later)."""
    from sqlalchemy import event as sa_event

    sent: list[str] = []
    sa_event.listen(engine.sync_engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: sent.append(statement))
    return sent


async def test_emit_many_writes_what_emit_writes_in_one_statement_of_one_shape(engine, demo, backend):
    """A crowd's events (the member desk's member.joined) go in with one INSERT, as `emit`
    would write them: one row per event (handed to each subscriber), a topic nobody listens to kept as a record
    ("done"), the payload delivered intact; on PostgreSQL the INSERT is the same statement
    whatever the number of events (prepared once, not once per batch size)."""
    from social_mall.events import MemberJoined

    seen: list[tuple[str, dict]] = []

    async def a(d: Delivery) -> None:
        seen.append(("a", dict(d.payload)))

    async def b(d: Delivery) -> None:
        seen.append(("b", dict(d.payload)))

    uows = uow_factory(session_factory(engine), {"member.joined": ["a", "b"]})
    sent = _statements(engine)
    inserts: list[list[str]] = []
    for lot in ([1], [2, 3, 4]):
        del sent[:]
        async with uows() as uow:
            await uow.emit_many([MemberJoined(tenant_id=1, member_id=m, channel="mp", entry_source="二维码·春节")
                                 for m in lot] + [event(m) for m in lot])   # order.placed: nobody listens
            await uow.commit()
        inserts.append([s for s in sent if s.lstrip().upper().startswith("INSERT")])
    assert [len(i) for i in inserts] == [1, 1]
    if backend.name == "pg":
        assert inserts[0] == inserts[1]
    async with uows() as uow:
        assert await uow.outbox.count("member.joined") == 4
        assert await uow.outbox.count("order.placed") == 4
        assert await uow.outbox.count("order.placed", status="done") == 4
        assert await uow.outbox.pending_count() == 4       # one row per event, not one per subscriber
    T0 = t0()
    subs = {("member.joined", "a"): a, ("member.joined", "b"): b}
    assert await dispatch_due(uows, subs, now=lambda: T0) == 8
    assert sorted((n, p["member_id"]) for n, p in seen) == [(n, m) for n in "ab" for m in (1, 2, 3, 4)]
    assert all(p["entry_source"] == "二维码·春节" and p["channel"] == "mp" for _, p in seen)
    async with uows() as uow:
        assert await uow.outbox.pending_count() == 0


async def test_leases_and_settlements_are_one_statement_whatever_the_lot(engine, demo, backend):
    """On PostgreSQL the lease and the settlement of a lot are the same statements for a
    lot of one and a lot of five (an id array, not an IN list per length)."""
    delivered: list[int] = []

    async def a(d: Delivery) -> None:
        delivered.append(int(d.payload["order_id"]))

    uows = uow_factory(session_factory(engine), {"order.placed": ["a"]})
    sent = _statements(engine)
    updates: list[list[str]] = []
    for lot in ([1], [2, 3, 4, 5, 6]):
        async with uows() as uow:
            for i in lot:
                uow.emit(event(i))
            await uow.commit()
        del sent[:]
        T0 = t0()
        assert await dispatch_due(uows, {("order.placed", "a"): a}, now=lambda: T0) == len(lot)
        updates.append([s for s in sent if s.lstrip().upper().startswith("UPDATE")])
    assert delivered == [1, 2, 3, 4, 5, 6]
    assert [len(u) for u in updates] == [2, 2]   # the lease, the settlement
    if backend.name == "pg":
        assert updates[0] == updates[1]


async def test_an_event_of_several_subscribers_is_one_row_and_a_failing_one_retries_alone(engine, demo):
    """One row for an event of three subscribers. One of them fails: the row is done and
    that subscriber gets a row of its own, retried alone with backoff, its deliveries
    carrying the id the others were handed (a subscriber's idempotency key holds); the
    others are never handed the event again."""
    from storage.models import OutboxEvent
    from sqlalchemy import select

    calls: list[tuple[str, int, int]] = []

    def sub(name: str, fails: int):
        async def on(d: Delivery) -> None:
            calls.append((name, d.id, d.attempt))
            if d.attempt <= fails:
                raise RuntimeError(f"{name} down")
        return on

    subs = {("order.placed", "a"): sub("a", 0), ("order.placed", "b"): sub("b", 2), ("order.placed", "c"): sub("c", 0)}
    uows = uow_factory(session_factory(engine), {"order.placed": ["a", "b", "c"]})
    async with uows() as uow:
        uow.emit(event(1))
        await uow.commit()
    async with uows() as uow:
        rows = (await uow.session.execute(select(OutboxEvent.id, OutboxEvent.subscriber))).all()
    assert [r.subscriber for r in rows] == ["*"]
    first_id = rows[0].id

    T0 = t0()
    assert await dispatch_due(uows, subs, now=lambda: T0) == 2
    assert await dispatch_due(uows, subs, now=lambda: T0 + timedelta(seconds=4)) == 0    # b: 5 s backoff
    assert await dispatch_due(uows, subs, now=lambda: T0 + timedelta(seconds=6)) == 0    # b fails again
    assert await dispatch_due(uows, subs, now=lambda: T0 + timedelta(seconds=30)) == 1
    assert calls == [("a", first_id, 1), ("b", first_id, 1), ("c", first_id, 1),
                     ("b", first_id, 2), ("b", first_id, 3)]
    async with uows() as uow:
        assert await uow.outbox.pending_count() == 0
        assert await uow.outbox.count("order.placed") == 1
        rows = (await uow.session.execute(select(OutboxEvent.subscriber, OutboxEvent.status, OutboxEvent.origin_id)
                                          .order_by(OutboxEvent.id))).all()
    assert [tuple(r) for r in rows] == [("*", "done", None), ("b", "done", first_id)]


async def test_a_fan_out_row_past_half_its_lease_owes_the_rest_to_rows_of_their_own(engine, demo):
    """A slow subscriber uses up half the lease in the middle of an event's subscribers:
    those reached are done, the others get rows of their own due at once, their attempt
    not counted; an event nobody was handed yet goes back whole."""
    from storage.models import OutboxEvent
    from sqlalchemy import select

    clock = {"now": t0()}
    calls: list[tuple[str, int, int]] = []

    def sub(name: str, slow: bool):
        async def on(d: Delivery) -> None:
            calls.append((name, int(d.payload["order_id"]), d.attempt))
            if slow:
                clock["now"] += timedelta(seconds=31)
        return on

    subs = {("order.placed", "a"): sub("a", True), ("order.placed", "b"): sub("b", False)}
    uows = uow_factory(session_factory(engine), {"order.placed": ["a", "b"]})
    async with uows() as uow:
        uow.emit(event(1))
        uow.emit(event(2))
        await uow.commit()
    assert await dispatch_due(uows, subs, now=lambda: clock["now"]) == 1     # a got event 1, then time ran out
    assert calls == [("a", 1, 1)]
    async with uows() as uow:
        rows = (await uow.session.execute(select(OutboxEvent.subscriber, OutboxEvent.status, OutboxEvent.attempts,
                                                 OutboxEvent.payload).order_by(OutboxEvent.id))).all()
    assert [(r.subscriber, r.status, r.attempts, r.payload["order_id"]) for r in rows] == [
        ("*", "done", 1, 1), ("*", "pending", 0, 2), ("b", "pending", 0, 1)]
    clock["now"] += timedelta(seconds=1)
    assert await dispatch_due(uows, subs, now=lambda: clock["now"]) >= 1
    while await dispatch_due(uows, subs, now=lambda: clock["now"]):
        pass
    assert sorted(calls) == [("a", 1, 1), ("a", 2, 1), ("b", 1, 1), ("b", 2, 1)]
    async with uows() as uow:
        assert await uow.outbox.pending_count() == 0
