"""Group-buy seats through the admission step (social_mall/groupbuy/desk.py): a full team
and a second join of the same member are refused from memory without a statement, only
admitted joins reach the batch, a reservation whose join never came gives its seat back,
a flushed store is rebuilt from the seats before it admits anyone, and a crowd on two
workers (separate connections, one Redis) never over-fills a team. Both backends: the
in-process store on SQLite, Redis (this test's own key prefix) on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from social_mall.admission import Admission
from social_mall.groupbuy import desk, service
from social_mall.groupbuy.errors import AlreadyInTeamError, TeamFullError
from storage.admission import open_admission
from storage.groupbuy_models import GroupbuySeat, GroupbuyTeam
from storage.groupbuy_repos import GroupbuyRepo
from storage.kv import RedisKV
from tests.fakes.groupbuy_kit import T0, TIMEOUT, make_campaign, make_members, open_team


@pytest.fixture
def admission(uows, kv):
    adm = Admission(open_admission(kv))
    desk.use_admission(uows, adm)
    return adm


async def _flush(kv, adm: Admission) -> None:
    """What a restarted store looks like: this test's keys only (never the shared Redis)."""
    if isinstance(kv, RedisKV):
        keys = [k async for k in kv.redis.scan_iter(match=kv.prefix + "*")]
        if keys:
            await kv.redis.delete(*keys)
    else:
        adm.store.flush()  # type: ignore[attr-defined]


class Statements:
    def __init__(self, engine) -> None:
        self.n = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._count)
        self.engine = engine

    def _count(self, *_a, **_k) -> None:
        self.n += 1

    def close(self) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._count)


def _req(tenant_id, team_id, sku_id, member, *, now=T0):
    return desk.JoinRequest(tenant_id, member[0], team_id, sku_id, 1, None, now, TIMEOUT)


async def _take(uows, req):
    async with uows() as uow:
        return await desk.take_seat(uow, req)


async def _seats(uows, team_id):
    async with uows() as uow:
        seats = await uow.session.scalar(select(func.count()).select_from(GroupbuySeat).where(
            GroupbuySeat.team_id == team_id, GroupbuySeat.status.in_(("held", "paid"))))
        team = await uow.session.get(GroupbuyTeam, team_id)
        return int(seats or 0), team.held


async def test_full_team_and_second_join_are_refused_from_memory(uows, demo, engine, admission):
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=4)
        await uow.commit()
    sku = c.prices[0].sku_id
    lead, a, b, d, late = await make_members(uows, demo.id, 5, prefix="o_adm_")
    team = (await open_team(uows, demo.id, c, lead)).team
    await _take(uows, _req(demo.id, team.id, sku, a))
    await _take(uows, _req(demo.id, team.id, sku, b))
    joins = uows().shared[desk.DESK].joins
    sql = Statements(engine)
    try:
        with pytest.raises(AlreadyInTeamError):       # a seat left, but `a` has one
            await _take(uows, _req(demo.id, team.id, sku, a))
    finally:
        sql.close()
    assert sql.n == 0 and uows().shared[desk.DESK].joins == joins
    await _take(uows, _req(demo.id, team.id, sku, d))
    before, joins = await _seats(uows, team.id), uows().shared[desk.DESK].joins
    sql = Statements(engine)
    try:
        with pytest.raises(TeamFullError) as full:
            await _take(uows, _req(demo.id, team.id, sku, late))
        with pytest.raises(TeamFullError):            # full first, as the batch says
            await _take(uows, _req(demo.id, team.id, sku, a))
    finally:
        sql.close()
    assert full.value.campaign_id == c.id
    assert sql.n == 0                                   # answered from memory
    assert uows().shared[desk.DESK].joins == joins      # nothing reached the batch
    assert await _seats(uows, team.id) == before == (4, 4)
    assert (await desk.seat_drift(admission, uows, demo.id, team.id)).clean


async def test_a_reservation_whose_join_never_came_gives_its_seat_back(uows, demo, admission):
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=2)
        await uow.commit()
    sku = c.prices[0].sku_id
    lead, dead, b = await make_members(uows, demo.id, 3, prefix="o_adm_")
    team = (await open_team(uows, demo.id, c, lead)).team
    # a worker admitted `dead` and died before the join desk wrote anything
    got = await admission.reserve(demo.id, desk.team_pool(team.id), dead[0], 1, now=T0,
                                  hold_seconds=desk.ADMIT_HOLD_SECONDS,
                                  loader=lambda: desk.seats_truth(uows, demo.id, team.id))
    assert got.admitted
    with pytest.raises(TeamFullError):
        await _take(uows, _req(demo.id, team.id, sku, b))
    assert await _seats(uows, team.id) == (1, 1)
    later = T0 + timedelta(seconds=desk.ADMIT_HOLD_SECONDS + 1)
    r = await _take(uows, _req(demo.id, team.id, sku, b, now=later))
    assert r.seat.member_id == b[0]
    assert await _seats(uows, team.id) == (2, 2)
    assert (await desk.seat_drift(admission, uows, demo.id, team.id)).clean


async def test_after_a_flush_the_seats_are_rebuilt_before_anyone_is_admitted(uows, demo, kv, admission):
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=4)
        await uow.commit()
    sku = c.prices[0].sku_id
    lead, a, b, d, e = await make_members(uows, demo.id, 5, prefix="o_adm_")
    team = (await open_team(uows, demo.id, c, lead)).team
    await _take(uows, _req(demo.id, team.id, sku, a))
    await _flush(kv, admission)
    assert not (await admission.state(demo.id, desk.team_pool(team.id))).loaded
    with pytest.raises(AlreadyInTeamError):   # rebuilt with a's seat in it
        await _take(uows, _req(demo.id, team.id, sku, a))
    rebuilt = admission.rebuilds
    await _take(uows, _req(demo.id, team.id, sku, b))
    await _flush(kv, admission)
    outcomes = await asyncio.gather(*(_take(uows, _req(demo.id, team.id, sku, m)) for m in (d, e)),
                                    return_exceptions=True)
    assert sorted(type(o).__name__ for o in outcomes) == ["JoinResult", "TeamFullError"]
    assert admission.rebuilds == rebuilt + 1              # one rebuild, the other waited for it
    assert await _seats(uows, team.id) == (4, 4)
    state = await admission.state(demo.id, desk.team_pool(team.id))
    assert state.stock_left == 0 and sum(state.members.values()) == 4
    assert (await desk.seat_drift(admission, uows, demo.id, team.id)).clean


async def test_a_crowd_on_two_workers_never_over_fills_a_team(backend, uows, other_worker, kv, demo, admission):
    if backend.name == "pg":   # the second worker: its own connections to PostgreSQL and Redis
        kv2 = RedisKV(backend.redis_url, prefix=kv.prefix)
        desk.use_admission(other_worker, Admission(open_admission(kv2)))
    else:                      # the embedded default is one process: one store
        desk.use_admission(other_worker, admission)
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=5)
        await uow.commit()
    sku = c.prices[0].sku_id
    people = await make_members(uows, demo.id, 3 + 40, prefix="o_adm_")
    teams = [(await open_team(uows, demo.id, c, lead)).team for lead in people[:3]]
    crowd = people[3:]
    workers = [uows, other_worker]
    outcomes = await asyncio.gather(
        *(_take(workers[i % 2], _req(demo.id, teams[i % 3].id, sku, m)) for i, m in enumerate(crowd)),
        *(_take(workers[i % 2], _req(demo.id, teams[i % 3].id, sku, m)) for i, m in enumerate(crowd[:6])),
        return_exceptions=True)
    wrong = [o for o in outcomes if not isinstance(o, (desk.JoinResult, TeamFullError, AlreadyInTeamError))]
    assert not wrong, wrong
    assert sum(isinstance(o, desk.JoinResult) for o in outcomes) == 3 * 4
    for t in teams:
        assert await _seats(uows, t.id) == (5, 5)
        assert (await desk.seat_drift(admission, uows, demo.id, t.id)).clean
    async with uows() as uow:
        assert await GroupbuyRepo(uow.session).overfilled() == 0
    if backend.name == "pg":
        await kv2.close()


async def test_refusals_name_the_campaign_without_a_read_each(backend, uows, other_worker, kv, demo, engine,
                                                              admission):
    """A full team's refusal names its campaign (the reply offers the campaign's other
    teams). The worker that opened the team knows it from the open; a worker that never
    saw the team reads it once for a whole crowd refused at once, not once per refusal
    (each read took a pooled connection: under a crowd the pool overflowed and opened and
    closed connections by the hundred, and joins/s halved)."""
    if backend.name == "pg":
        kv2 = RedisKV(backend.redis_url, prefix=kv.prefix)
        desk.use_admission(other_worker, Admission(open_admission(kv2)))
    else:
        desk.use_admission(other_worker, admission)
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=2)
        await uow.commit()
    sku = c.prices[0].sku_id
    lead_a, lead_b, x, y, *crowd = await make_members(uows, demo.id, 4 + 12, prefix="o_adm_")
    mine = (await open_team(uows, demo.id, c, lead_a)).team          # opened on this worker
    theirs = (await open_team(other_worker, demo.id, c, lead_b)).team  # opened on the other
    await _take(other_worker, _req(demo.id, mine.id, sku, x))         # both filled on the other
    await _take(other_worker, _req(demo.id, theirs.id, sku, y))
    seen: list[str] = []

    def team_reads(conn, cursor, statement, *args):
        if "FROM groupbuy_teams" in statement:
            seen.append(statement)

    for team, reads in ((mine, 0), (theirs, 1)):
        seen.clear()
        event.listen(engine.sync_engine, "before_cursor_execute", team_reads)
        try:
            got = await asyncio.gather(*(_take(uows, _req(demo.id, team.id, sku, m)) for m in crowd[:6]),
                                       return_exceptions=True)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", team_reads)
        assert all(isinstance(g, TeamFullError) and g.campaign_id == c.id for g in got), got
        assert len(seen) == reads, (team.id, seen)
        crowd = crowd[6:]
    assert await _seats(uows, mine.id) == await _seats(uows, theirs.id) == (2, 2)
    if backend.name == "pg":
        await kv2.close()


class _Calls:
    """The admission store, counting the calls made to it (each is one round trip on Redis)."""

    def __init__(self, store) -> None:
        self.store, self.calls = store, []

    def __getattr__(self, name):
        got = getattr(self.store, name)
        if not callable(got):
            return got

        async def call(*a, **k):
            self.calls.append(name)
            return await got(*a, **k)
        return call


async def test_an_opened_team_is_in_memory_before_its_first_join(uows, demo, engine, admission):
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=5)
        await uow.commit()
    sku = c.prices[0].sku_id
    lead, a, b = await make_members(uows, demo.id, 3, prefix="o_adm_")
    team = (await open_team(uows, demo.id, c, lead)).team
    state = await admission.state(demo.id, desk.team_pool(team.id))
    assert state.loaded and state.stock_left == 4 and dict(state.members) == {lead[0]: 1}
    assert (await desk.seat_drift(admission, uows, demo.id, team.id)).clean
    counted = admission.store = _Calls(admission.store)
    counts = []
    for m in (a, b):   # the first join costs what the second does: no load of the team's seats
        sql = Statements(engine)
        try:
            await _take(uows, _req(demo.id, team.id, sku, m))
        finally:
            sql.close()
        counts.append(sql.n)
    assert counts[0] == counts[1]
    assert counted.calls == ["reserve", "confirm"] * 2
    assert admission.rebuilds == 0
    assert await _seats(uows, team.id) == (3, 3)
    assert (await desk.seat_drift(admission, uows, demo.id, team.id)).clean


async def test_an_open_rolled_back_puts_nothing_in_memory(uows, demo, admission):
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=3)
        await uow.commit()
    (lead,) = await make_members(uows, demo.id, 1, prefix="o_adm_")
    async with uows() as uow:
        r = await service.open_team(uow, demo.id, lead[0], c.id, c.prices[0].sku_id, 1,
                                    address_id=lead[1], now=T0, timeout=TIMEOUT)
        await uow.rollback()
    assert not (await admission.state(demo.id, desk.team_pool(r.team.id))).loaded
    assert admission.primes == 0


async def test_a_rebuild_claims_and_loads_in_two_calls(uows, demo, kv, admission):
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=4)
        await uow.commit()
    sku = c.prices[0].sku_id
    lead, a, b = await make_members(uows, demo.id, 3, prefix="o_adm_")
    team = (await open_team(uows, demo.id, c, lead)).team
    await _take(uows, _req(demo.id, team.id, sku, a))
    await _flush(kv, admission)
    counted = admission.store = _Calls(admission.store)
    await _take(uows, _req(demo.id, team.id, sku, b))
    # refused (unloaded), claim (and "not loaded"), load (and end the claim), admitted, written
    assert counted.calls == ["reserve", "claim_load", "load", "reserve", "confirm"]
    assert admission.rebuilds == 1
    state = await admission.state(demo.id, desk.team_pool(team.id))
    assert state.stock_left == 1 and dict(state.members) == {lead[0]: 1, a[0]: 1, b[0]: 1}
    assert (await desk.seat_drift(admission, uows, demo.id, team.id)).clean
