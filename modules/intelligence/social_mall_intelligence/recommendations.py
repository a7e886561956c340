"""Recommendations as services: purchases recorded from `order.paid` (with where they
were bought: social_mall/places.py), the nightly retrain (item-item co-occurrence over
purchases and the last 90 days of members' product views, recommend.py; popularity per
category and per place) stored as tables, and serving from an in-process copy of those
tables (reloaded when the model's version moves, checked every few seconds; at most
MAX_TENANTS models a worker, least recently used dropped).

Never recommended: products off the shelf or out of stock, a durable the member bought, a
consumable the member bought within its repurchase cycle (the nightly job estimates the
cycles from purchases, recommend.cycles; the merchant's mark in the console overrides: a
consumable with its days, or a durable). A consumable whose cycle has passed comes first,
marked 「该补货了」 (recommend.due). Nor a product kept from the member (the core's
visibility seam: e.g. B2B's 企业专供 for consumers), left out before the list is cut and
before any showing is recorded, so the list stays full and click-through counts only what
was shown.
A product the member only viewed may be recommended (it measured better: bench/recommend.py).
PIPL Art. 24: a member who switched personalisation off gets the shop's most popular
products only (the same list every such member gets: no history, no views, no location).

Cold start: a member with no history whose place is known (the store they chose, the city
of their address: the registry's place sources) gets that place's best sellers, then the
shop's.

Online measurement: every product a recommendation shows is an impression with its source
(for_me: 「猜你喜欢」, related: 「买了它的人还买了」 after 加购, paid: 「你可能还喜欢」 in the payment
push); a card opened from the 「猜你喜欢」 list (its tracking token rec.for_me) or an H5 link
carrying ?src=rec.<placement> (the core links the other two so) is a click
(views.py); a paid order's product shown to the member within 7 days counts its revenue
for the latest showing's source (console 推荐效果: showings, clicks, CTR, purchases, revenue).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from social_mall.activity import Activity, ActivitySink
from social_mall.catalog.visibility import hidden_products
from social_mall.errors import NotFoundError
from social_mall.orders.service import find_order
from social_mall.places import PlaceSource, member_places, order_places
from social_mall_intelligence import recommend as R
from social_mall_intelligence.lru import Lru
from social_mall_intelligence.models import (
    Attribution, Click, Cycle, CycleMark, Impression, Interaction, MemberPrefs, MemberView, ModelVersion, Neighbour,
    Popular, PopularPlace,
)
from storage.models import Member, Product, Sku
from storage.uow import UnitOfWork

CANDIDATES = 40   # looked at to find k sellable ones
ATTRIBUTION = timedelta(days=7)   # a purchase this soon after a showing counts for the recommendation
PER_PLACE = 100     # best sellers kept per place (store, city)
MAX_TENANTS = 256   # models a worker keeps in memory (lru.py)
MAX_MEMBERS = 20_000   # members' serving state a worker keeps in memory (lru.py)
FRESH = 10.0   # seconds a worker serves a member's state and a shop's shelf from memory
VIEWS_KEPT = timedelta(days=90)   # views older than this leave the model and members' histories
FOR_ME, RELATED, PAID = "for_me", "related", "paid"   # placements: 猜你喜欢, after 加购, the payment push
DAY = 86400.0


async def record_purchase(uow: UnitOfWork, tenant: int, order_no: str, now: datetime,
                          places: Sequence[PlaceSource] = ()) -> int:
    """The paid order's products as the member's purchases (again: nothing new), with where
    it was bought (`places`' sources: social_mall/places.py). Rows added."""
    order = await find_order(uow, tenant, order_no)
    where = " ".join(await order_places(uow, tenant, order.id, places))[:120] if places else ""
    pairs = await uow.catalog.skus_by_ids(tenant, [line.sku_id for line in order.lines])
    product_of = {sku.id: product.id for sku, product in pairs}
    qty: dict[int, int] = defaultdict(int)
    for line in order.lines:
        if line.sku_id in product_of:
            qty[product_of[line.sku_id]] += line.qty
    if not qty:
        return 0
    # one statement, conflicts skipped: two workers delivering the same event add it once
    stmt = dialect_insert(uow)(Interaction).values([
        {"tenant_id": tenant, "member_id": order.member_id, "product_id": p, "order_id": order.id, "qty": q,
         "at": order.paid_at or now,
         "places": where}
        for p, q in sorted(qty.items())]).on_conflict_do_nothing()
    added = max(0, int(getattr(await uow.session.execute(stmt), "rowcount", 0) or 0))
    revenue: dict[int, int] = defaultdict(int)
    for line in order.lines:
        if line.sku_id in product_of:
            revenue[product_of[line.sku_id]] += line.line_fen
    await _attribute(uow, tenant, order.id, order.member_id, revenue, now)
    return added


async def _attribute(uow: UnitOfWork, tenant: int, order_id: int, member: int, revenue: Mapping[int, int],
                     now: datetime) -> None:
    """Products of the order a recommendation showed the member within ATTRIBUTION: their
    revenue goes to the latest showing's source (once per order and product)."""
    shown = (await uow.session.execute(
        select(Impression.product_id, Impression.source).where(
            Impression.tenant_id == tenant, Impression.member_id == member,
            Impression.product_id.in_(list(revenue)), Impression.shown_at >= now - ATTRIBUTION)
        .order_by(Impression.shown_at, Impression.id))).all()
    source = {p: src for p, src in shown}   # the latest wins
    if source:
        await uow.session.execute(dialect_insert(uow)(Attribution).values([
            {"tenant_id": tenant, "order_id": order_id, "product_id": p, "member_id": member, "source": src,
             "revenue_fen": revenue[p], "at": now} for p, src in sorted(source.items())]).on_conflict_do_nothing())


SHOWN_KIND = "rec.shown"   # the activity a showing reports (per product: ref; source its tracking token)


def report_shown(sinks: Sequence[ActivitySink], tenant: int, member: int, ids: Sequence[int], placement: str,
                 now: datetime) -> None:
    """Tell the core's activity sinks (memory only: the chat path's cost) that these products
    were shown at this placement, so a customer-data module can put click-through beside
    the views that carry the same token (`rec.<placement>`)."""
    for sink in sinks:
        for p in ids:
            sink(Activity(tenant, member, "", SHOWN_KIND, now, p, "rec." + placement))


async def note_shown(uow: UnitOfWork, tenant: int, member: int, ids: Sequence[int], source: str,
                     now: datetime) -> None:
    uow.session.add_all([Impression(tenant_id=tenant, member_id=member, product_id=p, source=source, shown_at=now)
                         for p in ids])
    await uow.session.flush()


@dataclass(frozen=True)
class Readout:
    source: str
    impressions: int
    members: int
    orders: int
    revenue_fen: int
    clicks: int = 0

    @property
    def conversion(self) -> float:
        """Products bought after being shown, per product shown."""
        return self.orders / self.impressions if self.impressions else 0.0

    @property
    def ctr(self) -> float:
        """Products opened from the recommendation (its tracking token), per product shown."""
        return self.clicks / self.impressions if self.impressions else 0.0


async def readout(uow: UnitOfWork, tenant: int, since: datetime) -> tuple[Readout, ...]:
    """Per source since `since`: showings, members shown, attributed purchases and revenue,
    clicks (views that carried the source's tracking token: views.py)."""
    shown = {src: (n, m) for src, n, m in (await uow.session.execute(
        select(Impression.source, func.count(), func.count(func.distinct(Impression.member_id)))
        .where(Impression.tenant_id == tenant, Impression.shown_at >= since).group_by(Impression.source))).all()}
    bought = {src: (n, int(r or 0)) for src, n, r in (await uow.session.execute(
        select(Attribution.source, func.count(), func.sum(Attribution.revenue_fen))
        .where(Attribution.tenant_id == tenant, Attribution.at >= since).group_by(Attribution.source))).all()}
    clicked = {src: int(n) for src, n in (await uow.session.execute(
        select(Click.placement, func.count()).where(Click.tenant_id == tenant, Click.at >= since)
        .group_by(Click.placement))).all()}
    return tuple(Readout(src, *shown.get(src, (0, 0)), *bought.get(src, (0, 0)), clicked.get(src, 0))
                 for src in sorted(set(shown) | set(bought) | set(clicked)))


def dialect_insert(uow: UnitOfWork) -> Any:
    """The dialect's INSERT (both have ON CONFLICT DO NOTHING)."""
    return pg_insert if uow.session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def retrain(uow: UnitOfWork, tenant: int, now: datetime, *, with_views: bool = True) -> int:
    """Fit the model on every purchase and the last VIEWS_KEPT of members' product views
    (views.py) and store it (one transaction: serving sees the old model or the new one).
    The model's version."""
    rows = (await uow.session.execute(select(Interaction.member_id, Interaction.product_id, Interaction.places,
                                             Interaction.at).where(Interaction.tenant_id == tenant))).all()
    histories: dict[int, dict[int, float]] = defaultdict(dict)
    if with_views:   # browsing: weight VIEW_WEIGHT, a purchase of the same product overrides it
        for member, product in (await uow.session.execute(
                select(MemberView.member_id, MemberView.product_id).where(
                    MemberView.tenant_id == tenant, MemberView.last_at >= now - VIEWS_KEPT))).all():
            histories[member][product] = R.VIEW_WEIGHT
    bought_at: dict[tuple[str, int], set[int]] = defaultdict(set)   # (place, product) → buyers
    purchases: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for member, product, where, at in rows:
        histories[member][product] = 1.0
        purchases[member][product].append(_day(at))
        for pl in where.split():
            bought_at[(pl, product)].add(member)
    category_of = {pid: cid for pid, cid in (await uow.session.execute(
        select(Product.id, Product.category_id).where(Product.tenant_id == tenant))).all()}
    model = R.fit(histories, category_of)
    # one retrain of a tenant at a time: the version row is created if missing, then locked
    await uow.session.execute(dialect_insert(uow)(ModelVersion).values(tenant_id=tenant, version=0, trained_at=now)
                              .on_conflict_do_nothing())
    current = await uow.session.scalar(select(ModelVersion).where(ModelVersion.tenant_id == tenant)
                                       .with_for_update().execution_options(populate_existing=True))
    await uow.session.execute(delete(Neighbour).where(Neighbour.tenant_id == tenant))
    await uow.session.execute(delete(Popular).where(Popular.tenant_id == tenant))
    uow.session.add_all([Neighbour(tenant_id=tenant, product_id=p, rank=r, related_id=j, score_e6=int(s * 1e6))
                         for p, near in model.neighbours.items() for r, (j, s) in enumerate(near)])
    buyers = {p: n for p, n in (await uow.session.execute(
        select(Interaction.product_id, func.count(func.distinct(Interaction.member_id)))
        .where(Interaction.tenant_id == tenant).group_by(Interaction.product_id))).all()}
    uow.session.add_all([Popular(tenant_id=tenant, rank=r, product_id=p, category_id=category_of.get(p, 0),
                                 buyers=int(buyers.get(p, 0))) for r, p in enumerate(model.popular[:500])])
    await uow.session.execute(delete(Cycle).where(Cycle.tenant_id == tenant))
    uow.session.add_all([Cycle(tenant_id=tenant, product_id=p, days=round(d, 2))
                         for p, d in sorted(R.cycles(purchases, category_of).items())])
    await uow.session.execute(delete(PopularPlace).where(PopularPlace.tenant_id == tenant))
    per_place: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for (pl, p), who in bought_at.items():
        per_place[pl].append((p, len(who)))
    uow.session.add_all([PopularPlace(tenant_id=tenant, place=pl, rank=r, product_id=p, buyers=n)
                         for pl, ranked in per_place.items() if len(pl) <= 60
                         for r, (p, n) in enumerate(sorted(ranked, key=lambda x: (-x[1], x[0]))[:PER_PLACE])])
    assert current is not None
    version = current.version + 1
    current.version, current.trained_at = version, now
    await uow.session.flush()
    return version


def _day(at: datetime) -> float:
    """A time in days (SQLite hands back naive UTC)."""
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).timestamp() / DAY


async def bought_at(uow: UnitOfWork, tenant: int, member: int) -> dict[int, datetime]:
    """product → when the member last bought it: one query."""
    return {p: at for p, at in (await uow.session.execute(
        select(Interaction.product_id, func.max(Interaction.at))
        .where(Interaction.tenant_id == tenant, Interaction.member_id == member)
        .group_by(Interaction.product_id))).all()}


async def cycle_marks(uow: UnitOfWork, tenant: int) -> dict[int, tuple[bool, int]]:
    """product → the merchant's mark (consumable?, its days): one query."""
    return {p: (consumable, days or 0) for p, consumable, days in (await uow.session.execute(
        select(CycleMark.product_id, CycleMark.consumable, CycleMark.days)
        .where(CycleMark.tenant_id == tenant))).all()}


async def personalised(uow: UnitOfWork, tenant: int, member: int) -> bool:
    row = await uow.session.get(MemberPrefs, (tenant, member))
    return True if row is None else row.personalised


async def set_personalised(uow: UnitOfWork, tenant: int, member: int, on: bool, now: datetime) -> None:
    row = await uow.session.get(MemberPrefs, (tenant, member))
    if row is None:
        uow.session.add(MemberPrefs(tenant_id=tenant, member_id=member, personalised=on, updated_at=now))
    else:
        row.personalised, row.updated_at = on, now
    await uow.session.flush()


async def personalised_since(uow: UnitOfWork, tenant: int, member: int) -> tuple[bool, datetime | None]:
    """(personalised?, when the member last switched: None if never)."""
    row = await uow.session.get(MemberPrefs, (tenant, member))
    return (True, None) if row is None else (row.personalised, row.updated_at)


async def switch_personalised(uow: UnitOfWork, tenant: int, actor: str, member: int, on: bool,
                              now: datetime) -> bool:
    """Staff switching a member's personalisation at their request: audited; True when it
    changed. A member not of this tenant reads as not found."""
    found = await uow.session.scalar(select(Member.id).where(Member.tenant_id == tenant, Member.id == member))
    if found is None:
        raise NotFoundError("member", member)
    was = await personalised(uow, tenant, member)
    if was == on:
        return False
    await set_personalised(uow, tenant, member, on, now)
    uow.audit(tenant, actor, "intel.personalised", f"member:{member}", before={"personalised": was},
              after={"personalised": on})
    return True


@dataclass
class _Loaded:
    version: int
    model: R.Model
    category_of: Mapping[int, int]
    checked: float
    cycles: Mapping[int, float]


@dataclass(frozen=True)
class _Member:
    """What serving reads about one member: their setting, purchases, views, places."""
    on: bool
    bought: Mapping[int, datetime]
    viewed: tuple[int, ...]
    places: tuple[str, ...]
    until: float


@dataclass
class _Shelf:
    """What serving reads about one shop besides its model: the sellable products, the
    merchant's cycle marks, the first sellable products in the merchant's order."""
    catalog: tuple[int, int]   # (the read cache, its version) at load: a catalog write in this worker drops it
    until: float
    sellable: frozenset[int]
    marks: Mapping[int, tuple[bool, int]]
    first: dict[int, list[int]]


class Picks(NamedTuple):
    ids: list[int]
    personal: bool
    restock: frozenset[int]   # consumables shown because their cycle passed (「该补货了」)


class Recommender:
    """Serving: the tenant's stored model kept in memory, its version re-read every
    `recheck` seconds; at most `max_tenants` models per worker (the least recently used
    dropped, reloaded from the tables on its tenant's next request).

    A warm request reads nothing from the database: the member's state (setting,
    purchases, views, places) and the shop's shelf (sellable products, cycle marks) are
    kept per worker for `fresh` seconds (at most `max_members` members, least recently
    used dropped). This worker drops them at once when they change here: the member's on
    their paid order (the order.paid subscriber: `forget_member`) and on their setting
    (`set_personalised` through `forget_member`), the shelf on a catalog write committed here
    (the core read cache's version; cycle marks count as catalog writes: module.py).
    Other workers see such a change within `fresh` seconds (a product sold out by orders
    too: stock moves are not catalog writes); a view reaches the history once flushed
    (views.py) and within `fresh`."""

    def __init__(self, *, recheck: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] | None = None, max_tenants: int = MAX_TENANTS,
                 places: Sequence[PlaceSource] = (), fresh: float = FRESH, max_members: int = MAX_MEMBERS,
                 sinks: Sequence[ActivitySink] = ()) -> None:
        self.recheck, self.clock, self.fresh = recheck, clock, fresh
        self.sinks = sinks     # the registry's activity sinks (filled by modules after this one is made)
        self._members: Lru[tuple[int, int], _Member] = Lru(max_members)
        self._shelves: Lru[int, _Shelf] = Lru(max_tenants)
        self.places = places   # the registry's place sources (filled by modules after this one is made)
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(timezone.utc))   # impressions' time
        self.loads = 0     # diagnostics (tests)
        self._models: Lru[int, _Loaded] = Lru(max_tenants)
        self._locks: dict[int, asyncio.Lock] = {}

    def forget(self, tenant: int) -> None:
        """Reload the tenant's model on its next request (this process just retrained it)."""
        self._models.pop(tenant)

    def forget_member(self, tenant: int, member: int) -> None:
        """Read the member's state again on their next request (it just changed here)."""
        self._members.pop((tenant, member))

    async def member(self, uow: UnitOfWork, tenant: int, member: int) -> _Member:
        got = self._members.get((tenant, member))
        now = self.clock()
        if got is not None and now < got.until:
            return got
        on = await personalised(uow, tenant, member)
        got = _Member(on, await bought_at(uow, tenant, member),
                      tuple(await viewed(uow, tenant, member, self.now())) if on else (),
                      tuple(await member_places(uow, tenant, member, self.places)) if on and self.places else (),
                      now + self.fresh)
        self._members.put((tenant, member), got)
        return got

    async def shelf(self, uow: UnitOfWork, tenant: int) -> _Shelf:
        got = self._shelves.get(tenant)
        now = self.clock()
        catalog = (id(uow.cache), uow.cache.version)
        if got is not None and now < got.until and got.catalog == catalog:
            return got
        got = _Shelf(catalog, now + self.fresh, frozenset(await sellable_ids(uow, tenant)),
                     await cycle_marks(uow, tenant), {})
        self._shelves.put(tenant, got)
        return got

    async def _sellable(self, uow: UnitOfWork, tenant: int, ids: list[int],
                        hidden: frozenset[int] = frozenset()) -> list[int]:
        ok = (await self.shelf(uow, tenant)).sellable
        return [i for i in ids if i in ok and i not in hidden]

    async def _shelf_first(self, uow: UnitOfWork, tenant: int, n: int) -> list[int]:
        got = await self.shelf(uow, tenant)
        if n not in got.first:
            got.first[n] = await shelf_first(uow, tenant, n)
        return got.first[n]

    async def model(self, uow: UnitOfWork, tenant: int) -> _Loaded:
        now = self.clock()
        got = self._models.get(tenant)
        if got is not None and now - got.checked < self.recheck:
            return got
        async with self._locks.setdefault(tenant, asyncio.Lock()):
            row = await uow.session.get(ModelVersion, tenant, populate_existing=True)
            version = row.version if row is not None else 0
            got = self._models.get(tenant)
            if got is not None and got.version == version:
                got.checked = now
                return got
            near: dict[int, list[tuple[int, float]]] = defaultdict(list)
            for n in (await uow.session.scalars(select(Neighbour).where(Neighbour.tenant_id == tenant)
                                                .order_by(Neighbour.product_id, Neighbour.rank))).all():
                near[n.product_id].append((n.related_id, n.score_e6 / 1e6))
            pops = (await uow.session.scalars(select(Popular).where(Popular.tenant_id == tenant)
                                              .order_by(Popular.rank))).all()
            by_cat: dict[int, list[int]] = defaultdict(list)
            for p in pops:
                by_cat[p.category_id].append(p.product_id)
            by_place: dict[str, list[int]] = defaultdict(list)
            for pl, pid in (await uow.session.execute(
                    select(PopularPlace.place, PopularPlace.product_id).where(PopularPlace.tenant_id == tenant)
                    .order_by(PopularPlace.place, PopularPlace.rank))).all():
                by_place[pl].append(pid)
            model = R.Model({k: tuple(v) for k, v in near.items()}, tuple(p.product_id for p in pops),
                            {k: tuple(v) for k, v in by_cat.items()}, {k: tuple(v) for k, v in by_place.items()})
            cycles = {p: d for p, d in (await uow.session.execute(
                select(Cycle.product_id, Cycle.days).where(Cycle.tenant_id == tenant))).all()}
            got = _Loaded(version, model, {p.product_id: p.category_id for p in pops}, now, cycles)
            self.loads += 1
            for old in self._models.put(tenant, got):
                lock = self._locks.get(old)
                if lock is not None and not lock.locked():
                    del self._locks[old]
            return got

    async def _cycled(self, uow: UnitOfWork, tenant: int, state: _Member,
                      loaded: _Loaded) -> tuple[set[int], list[int], set[int], set[int]]:
        """(what the member bought; its consumables due again, most overdue first; those
        whose cycle lapsed; the rest: durables and consumables within their cycle)."""
        last = state.bought
        marks = (await self.shelf(uow, tenant)).marks
        cycle = dict(loaded.cycles)
        declared: set[int] = set()
        for p in last:
            if p not in marks:
                continue
            consumable, days = marks[p]
            if consumable:
                cycle[p] = float(days)
                declared.add(p)
            else:   # marked a durable
                cycle.pop(p, None)
        restock, back, held = R.due({p: _day(at) for p, at in last.items()}, cycle, _day(self.now()),
                                    declared=declared)
        return set(last), restock, back, held

    async def for_member(self, uow: UnitOfWork, tenant: int, member: int, k: int) -> Picks:
        """The member's k sellable products best first, personalised or not, and which of
        them are consumables due again."""
        loaded = await self.model(uow, tenant)
        state = await self.member(uow, tenant, member)
        on = state.on
        bought, restock, back, held = await self._cycled(uow, tenant, state, loaded)
        history = {p: R.VIEW_WEIGHT for p in state.viewed}
        history.update({p: 1.0 for p in bought})
        where = state.places
        wanted = R.recommend(loaded.model, history, CANDIDATES, exclude=held, category_of=loaded.category_of,
                             personalised=on, places=where, restock=restock, back=back)
        if not on:   # not personalised: the same list for everyone, bought or not
            wanted = R.recommend(loaded.model, {}, CANDIDATES, personalised=False)
        hidden = await hidden_products(uow, tenant, member)
        found = await self._sellable(uow, tenant, wanted, hidden)
        if len(found) < k:   # cold start (no purchases yet): the shop's own order
            skip = set(found) | (held if on else set()) | hidden
            found += [p for p in await self._shelf_first(uow, tenant, k + len(skip)) if p not in skip]
        found = found[:k]
        return Picks(found, on, frozenset(set(found) & set(restock)) if on else frozenset())

    async def best_sellers(self, uow: UnitOfWork, tenant: int) -> tuple[tuple[int, ...], frozenset[int]]:
        """The shop's products by distinct buyers, most first (the stored model: up to 500),
        and those on the shelf with a SKU in stock: search's suggestions when nothing matched.
        Nothing personal (the same for every member)."""
        return (await self.model(uow, tenant)).model.popular, (await self.shelf(uow, tenant)).sellable

    async def related(self, uow: UnitOfWork, tenant: int, member: int, product: int, *,
                      limit: int, placement: str = RELATED) -> tuple[int, ...]:
        """「买了它的人还买了」 beside a product added to the cart, 「你可能还喜欢」 in the
        payment push (the core's related seam, its `placement`: the showings' source):
        its neighbours the member hasn't bought, sellable; nothing when the member switched
        personalisation off."""
        state = await self.member(uow, tenant, member)
        if not state.on:
            return ()
        loaded = await self.model(uow, tenant)
        _, _, _, held = await self._cycled(uow, tenant, state, loaded)
        wanted = R.also_bought(loaded.model, product, CANDIDATES, exclude=held)
        found = (await self._sellable(uow, tenant, wanted, await hidden_products(uow, tenant, member)))[:limit]
        where = placement if placement in (RELATED, PAID) else RELATED
        await note_shown(uow, tenant, member, found, where, self.now())
        report_shown(self.sinks, tenant, member, found, where, self.now())
        return tuple(found)


async def viewed(uow: UnitOfWork, tenant: int, member: int, now: datetime, limit: int = 50) -> list[int]:
    """The products the member viewed lately (most recent first; their browsing history)."""
    return list((await uow.session.scalars(
        select(MemberView.product_id).where(MemberView.tenant_id == tenant, MemberView.member_id == member,
                                            MemberView.last_at >= now - VIEWS_KEPT)
        .order_by(MemberView.last_at.desc()).limit(limit))).all())


async def sellable_ids(uow: UnitOfWork, tenant: int) -> list[int]:
    """The shop's products that are on the shelf with a SKU in stock."""
    return list((await uow.session.scalars(
        select(Sku.product_id).join(Product, Product.id == Sku.product_id)
        .where(Sku.tenant_id == tenant, Sku.on_shelf.is_(True), Sku.stock > 0, Product.on_shelf.is_(True))
        .distinct())).all())


async def sellable(uow: UnitOfWork, tenant: int, ids: list[int]) -> list[int]:
    """These products that are on the shelf with a SKU in stock, in the given order."""
    if not ids:
        return []
    ok = set((await uow.session.scalars(
        select(Sku.product_id).join(Product, Product.id == Sku.product_id)
        .where(Sku.tenant_id == tenant, Sku.product_id.in_(ids), Sku.on_shelf.is_(True), Sku.stock > 0,
               Product.on_shelf.is_(True)).distinct())).all())
    return [i for i in ids if i in ok]


async def shelf_first(uow: UnitOfWork, tenant: int, n: int) -> list[int]:
    """The first `n` sellable products in the merchant's order (categories, then products)."""
    ids = list((await uow.session.scalars(
        select(Product.id).where(Product.tenant_id == tenant, Product.on_shelf.is_(True))
        .order_by(Product.category_id, Product.sort, Product.id).limit(n * 2))).all())
    return (await sellable(uow, tenant, ids))[:n]
