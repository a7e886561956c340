"""Recording events off the chat path.

`Recorder` is the module's activity sink (social_mall/activity.py): on the chat path it
appends a tuple to a list and returns. The job `insights.flush` (every 2 s), or a flush
started when 500 are waiting, writes them in one INSERT of many rows and brings the member
facts up to date. At most `LIMIT` wait: past that (the database down for long) new ones
are counted as dropped, never blocking chat. A worker that dies loses at most its unflushed
seconds of browsing activity; orders, payments and refunds come through the outbox
(durable, subscribers.py).

Domain events (subscribers.py) are written by `write` directly, in the subscriber's
transaction, with the same member-facts upkeep."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from social_mall.activity import (
    CART_ADD, CATEGORY_VIEW, CHECKOUT, CLICK, MESSAGE, PRODUCT_VIEW, SCAN, SEARCH, SHARE_OPEN, SUBSCRIBE, Activity,
)
from social_mall.sharing import share_kind, sharers
from social_mall_insights.models import Event, MemberFacts
from social_mall_insights.rules import ORGANIC, acquisition, shanghai_day, week_start
from storage.uow import UnitOfWork, UowFactory

log = logging.getLogger(__name__)

FLUSH_AT = 1000
LIMIT = 200_000
SEEN_STEP = timedelta(minutes=10)   # last seen is written again only when it moved this much
SEEN_MAX = 200_000                  # members remembered by a worker (then it starts over)
NEVER = datetime(2000, 1, 1, tzinfo=timezone.utc)
# kinds that open WeChat's 48-hour customer-service window: the member wrote, clicked or
# scanned (a view, search, cart or checkout in chat is a message's step)
ACTIVE_KINDS = frozenset({MESSAGE, CLICK, SUBSCRIBE, SCAN, PRODUCT_VIEW, CATEGORY_VIEW, SEARCH, CART_ADD, CHECKOUT})
EVENT_COLUMNS = ("tenant_id", "member_id", "at", "kind", "channel", "source", "ref", "amount_fen", "props")

# kinds whose source is the QR scene the member came through
SCENE_KINDS = frozenset({SUBSCRIBE, SCAN, "member.joined"})
# a share: the sharer's event when their card's QR is scanned (followed) or their link opened
SHARE = "share"
SHARE_SEEN = frozenset({SUBSCRIBE, SCAN, SHARE_OPEN})

# (tenant, member, at, kind, channel, source, ref, amount_fen, props)
Row = tuple[int, int, datetime, str, str, str, int, int, Mapping[str, Any]]


class Recorder:
    def __init__(self, uows: Callable[[], UowFactory]) -> None:
        """`uows`: returns the app's unit-of-work factory (made when the app starts)."""
        self._uows = uows
        self.pending: list[Activity] = []
        self.dropped = 0
        self._task: asyncio.Task[int] | None = None
        self.seen = Seen()

    def __call__(self, a: Activity) -> None:
        pending = self.pending
        if len(pending) >= LIMIT:
            self.dropped += 1
            return
        pending.append(a)
        if len(pending) >= FLUSH_AT and (self._task is None or self._task.done()):
            try:
                self._task = asyncio.get_running_loop().create_task(self.flush())
            except RuntimeError:  # no loop (a tool): the job flushes
                pass

    def known(self, keys: Sequence[tuple[int, int]]) -> None:
        """(tenant, member) whose facts rows are committed (the domain events' subscriber
        wrote them): the next flush need not insert them again."""
        seen = self.seen
        for k in keys:
            if seen.fresh(k):
                seen.note(k, NEVER)

    async def flush(self) -> int:
        """Write what is waiting; on failure put it back (the next flush tries again)."""
        taken, self.pending = self.pending, []
        if not taken:
            return 0
        rows: list[Row] = [(t, m, at, k, ch, src, ref, 0, props) for t, m, ch, k, at, ref, src, props in taken
                           if k != SHARE_OPEN]
        try:
            async with self._uows()() as uow:
                rows += await share_rows(uow, taken)
                await write(uow, rows, self.seen)
                await uow.commit()
        except Exception:
            log.exception("insights.flush_failed", extra={"rows": len(rows)})
            self.seen = Seen()   # what it noted may not have been committed
            room = LIMIT - len(self.pending)
            self.dropped += max(0, len(taken) - room)
            self.pending[:0] = taken[:room]
            raise
        return len(rows)


async def share_rows(uow: UnitOfWork, taken: Sequence[Activity]) -> list[Row]:
    """A `share` event for each QR scan/follow of a share scene and each share link opened:
    member = the sharer (social_mall/sharing.py), channel = where it was opened (mp: the QR,
    h5: the link), source = the scene, ref = the visitor (0: anonymous on a page), props: via
    (qr | link), what (referral | product | groupbuy), product. A sharer's own scan is none."""
    wanted: dict[int, set[str]] = {}
    for a in taken:
        if a.kind in SHARE_SEEN and a.source and share_kind(a.source) is not None:
            wanted.setdefault(a.tenant_id, set()).add(a.source)
    if not wanted:
        return []
    who = {t: await sharers(uow, t, scenes) for t, scenes in wanted.items()}
    out: list[Row] = []
    for a in taken:
        sharer = who.get(a.tenant_id, {}).get(a.source, 0) if a.kind in SHARE_SEEN and a.source else 0
        if not sharer or sharer == a.member_id:
            continue
        link = a.kind == SHARE_OPEN
        what = a.props.get("what", "") if link else share_kind(a.source)
        out.append((a.tenant_id, sharer, a.at, SHARE, a.channel, a.source, a.member_id, 0,
                    {"via": "link" if link else "qr", "what": str(what or ""), "product": a.ref if link else 0}))
    return out


def rowcount(result: object) -> int:
    """Rows an UPDATE/DELETE touched (a CursorResult's rowcount; typed loosely by SQLAlchemy)."""
    n = getattr(result, "rowcount", 0)
    return n if isinstance(n, int) else 0


def _insert(uow: UnitOfWork, model: type[Any]) -> Any:
    bind = uow.session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


class Seen:
    """What this worker already wrote of the member facts: members known to have a facts
    row, and the last-seen time written for each, so a busy member's every message does not
    cost an UPDATE (last seen moves in steps of SEEN_STEP; the 48-hour window keeps a margin
    wider than that)."""

    def __init__(self) -> None:
        self.last: dict[tuple[int, int], datetime] = {}

    def fresh(self, key: tuple[int, int]) -> bool:
        return key not in self.last

    def moved(self, key: tuple[int, int], at: datetime) -> bool:
        before = self.last.get(key)
        return before is None or at - before >= SEEN_STEP

    def note(self, key: tuple[int, int], at: datetime) -> None:
        if len(self.last) >= SEEN_MAX:
            self.last.clear()
        self.last[key] = at


_JSON: dict[tuple[tuple[str, Any], ...], str] = {}


def _json(props: Mapping[str, Any]) -> str:
    """Props as JSON text; the common small ones (a message's kind, a click's key) from a memo."""
    if not props:
        return "{}"
    try:
        key = tuple(props.items())
        text = _JSON.get(key)
    except TypeError:     # an unhashable value
        return json.dumps(dict(props), ensure_ascii=False)
    if text is None:
        text = json.dumps(dict(props), ensure_ascii=False)
        if len(_JSON) < 10_000 and len(text) < 80:
            _JSON[key] = text
    return text


async def insert_events(uow: UnitOfWork, rows: Sequence[Row]) -> None:
    """One statement for the lot: on PostgreSQL asyncpg's COPY (binary, encoded in C: a few
    µs a row less than an INSERT's parameters through SQLAlchemy), elsewhere a multi-row INSERT."""
    bind = uow.session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        conn = await uow.session.connection()
        raw = await conn.get_raw_connection()
        pg: Any = raw.driver_connection
        await pg.copy_records_to_table("insights_events", columns=EVENT_COLUMNS, records=[
            (t, m, at, k, ch, src[:64], ref, amt, _json(props)) for t, m, at, k, ch, src, ref, amt, props in rows])
        return
    await uow.session.execute(insert(Event), [
        {"tenant_id": t, "member_id": m, "at": at, "kind": k, "channel": ch, "source": src[:64], "ref": ref,
         "amount_fen": amt, "props": dict(props)}
        for t, m, at, k, ch, src, ref, amt, props in rows])


async def write(uow: UnitOfWork, rows: Sequence[Row], seen: Seen | None = None) -> None:
    """Append the events and keep the member facts: first seen (and where from), last seen
    (the 48-hour window). `seen`: skip what this worker already wrote (the activity path)."""
    await insert_events(uow, rows)
    first: dict[tuple[int, int], Row] = {}
    last_active: dict[tuple[int, int], datetime] = {}
    scenes: dict[tuple[int, int], tuple[str, datetime]] = {}
    cities: dict[tuple[int, int], tuple[datetime, str]] = {}
    active, scene_kinds = ACTIVE_KINDS, SCENE_KINDS
    for r in rows:
        if not r[1]:
            continue
        key = (r[0], r[1])
        at = r[2]
        if r[3] == MESSAGE and (city := r[8].get("city")):   # a location with a place name
            if key not in cities or at > cities[key][0]:
                cities[key] = (at, str(city)[:16])
        f = first.get(key)
        if f is None or at < f[2]:
            first[key] = r
        kind = r[3]
        if kind in active:
            la = last_active.get(key)
            if la is None or at > la:
                last_active[key] = at
        if r[5] and kind in scene_kinds and key not in scenes:
            scenes[key] = (r[5], at)
    if not first:
        return
    new = [k for k in first if seen is None or seen.fresh(k)]
    await ensure_facts(uow, [(t, m, first[(t, m)][2], first[(t, m)][4], scenes.get((t, m), ("", first[(t, m)][2]))[0])
                             for t, m in new])
    written = {k: at for k, at in last_active.items() if seen is None or seen.moved(k, at)}
    await set_last_seen(uow, written)
    for (t, m), (scene, at) in scenes.items():
        await set_acquisition(uow, t, m, scene, at)
    if cities:
        await uow.session.execute(_SET_CITY, [{"tenant": t, "member": m, "city": c} for (t, m), (_at, c) in cities.items()])
    if seen is not None:   # after the commit these are in the database (a rollback: the flush fails whole)
        for k in new:
            if k not in written:
                seen.note(k, NEVER)
        for k, at in written.items():
            seen.note(k, at)


_PG_LAST_SEEN = text(
    "UPDATE insights_members AS f SET last_seen_at = v.at "
    "FROM unnest(CAST(:members AS BIGINT[]), CAST(:ats AS TIMESTAMPTZ[])) AS v(member_id, at) "
    "WHERE f.tenant_id = :tenant AND f.member_id = v.member_id AND (f.last_seen_at IS NULL OR f.last_seen_at < v.at)")


_FACTS = cast(Table, MemberFacts.__table__)
# elsewhere (SQLite): one prebuilt Core statement, executed for all the members at once
# (executemany), not a statement built and compiled per member
_LAST_SEEN = (update(_FACTS)
              .where(_FACTS.c.tenant_id == bindparam("t"), _FACTS.c.member_id == bindparam("m"),
                     or_(_FACTS.c.last_seen_at.is_(None), _FACTS.c.last_seen_at < bindparam("at")))
              .values(last_seen_at=bindparam("at")))
# the city of a location sent with a place name (rare: one executemany a flush when any)
_SET_CITY = (update(_FACTS).where(_FACTS.c.tenant_id == bindparam("tenant"), _FACTS.c.member_id == bindparam("member"))
             .values(city=bindparam("city")))


async def set_last_seen(uow: UnitOfWork, seen: Mapping[tuple[int, int], datetime]) -> None:
    """Members' last-seen times moved forward (never back): on PostgreSQL one statement per
    tenant whatever their number, elsewhere one executemany."""
    if not seen:
        return
    bind = uow.session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        by_tenant: dict[int, list[tuple[int, datetime]]] = {}
        for (t, m), at in seen.items():
            by_tenant.setdefault(t, []).append((m, at))
        for t, pairs in by_tenant.items():
            await uow.session.execute(_PG_LAST_SEEN, {"tenant": t, "members": [m for m, _ in pairs],
                                                      "ats": [at for _, at in pairs]})
        return
    await uow.session.execute(_LAST_SEEN, [{"t": t, "m": m, "at": at} for (t, m), at in seen.items()])


# ensure_facts on PostgreSQL: one statement of one shape whatever the number of members (an
# array per column, unnest()ed by the server), prepared once per connection; no ORM bulk
# insert building and compiling a row of 16 values per member (a crowd's first contacts).
_PG_FACTS = text(
    "INSERT INTO insights_members (tenant_id, member_id, first_seen_at, first_channel, acq_kind, acq_source, "
    "referrer_id, orders, paid_fen, refunded_fen, first_seen_week, ltv30, ltv90, ltv180, ltv365) "
    "SELECT v.tenant_id, v.member_id, v.at, v.channel, v.kind, v.source, 0, 0, 0, 0, v.week, 0, 0, 0, 0 "
    "FROM unnest(CAST(:tenants AS BIGINT[]), CAST(:members AS BIGINT[]), CAST(:ats AS TIMESTAMPTZ[]), "
    "CAST(:channels AS VARCHAR[]), CAST(:kinds AS VARCHAR[]), CAST(:sources AS VARCHAR[]), "
    "CAST(:weeks AS DATE[])) AS v(tenant_id, member_id, at, channel, kind, source, week) "
    "ON CONFLICT (tenant_id, member_id) DO NOTHING")


async def ensure_facts(uow: UnitOfWork, seen: Sequence[tuple[int, int, datetime, str, str]]) -> None:
    """(tenant, member, at, channel, scene): a facts row for each member new to the module."""
    if not seen:
        return
    bind = uow.session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        await uow.session.execute(_PG_FACTS, {
            "tenants": [t for t, _, _, _, _ in seen], "members": [m for _, m, _, _, _ in seen],
            "ats": [at for _, _, at, _, _ in seen], "channels": [ch for _, _, _, ch, _ in seen],
            "kinds": [acquisition(sc) for _, _, _, _, sc in seen], "sources": [sc[:64] for _, _, _, _, sc in seen],
            "weeks": [week_start(shanghai_day(at)) for _, _, at, _, _ in seen]})
        return
    stmt = _insert(uow, MemberFacts).on_conflict_do_nothing(index_elements=["tenant_id", "member_id"])
    await uow.session.execute(stmt, [
        {"tenant_id": t, "member_id": m, "first_seen_at": at, "first_channel": ch, "acq_kind": acquisition(scene),
         "acq_source": scene[:64], "referrer_id": 0, "orders": 0, "paid_fen": 0, "refunded_fen": 0,
         "first_seen_week": week_start(shanghai_day(at)), "ltv30": 0, "ltv90": 0, "ltv180": 0, "ltv365": 0}
        for t, m, at, ch, scene in seen])


async def set_acquisition(uow: UnitOfWork, tenant: int, member: int, scene: str, at: datetime) -> None:
    """A scene seen within a day of the member's first sight is where they came from
    (the first contact and its QR scene may arrive in either order)."""
    await uow.session.execute(
        update(MemberFacts)
        .where(MemberFacts.tenant_id == tenant, MemberFacts.member_id == member,
               MemberFacts.acq_kind == ORGANIC, MemberFacts.first_seen_at >= at - timedelta(days=1))
        .values(acq_kind=acquisition(scene), acq_source=scene[:64]))


async def facts_of(uow: UnitOfWork, tenant: int, member: int) -> MemberFacts | None:
    return (await uow.session.execute(
        select(MemberFacts).where(and_(MemberFacts.tenant_id == tenant, MemberFacts.member_id == member))
    )).scalar_one_or_none()
