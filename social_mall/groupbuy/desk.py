"""Joins in batches: the group-buy hot path under a crowd.

When a popular team opens, hundreds of members type 「确认」 within seconds and all of them
want the same few rows (the team, the SKU's stock). One transaction per join makes each
wait for the one before it to commit, and spends ~10 statements of Python per join.

The desk gathers the joins that arrive while a batch is in flight and takes the next lot
in one transaction (`join_many`): the teams are locked once (FOR UPDATE, in id order), the
checks run in memory against the locked rows in arrival order, and the orders, their
lines, the seats, the stock and the team counters are written with one statement per
table. A batch costs about as much as a single join, so under load the cost per join
falls with the batch size, and a lone join waits for nobody.

What a join checks and writes is exactly what `service.join_team` does (that stays the
path for a join inside a larger unit of work, e.g. the WeCom group flow). If a batch fails
as a whole (a race with another worker on a unique index, stock gone at the last moment),
it is rolled back and each of its joins runs alone through `join_team`, so one bad join
never takes the others with it.

A join through the desk commits in its own transaction, not the caller's.

Seats through admission (social_mall/admission.py), when the deployment shares one
(`use_admission`): each team is a pool whose stock is its free seats and whose
per-member limit is 1, so a full team or a second join of the same member is answered
from memory in one atomic call, and only admitted joins reach the batch. The database
stays the truth (the batch checks again under the team lock): a join memory admitted that
the database refuses gives its reservation back and the team's pool is rebuilt from the
database; a reservation whose join never came runs out after `ADMIT_HOLD_SECONDS` (given
back by the next reservation on that team); a written seat is held until its order's
payment deadline (a paid seat that memory then forgets is found again by that rebuild).
A team's pool is put in memory when the open that created it commits (`prime_opened`:
from what the open wrote, no read, one store call), so its first joiners pay no rebuild.
After a flush or restart of the store, a team's pool is rebuilt from its seats before it
admits anyone (`seats_truth`; the claim and the load are one store call each); `seat_drift`
compares the two. The limit of teams per
member in a campaign is still checked by the batch alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update

from social_mall.admission import Admission, Drift, Held, PoolTruth, Verdict, ms
from social_mall.desk import BatchFailed, Desk, desk_of
from social_mall.errors import MallError, NotFoundError
from social_mall.groupbuy import rules
from social_mall.groupbuy.errors import AlreadyInTeamError, NoAddressError, TeamClosedError, TeamFullError
from social_mall.groupbuy.rules import SeatStatus as S
from social_mall.groupbuy.rules import TeamStatus as T
from social_mall.groupbuy.service import (
    CampaignView,
    JoinResult,
    SeatView,
    check_limits,
    join_terms,
    join_team,
    repo,
    team_view,
)
from social_mall.orders.entrance import entered, entrance
from social_mall.orders.lots import (
    insert_orders,
    line_row,
    on_postgres,
    order_row,
    placed_event,
    placed_view,
    sku_rows,
    take_stock,
)
from social_mall.orders.rules import check_qty, check_total, shipping_fee
from social_mall.orders.service import max_order_fen, merchant_of
from storage.bulk import any_of, arrays, unnest_insert
from storage.groupbuy_models import GroupbuySeat, GroupbuyTeam
from storage.repos import AddressRow
from storage.uow import UnitOfWork, UowFactory

log = logging.getLogger(__name__)

MAX_BATCH = 200


@dataclass(frozen=True)
class JoinRequest:
    tenant: int
    member_id: int
    team_id: int
    sku_id: int
    qty: int
    address_id: int | None   # None: the member's default address (NoAddressError when there is none)
    now: datetime
    timeout: timedelta
    channel: str = "mp"
    # the channel account it came through (None: the primary): the requester's entrance
    account_id: int | None = field(default_factory=entrance)


@dataclass
class _Plan:
    req: JoinRequest
    view: CampaignView
    address: AddressRow
    price: int
    held: int = 0
    order: dict[str, Any] = field(default_factory=dict)   # as written (orders.lots.order_row)
    lines: tuple[dict[str, Any], ...] = ()
    seat: dict[str, Any] = field(default_factory=dict)


_TEAMS = cast(Table, GroupbuyTeam.__table__)
_SEATS = cast(Table, GroupbuySeat.__table__)
# the lot's teams, locked in id order (two batches never wait on each other crosswise;
# SQLite's BEGIN IMMEDIATE already serializes writers)
_LOCK_TEAMS = (
    select(_TEAMS).where(_TEAMS.c.tenant_id == bindparam("tenant"), _TEAMS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_TEAMS.c.id).with_for_update()
)
_PG_LOCK_TEAMS = (select(_TEAMS).where(_TEAMS.c.tenant_id == bindparam("tenant"), any_of(_TEAMS.c.id, "ids"))
                  .order_by(_TEAMS.c.id).with_for_update())
_SEAT_COLUMNS = ("tenant_id", "team_id", "campaign_id", "member_id", "sku_id", "qty", "leader", "status", "channel",
                 "joined_at", "order_id", "paid_at")
_INSERT_SEATS = _SEATS.insert().returning(_SEATS.c.id, _SEATS.c.order_id, sort_by_parameter_order=True)
_PG_INSERT_SEATS = unnest_insert(_SEATS, _SEAT_COLUMNS, returning=("id", "order_id"))
_COUNT_SEATS = (
    update(_TEAMS).where(_TEAMS.c.tenant_id == bindparam("tenant"), _TEAMS.c.id == bindparam("team"))
    .values(held=_TEAMS.c.held + bindparam("n"), version=_TEAMS.c.version + 1)
)


async def join_many(uow: UnitOfWork, tenant: int, reqs: Sequence[JoinRequest]) -> list[JoinResult | MallError]:
    """Seat every request that may have one, in arrival order, in the caller's transaction;
    the refused ones get the error `join_team` would raise. The caller commits.
    Raises BatchFailed when the batch can't be written as a whole (then roll back)."""
    r = repo(uow)
    got = await uow.session.execute(_PG_LOCK_TEAMS if on_postgres(uow) else _LOCK_TEAMS,
                                    {"tenant": tenant, "ids": sorted({q.team_id for q in reqs})})
    teams = {t.id: t for t in got.all()}
    taken = await r.active_members(tenant, list(teams), sorted({q.member_id for q in reqs}))
    books = await uow.members.addresses_of(tenant, sorted({q.member_id for q in reqs}))
    views = {cid: await join_terms(uow, tenant, cid) for cid in {t.campaign_id for t in teams.values()}}
    counts = {c.id: await r.member_team_counts(tenant, c.id, sorted({q.member_id for q in reqs}))
              for c in views.values() if c.max_teams_per_member}
    cap = await max_order_fen(uow, tenant)
    held = {t.id: t.held for t in teams.values()}
    out: list[JoinResult | MallError | _Plan] = []
    for q in reqs:
        try:
            team = teams.get(q.team_id)
            if team is None:
                raise NotFoundError("groupbuy_team", q.team_id)
            if team.status != T.FORMING or team.expires_at <= q.now:
                raise TeamClosedError(team.id, team.status)
            if held[team.id] >= team.size:
                raise TeamFullError(team.id, team.campaign_id)
            if (team.id, q.member_id) in taken:
                raise AlreadyInTeamError(team.id)
            view = views[team.campaign_id]
            price = check_limits(view, q.sku_id, q.qty, q.now, counts.get(view.id, {}).get(q.member_id, 0))
            book = books.get(q.member_id, [])
            address = book[0] if q.address_id is None and book else next(
                (a for a in book if a.id == q.address_id), None)
            if address is None:
                raise NoAddressError() if q.address_id is None else NotFoundError("address", q.address_id)
            check_qty(q.qty)
            goods = rules.unit_price(price, leader=False, leader_discount_fen=view.leader_discount_fen) * q.qty
            check_total(goods + shipping_fee(goods), cap)   # what place_order checks, as _write prices it
        except MallError as exc:
            out.append(exc)
            continue
        held[team.id] += 1
        taken.add((team.id, q.member_id))
        if view.max_teams_per_member:
            counts[view.id][q.member_id] = counts[view.id].get(q.member_id, 0) + 1
        out.append(_Plan(q, view, address, price, held=held[team.id]))
    plans = [p for p in out if isinstance(p, _Plan)]
    if plans:
        await _write(uow, tenant, plans, teams)
    return [_result(p, teams) if isinstance(p, _Plan) else p for p in out]


async def _write(uow: UnitOfWork, tenant: int, plans: list[_Plan], teams: dict[int, Any]) -> None:
    """Stock, orders and lines, seats, team counters, events: one statement each, with the
    prebuilt statements of the order desk (orders.lots). Everything refused was refused
    before this point; a guard that fails here fails the batch (BatchFailed)."""
    s = uow.session
    wanted: dict[int, int] = defaultdict(int)
    for p in plans:
        wanted[p.req.sku_id] += p.req.qty
    found = await sku_rows(uow, tenant, sorted(wanted))
    for sku_id in sorted(wanted):
        sku = found.get(sku_id)
        if sku is None or not (sku.on_shelf and sku.product_on_shelf):
            raise BatchFailed(f"sku {sku_id} gone or off the shelf")
    await take_stock(uow, tenant, wanted)
    merchants = {a: await merchant_of(uow, tenant, a) for a in {p.req.account_id for p in plans}}
    for p in plans:
        q, team = p.req, teams[p.req.team_id]
        unit = rules.unit_price(p.price, leader=False, leader_discount_fen=p.view.leader_discount_fen)
        p.lines = (line_row(tenant, found[q.sku_id], unit, q.qty),)
        goods = unit * q.qty
        timeout = min(q.timeout, max(team.expires_at - q.now, timedelta(minutes=1)))
        a = p.address
        p.order = order_row(tenant, q.member_id, (a.name, a.phone, a.detail), goods, shipping_fee(goods), 0,
                            now=q.now, timeout=timeout, channel=q.channel, source=rules.team_source(team.id),
                            account=(q.account_id, merchants[q.account_id]))
    await insert_orders(uow, [(p.order, p.lines) for p in plans])
    for p in plans:
        q = p.req
        p.seat = {"tenant_id": tenant, "team_id": q.team_id, "campaign_id": p.view.id, "member_id": q.member_id,
                  "sku_id": q.sku_id, "qty": q.qty, "leader": False, "status": S.HELD, "channel": q.channel,
                  "joined_at": q.now, "order_id": p.order["id"], "paid_at": None}
    seats = [p.seat for p in plans]
    if on_postgres(uow):
        got = await s.execute(_PG_INSERT_SEATS, arrays(seats, _SEAT_COLUMNS))
    else:
        got = await s.execute(_INSERT_SEATS, seats)
    seat_of = {r.order_id: r.id for r in got.all()}   # an order has one seat
    for p in plans:
        p.seat["id"] = seat_of[p.order["id"]]
    filled = Counter(p.req.team_id for p in plans)
    await s.execute(_COUNT_SEATS, [{"tenant": tenant, "team": t, "n": n} for t, n in sorted(filled.items())])
    await uow.emit_many([placed_event(p.order) for p in plans])


def _result(p: _Plan, teams: dict[int, Any]) -> JoinResult:
    seat = p.seat
    after = replace(team_view(teams[p.req.team_id]), held=p.held)
    return JoinResult(after, SeatView(seat["id"], seat["team_id"], seat["member_id"], seat["order_id"], seat["sku_id"],
                                      seat["qty"], seat["leader"], seat["status"], seat["channel"]),
                      placed_view(p.order, p.lines), p.view)


async def join_lot(uow: UnitOfWork, reqs: Sequence[JoinRequest]) -> list[JoinResult | MallError]:
    """A lot of joins from any tenants, in arrival order, in the caller's transaction."""
    by_tenant: dict[int, list[int]] = defaultdict(list)
    for i, req in enumerate(reqs):
        by_tenant[req.tenant].append(i)
    results: list[JoinResult | MallError | None] = [None] * len(reqs)
    for tenant, idx in by_tenant.items():
        for i, got in zip(idx, await join_many(uow, tenant, [reqs[i] for i in idx])):
            results[i] = got
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


class JoinDesk(Desk[JoinRequest, JoinResult]):
    """One per deployment process (kept on the unit-of-work factory): joins that arrive
    while a batch is being written wait for the next batch, which takes them all
    (social_mall/desk.py: FIFO, bounded lots, one answer per join)."""

    def __init__(self, uows: UowFactory, max_batch: int = MAX_BATCH) -> None:
        super().__init__("groupbuy", uows, join_lot, join_alone, max_batch=max_batch)
        self._campaigns: dict[tuple[int, int], int] = {}
        self._reading: dict[tuple[int, int], asyncio.Future[int]] = {}

    async def join(self, req: JoinRequest) -> JoinResult:
        return await self.submit(req)

    @property
    def joins(self) -> int:  # the attempts written in whole batches (bench, tests)
        return self.done

    def know_campaign(self, tenant: int, team_id: int, campaign_id: int) -> None:
        self._campaigns[(tenant, team_id)] = campaign_id

    async def campaign_of(self, tenant: int, team_id: int) -> int:
        """A team's campaign (what a refusal names): known from the team's rebuild or a
        join, else read once."""
        key = (tenant, team_id)
        got = self._campaigns.get(key)
        if got is not None:
            return got
        reading = self._reading.get(key)
        if reading is not None:   # a crowd refused at one team: one read answers them all
            return await asyncio.shield(reading)
        reading = self._reading[key] = asyncio.get_running_loop().create_future()
        try:
            async with self.uows() as uow:
                team = await repo(uow).team(tenant, team_id)
            got = self._campaigns[key] = team.campaign_id if team is not None else 0
            reading.set_result(got)
            return got
        except BaseException as exc:
            reading.set_exception(exc)
            reading.exception()   # retrieved: a reader that gave up leaves no unhandled warning
            raise
        finally:
            del self._reading[key]


async def join_alone(uow: UnitOfWork, q: JoinRequest) -> JoinResult:
    """One join in the caller's unit of work (uncommitted), through `join_team`."""
    address = q.address_id
    if address is None:
        saved = await uow.members.addresses(q.tenant, q.member_id)
        if not saved:
            raise NoAddressError()
        address = saved[0].id
    with entered(q.account_id):   # a desk's writer task has no entrance of its own
        return await join_team(uow, q.tenant, q.member_id, q.team_id, q.sku_id, q.qty, address_id=address,
                               now=q.now, timeout=q.timeout, channel=q.channel)


DESK = "groupbuy.joins"
ADMISSION = "groupbuy.admission"
ADMIT_HOLD_SECONDS = 30.0        # an admitted join not written by then gives its seat back
PAY_GRACE = timedelta(minutes=2)  # a written seat is held this long past its order's deadline


def use_admission(uows: UowFactory, admission: Admission) -> None:
    """Put joins through `admission` in this deployment (the composition root calls it)."""
    with_shared = uows()
    with_shared.shared[ADMISSION] = admission


def team_pool(team_id: int) -> str:
    return f"gb:team:{team_id}"


def _ms(at: datetime) -> int:
    return ms(at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc))


async def seats_truth(uows: UowFactory, tenant: int, team_id: int) -> PoolTruth:
    """What the database says of a team's seats: the free ones (none once the team stopped
    forming), one per member, each active seat held for good (paid) or until its order's
    payment deadline (unpaid)."""
    return (await _seats(uows, tenant, team_id))[0]


async def _seats(uows: UowFactory, tenant: int, team_id: int) -> tuple[PoolTruth, int]:
    """The team's seats as memory holds them, and its campaign (0: no such team)."""
    async with uows() as uow:
        r = repo(uow)
        team = await r.team(tenant, team_id)
        if team is None:
            return PoolTruth(0, 1), 0
        holds = await r.seat_holds(tenant, team_id)
    free = max(0, team.size - team.held) if team.status == T.FORMING else 0
    held = {f"seat:{i}": Held(m, 1, "", None if st == S.PAID or at is None else _ms(at + PAY_GRACE))
            for i, m, st, at in holds}
    return PoolTruth(free, 1, {m: 1 for _, m, _, _ in holds}, held), team.campaign_id


def prime_opened(uow: UnitOfWork, tenant: int, opened: JoinResult) -> None:
    """Once the unit of work that opened a team commits, put the team's pool in memory from
    what the open wrote (its size, the leader's seat and order's deadline): the team's first
    joiners then find it loaded, with no read of the database and no rebuild claim. The open
    registers this; without an admission step in this deployment it does nothing. A pool
    loaded meanwhile (a joiner's rebuild) is left as it is."""
    admission = uow.shared.get(ADMISSION)
    if not isinstance(admission, Admission):
        return
    team, seat, order = opened.team, opened.seat, opened.order
    free = max(0, team.size - team.held) if team.status == T.FORMING else 0
    held = {f"seat:{seat.id}": Held(seat.member_id, 1, "", _ms(order.expires_at + PAY_GRACE))}
    truth = PoolTruth(free, 1, {seat.member_id: 1}, held)

    async def prime() -> None:
        got = desk_of(uow, DESK, JoinDesk)
        if got is not None:   # its refusals name the campaign without a read
            got.know_campaign(tenant, team.id, team.campaign_id)
        await admission.prime(tenant, team_pool(team.id), truth)

    uow.after_commit(prime)


async def seat_drift(admission: Admission, uows: UowFactory, tenant: int, team_id: int) -> Drift:
    """Memory's seats against the database's (free seats and who holds one; tokens differ
    by nature: memory's are the admissions', the database's are seat ids)."""
    d = await admission.reconcile(tenant, team_pool(team_id), await seats_truth(uows, tenant, team_id))
    return replace(d, missing=(), extra=())


async def take_seat(uow: UnitOfWork, req: JoinRequest) -> JoinResult:
    """Join a team through this deployment's desk, committed in the desk's own transaction
    (behind the admission step when the deployment has one). A unit of work made outside
    a factory has no desk: the join then runs in it, uncommitted, as `join_team` would."""
    desk = desk_of(uow, DESK, JoinDesk)
    if desk is None:
        return await join_alone(uow, req)
    admission = uow.shared.get(ADMISSION)
    if not isinstance(admission, Admission) or uow.factory is None:
        return await desk.join(req)
    return await _admitted(admission, uow.factory, desk, req)


async def _admitted(admission: Admission, uows: UowFactory, desk: JoinDesk, req: JoinRequest) -> JoinResult:
    pool = team_pool(req.team_id)

    async def load() -> PoolTruth:
        truth, campaign = await _seats(uows, req.tenant, req.team_id)
        if campaign:
            desk.know_campaign(req.tenant, req.team_id, campaign)
        return truth

    admit = await admission.reserve(req.tenant, pool, req.member_id, 1, now=req.now,
                                    hold_seconds=ADMIT_HOLD_SECONDS, loader=load)
    if admit.verdict == Verdict.SOLD_OUT:
        campaign = await desk.campaign_of(req.tenant, req.team_id)
        if not campaign:   # no such team: the batch says so
            return await desk.join(req)
        raise TeamFullError(req.team_id, campaign)
    if admit.verdict == Verdict.OVER_LIMIT:
        raise AlreadyInTeamError(req.team_id)
    if not admit.admitted:   # memory unreachable or never rebuilt: the batch alone decides
        return await desk.join(req)
    try:
        r = await desk.join(req)
    except (TeamFullError, TeamClosedError, AlreadyInTeamError):
        # memory admitted what the database refuses (a paid seat memory had let go, a
        # reservation lost with a restart): give it back and rebuild from the truth
        await admission.release(req.tenant, pool, admit.token)
        await admission.rebuild(req.tenant, pool, load, force=True)
        raise
    except BaseException:
        await admission.release(req.tenant, pool, admit.token)
        raise
    desk.know_campaign(req.tenant, req.team_id, r.team.campaign_id)
    try:
        await admission.confirm(req.tenant, pool, admit.token, req.member_id, 1,
                                hold_until=r.order.expires_at + PAY_GRACE)
    except Exception:  # noqa: BLE001 - memory unreachable: the seat stands; a rebuild reads it
        log.warning("groupbuy.confirm_failed", extra={"tenant": req.tenant, "team_id": req.team_id})
    return r
