"""Domain events from the outbox into the event record (durable: the outbox retries), and
the member facts they move. Each topic's subscriber is `Batched`: a lot of deliveries is one
transaction. A delivery already recorded (`insights_delivered`) adds nothing.

  order.placed / paid / cancelled / refunded / completed   order.*, amounts, member facts
  member.joined            member.joined: first seen, channel, entry source
  member.merged            the merged member's events and facts follow to the kept member
  groupbuy.team_opened     groupbuy.open (ref team, props campaign)
  groupbuy.seat_confirmed  groupbuy.join (ref team, props order)
  referral.bound           referral.bound (ref distributor's member id): acquisition referral
  loyalty.coupon_issued    coupon.claimed (ref coupon, source: how it was given, channel:
                           who gave it, "console" for an admin, "job" when automatic)
  loyalty.coupon_claimed   coupon.claimed (the member took it: source "claim", channel)
  loyalty.coupon_used      coupon.used (ref coupon, amount: what it took off, props order;
                           channel: where the order was paid from, source: how it was given)
  local.ticket_verified    store.verify (source: the store's name)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text, update

from social_mall.plugins import Batched, Delivery, Registry
from social_mall_insights.models import Delivered, Event, MemberFacts, MemberWeek
from social_mall_insights.recorder import Row, _insert, ensure_facts, write
from social_mall_insights.rules import ORGANIC, REFERRAL, shanghai_day, week_start
from storage.uow import UnitOfWork, UowFactory

NAME = "insights.record"


def _i(p: Mapping[str, Any], key: str) -> int:
    v = p.get(key, 0)
    return int(v) if isinstance(v, (int, str)) and str(v).lstrip("-").isdigit() else 0


def _s(p: Mapping[str, Any], key: str) -> str:
    v = p.get(key, "")
    return v[:64] if isinstance(v, str) else ""


def to_row(d: Delivery, at: datetime) -> Row | None:
    """The event a delivery records (None: nothing to record)."""
    p, t = d.payload, d.tenant_id
    m = _i(p, "member_id")
    match d.topic:
        case "order.placed":
            return (t, m, at, "order.placed", "", _s(p, "source"), _i(p, "order_id"), _i(p, "total_fen"), {})
        case "order.paid":
            return (t, m, at, "order.paid", _s(p, "channel"), "", _i(p, "order_id"), _i(p, "paid_fen"),
                    {"fulfilment": _s(p, "fulfilment")})
        case "order.cancelled":
            return (t, m, at, "order.cancelled", "", "", _i(p, "order_id"), 0, {})
        case "order.completed":
            return (t, m, at, "order.completed", "", "", _i(p, "order_id"), 0, {})
        case "order.refunded":
            return (t, m, at, "order.refunded", "", "", _i(p, "order_id"), _i(p, "refund_fen"),
                    {"full": bool(p.get("full"))})
        case "member.joined":
            return (t, m, at, "member.joined", _s(p, "channel"), _s(p, "entry_source"), 0, 0, {})
        case "groupbuy.team_opened":
            return (t, m, at, "groupbuy.open", "", "", _i(p, "team_id"), 0, {"campaign": _i(p, "campaign_id")})
        case "groupbuy.seat_confirmed":
            return (t, m, at, "groupbuy.join", "", "", _i(p, "team_id"), 0, {"order": _i(p, "order_id")})
        case "referral.bound":
            return (t, m, at, "referral.bound", "", _s(p, "source"), _i(p, "distributor_member_id"), 0, {})
        case "loyalty.coupon_issued":
            return (t, m, at, "coupon.claimed", _s(p, "channel"), _s(p, "source"), _i(p, "coupon_id"), 0,
                    {"name": _s(p, "name")})
        case "loyalty.coupon_claimed":
            return (t, m, at, "coupon.claimed", _s(p, "channel"), "claim", _i(p, "coupon_id"), 0,
                    {"name": _s(p, "name")})
        case "loyalty.coupon_used":
            return (t, m, at, "coupon.used", _s(p, "channel"), _s(p, "source"), _i(p, "coupon_id"),
                    _i(p, "off_fen"), {"order": _i(p, "order_id")})
        case "local.ticket_verified":
            return (t, m, at, "store.verify", "store", _s(p, "store_name"), _i(p, "ticket_id"), 0,
                    {"title": _s(p, "title"), "uses": _i(p, "uses")})
    return None


TOPICS = ("order.placed", "order.paid", "order.cancelled", "order.completed", "order.refunded", "member.joined",
          "groupbuy.team_opened", "groupbuy.seat_confirmed", "referral.bound", "loyalty.coupon_issued",
          "loyalty.coupon_claimed", "loyalty.coupon_used",
          "local.ticket_verified", "member.merged")


# _fresh on PostgreSQL: one statement of one shape whatever the lot's size (prepared once per
# connection), not a multi-row VALUES compiled anew for every lot
_PG_FRESH = text(
    "INSERT INTO insights_delivered (id, at) SELECT v.id, CAST(:at AS TIMESTAMPTZ) "
    "FROM unnest(CAST(:ids AS BIGINT[])) AS v(id) ON CONFLICT (id) DO NOTHING RETURNING id")


async def _fresh(uow: UnitOfWork, ds: Sequence[Delivery], at: datetime) -> list[Delivery]:
    """The deliveries not recorded before (claimed in this transaction)."""
    bind = uow.session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        got = {int(r[0]) for r in await uow.session.execute(_PG_FRESH, {"ids": [d.id for d in ds], "at": at})}
        return [d for d in ds if d.id in got]
    stmt = (_insert(uow, Delivered).values([{"id": d.id, "at": at} for d in ds])
            .on_conflict_do_nothing(index_elements=["id"]).returning(Delivered.id))
    new = {r[0] for r in await uow.session.execute(stmt)}
    return [d for d in ds if d.id in new]


async def record(uow: UnitOfWork, ds: Sequence[Delivery], at: datetime) -> list[tuple[int, int]]:
    """Record the lot (uncommitted); returns the (tenant, member) whose facts row it wrote or
    found (once committed, the activity recorder need not ensure them again)."""
    ds = await _fresh(uow, ds, at)
    rows: list[Row] = []
    for d in ds:
        if d.topic == "member.merged":
            await merge(uow, d.tenant_id, _i(d.payload, "kept_member_id"), _i(d.payload, "merged_member_id"))
            continue
        row = to_row(d, at)
        if row is not None and row[1]:
            rows.append(row)
    if not rows:
        return []
    await write(uow, rows)
    for t, m, when, kind, _ch, _src, ref, amount, _p in rows:
        if kind == "order.paid":
            await uow.session.execute(
                update(MemberFacts).where(MemberFacts.tenant_id == t, MemberFacts.member_id == m)
                .values(orders=MemberFacts.orders + 1, paid_fen=MemberFacts.paid_fen + amount))
            for col, newer in ((MemberFacts.first_order_at, False), (MemberFacts.last_order_at, True)):
                cmp = col < when if newer else col > when
                values: dict[str, Any] = {col.key: when}
                if not newer:
                    values["first_order_week"] = week_start(shanghai_day(when))
                await uow.session.execute(
                    update(MemberFacts).where(MemberFacts.tenant_id == t, MemberFacts.member_id == m,
                                              col.is_(None) | cmp).values(values))
            await uow.session.execute(
                _insert(uow, MemberWeek).values(tenant_id=t, member_id=m, week=week_start(shanghai_day(when)))
                .on_conflict_do_nothing(index_elements=["tenant_id", "member_id", "week"]))
            await add_ltv(uow, t, m, when, amount)
        elif kind == "order.refunded":
            await uow.session.execute(
                update(MemberFacts).where(MemberFacts.tenant_id == t, MemberFacts.member_id == m)
                .values(refunded_fen=MemberFacts.refunded_fen + amount))
            await add_ltv(uow, t, m, when, -amount)
        elif kind == "referral.bound":
            await uow.session.execute(
                update(MemberFacts).where(MemberFacts.tenant_id == t, MemberFacts.member_id == m,
                                          MemberFacts.referrer_id == 0)
                .values(referrer_id=ref))
            await uow.session.execute(
                update(MemberFacts).where(MemberFacts.tenant_id == t, MemberFacts.member_id == m,
                                          MemberFacts.acq_kind == ORGANIC)
                .values(acq_kind=REFERRAL))
    return [(r[0], r[1]) for r in rows]


LTV_COLUMNS = ((30, "ltv30"), (90, "ltv90"), (180, "ltv180"), (365, "ltv365"))


async def add_ltv(uow: UnitOfWork, tenant: int, member: int, when: datetime, fen: int) -> None:
    """Add `fen` (negative: a refund) to every LTV horizon `when` falls within, counted from
    the member's first paid order."""
    first = await uow.session.scalar(select(MemberFacts.first_order_at).where(
        MemberFacts.tenant_id == tenant, MemberFacts.member_id == member))
    if first is None or not fen:
        return
    age = when - first
    values = {col: getattr(MemberFacts, col) + fen for days, col in LTV_COLUMNS if age < timedelta(days=days)}
    if values:
        await uow.session.execute(update(MemberFacts).where(
            MemberFacts.tenant_id == tenant, MemberFacts.member_id == member).values(values))


async def merge(uow: UnitOfWork, tenant: int, kept: int, merged: int) -> None:
    """After an identity merge the history follows: the merged member's events and facts
    become the kept member's."""
    if not kept or not merged or kept == merged:
        return
    await uow.session.execute(update(Event).where(Event.tenant_id == tenant, Event.member_id == merged)
                              .values(member_id=kept))
    mine_weeks = select(MemberWeek.week).where(MemberWeek.tenant_id == tenant, MemberWeek.member_id == kept)
    await uow.session.execute(delete(MemberWeek).where(MemberWeek.tenant_id == tenant, MemberWeek.member_id == merged,
                                                       MemberWeek.week.in_(mine_weeks)))
    await uow.session.execute(update(MemberWeek).where(MemberWeek.tenant_id == tenant, MemberWeek.member_id == merged)
                              .values(member_id=kept))
    rows = {f.member_id: f for f in (await uow.session.execute(
        select(MemberFacts).where(MemberFacts.tenant_id == tenant, MemberFacts.member_id.in_([kept, merged]))
    )).scalars()}
    gone = rows.get(merged)
    if gone is None:
        return
    mine = rows.get(kept)
    if mine is None:
        await ensure_facts(uow, [(tenant, kept, gone.first_seen_at, gone.first_channel, gone.acq_source)])
        mine = (await uow.session.execute(select(MemberFacts).where(
            MemberFacts.tenant_id == tenant, MemberFacts.member_id == kept))).scalar_one()

    def least(a: datetime | None, b: datetime | None, newest: bool = False) -> datetime | None:
        both = [x for x in (a, b) if x is not None]
        return (max(both) if newest else min(both)) if both else None

    earlier = gone.first_seen_at < mine.first_seen_at
    await uow.session.execute(update(MemberFacts).where(MemberFacts.id == mine.id).values(
        first_seen_at=min(gone.first_seen_at, mine.first_seen_at),
        first_channel=gone.first_channel if earlier else mine.first_channel,
        acq_kind=gone.acq_kind if earlier or mine.acq_kind == ORGANIC else mine.acq_kind,
        acq_source=gone.acq_source if earlier or mine.acq_kind == ORGANIC else mine.acq_source,
        referrer_id=mine.referrer_id or gone.referrer_id,
        first_order_at=least(mine.first_order_at, gone.first_order_at),
        first_seen_week=min(w for w in (mine.first_seen_week, gone.first_seen_week, date.max) if w is not None)
        if (mine.first_seen_week or gone.first_seen_week) else None,
        first_order_week=min(w for w in (mine.first_order_week, gone.first_order_week, date.max) if w is not None)
        if (mine.first_order_week or gone.first_order_week) else None,
        ltv30=mine.ltv30 + gone.ltv30, ltv90=mine.ltv90 + gone.ltv90, ltv180=mine.ltv180 + gone.ltv180,
        ltv365=mine.ltv365 + gone.ltv365,   # approximate when both had bought: horizons from each one's first order
        last_order_at=least(mine.last_order_at, gone.last_order_at, newest=True),
        last_seen_at=least(mine.last_seen_at, gone.last_seen_at, newest=True),
        orders=mine.orders + gone.orders, paid_fen=mine.paid_fen + gone.paid_fen,
        refunded_fen=mine.refunded_fen + gone.refunded_fen))
    await uow.session.execute(delete(MemberFacts).where(MemberFacts.id == gone.id))


def register(reg: Registry, uows: Callable[[], UowFactory], clock: Callable[[], datetime],
             known: Callable[[Sequence[tuple[int, int]]], None] | None = None) -> None:
    """`known`: told, after each commit, the (tenant, member) whose facts rows exist now
    (the activity recorder then skips them: a crowd's first contacts are ensured once)."""
    async def many(ds: Sequence[Delivery]) -> None:
        async with uows()() as uow:
            keys = await record(uow, ds, clock())
            await uow.commit()
        if known is not None and keys:
            known(keys)

    async def one(d: Delivery) -> None:
        await many([d])

    for topic in TOPICS:
        reg.subscribe(topic, NAME, Batched(one, many))
