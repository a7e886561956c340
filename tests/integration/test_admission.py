"""The admission step (social_mall/admission.py) on both stores: the in-process one and the
Redis Lua scripts (the `kv` fixture: memory on SQLite's leg, Redis on PostgreSQL's)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from social_mall.admission import Admission, Held, MemoryAdmissionStore, PoolTruth, Verdict, ms
from storage.admission import open_admission

NOW = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)


def make(kv) -> Admission:
    return Admission(open_admission(kv))


def loader_of(truth: PoolTruth, calls: list[int]):
    async def load() -> PoolTruth:
        calls.append(1)
        return truth
    return load


async def flush(adm: Admission, kv) -> None:
    """What a restarted Redis (no persistence) or FLUSHDB does to the store."""
    store = adm.store
    if isinstance(store, MemoryAdmissionStore):
        store.flush()
    else:
        keys = [k async for k in kv.redis.scan_iter(match=kv.prefix + "*")]
        if keys:
            await kv.redis.delete(*keys)


async def test_a_crowd_gets_exactly_the_stock_and_each_member_at_most_the_limit(kv):
    adm = make(kv)
    calls: list[int] = []
    load = loader_of(PoolTruth(stock_left=10, limit=2), calls)

    async def attempt(member: int) -> Verdict:
        a = await adm.reserve(1, "p", member, 1, now=NOW, hold_seconds=30, loader=load)
        return a.verdict

    verdicts = await asyncio.gather(*(attempt(m % 7) for m in range(60)))
    assert verdicts.count(Verdict.ADMITTED) == 10
    assert calls == [1]                          # one rebuild, however many asked at once
    state = await adm.state(1, "p")
    assert state.stock_left == 0 and state.reserved == 10
    assert all(q <= 2 for q in state.members.values())
    assert set(verdicts) <= {Verdict.ADMITTED, Verdict.SOLD_OUT, Verdict.OVER_LIMIT}
    # another tenant's pool of the same name is its own
    other = await adm.reserve(2, "p", 1, 1, now=NOW, hold_seconds=30, loader=loader_of(PoolTruth(1, 1), []))
    assert other.admitted


async def test_over_the_limit_is_refused_and_changes_nothing(kv):
    adm = make(kv)
    load = loader_of(PoolTruth(stock_left=5, limit=1), [])
    assert (await adm.reserve(1, "p", 7, 1, now=NOW, hold_seconds=30, loader=load)).admitted
    before = await adm.state(1, "p")
    refused = await adm.reserve(1, "p", 7, 1, now=NOW, hold_seconds=30, loader=load)
    assert refused.verdict == Verdict.OVER_LIMIT and refused.token == ""
    assert await adm.state(1, "p") == before


async def test_release_confirm_and_expiry_give_stock_back_once(kv):
    adm = make(kv)
    load = loader_of(PoolTruth(stock_left=2, limit=0), [])
    a = await adm.reserve(1, "p", 1, 1, now=NOW, hold_seconds=30, loader=load)
    b = await adm.reserve(1, "p", 2, 1, now=NOW, hold_seconds=30, loader=load)
    assert (await adm.reserve(1, "p", 3, 1, now=NOW, hold_seconds=30, loader=load)).verdict == Verdict.SOLD_OUT
    assert await adm.release(1, "p", a.token) is True
    assert await adm.release(1, "p", a.token) is False          # once
    assert (await adm.state(1, "p")).stock_left == 1
    # b's order is written: held until its payment deadline, past its 30 s admission hold
    assert await adm.confirm(1, "p", b.token, 2, 1, hold_until=NOW + timedelta(minutes=5)) == 1
    assert await adm.sweep(1, "p", NOW + timedelta(minutes=1)) == 0
    # a reservation whose order never came expires and goes back
    c = await adm.reserve(1, "p", 3, 1, now=NOW, hold_seconds=30, loader=load)
    assert c.admitted
    assert await adm.sweep(1, "p", NOW + timedelta(seconds=31)) == 1
    assert (await adm.state(1, "p")).stock_left == 1
    # a late confirm (its hold expired, but the order got written) takes the stock again
    assert await adm.confirm(1, "p", c.token, 3, 1, hold_until=None) == 2
    s = await adm.state(1, "p")
    assert s.stock_left == 0 and s.members[3] == 1 and s.held[c.token].until_ms is None
    # held for good (paid): never swept
    assert await adm.confirm(1, "p", b.token, 2, 1, hold_until=None) == 1
    assert await adm.sweep(1, "p", NOW + timedelta(days=1)) == 0


async def test_a_flushed_store_is_rebuilt_from_the_database_before_admitting(kv):
    adm = make(kv)
    truth = PoolTruth(stock_left=3, limit=1)
    calls: list[int] = []
    assert (await adm.reserve(1, "p", 1, 1, now=NOW, hold_seconds=30, loader=loader_of(truth, calls))).admitted
    await flush(adm, kv)
    assert not (await adm.state(1, "p")).loaded
    # the database says: member 1 holds one (its order was written), 2 left
    db = PoolTruth(stock_left=2, limit=1, members={1: 1}, held={"tok1": Held(1, 1, "", ms(NOW) + 60_000)})
    again = await adm.reserve(1, "p", 1, 1, now=NOW, hold_seconds=30, loader=loader_of(db, calls))
    assert again.verdict == Verdict.OVER_LIMIT                    # the limit survived the flush
    assert len(calls) == 2
    s = await adm.state(1, "p")
    assert s.loaded and s.stock_left == 2 and s.members == {1: 1} and set(s.held) == {"tok1"}
    assert (await adm.reconcile(1, "p", db)).clean
    # the rebuilt hold expires like any other
    assert await adm.sweep(1, "p", NOW + timedelta(minutes=2)) == 1
    drift = await adm.reconcile(1, "p", db)
    assert drift.stock == (3, 2) and drift.missing == ("tok1",)


async def test_seats_are_taken_with_the_stock_in_one_step(kv):
    adm = make(kv)
    load = loader_of(PoolTruth(stock_left=100, limit=0), [])
    got = [await adm.reserve(1, "team", m, 1, now=NOW, hold_seconds=30, loader=load, seat="t9", seat_cap=3)
           for m in range(5)]
    assert [g.verdict for g in got] == [Verdict.ADMITTED] * 3 + [Verdict.NO_SEAT] * 2
    assert (await adm.state(1, "team")).stock_left == 97
    await adm.release(1, "team", got[0].token)
    assert (await adm.reserve(1, "team", 9, 1, now=NOW, hold_seconds=30, loader=load, seat="t9", seat_cap=3)).admitted
