"""Bargain services over a unit of work (the caller commits; a refusal raises a
BargainError and leaves the caller's transaction for it to roll back, so nothing a
refused step touched is kept).

- campaigns: create / update / switch on and off (console, audited), live ones for chat;
- `start_bargain`: one live bargain per member and campaign; the cuts drawn and stored;
- `help_bargain`: who may help (not the starter, a follower for at least the campaign's
  minimum age, once per bargain, at most K helps a Shanghai day: a conditional increment),
  then the cut by compare-and-set on (helps, price): `helps = k` in the UPDATE's WHERE, so
  of concurrent helps each takes the next cut and none goes past the floor;
- `buy`: the bargain's one order at the price reached (the floor once reached) through the
  core's `place_order` with the bargain price as the line's unit price; a repeat shows the
  same order; the campaign's stock is taken with it (`stock >= 1`);
- `order.paid` → bought; `order.cancelled` (unpaid) → the bargain reopens until its expiry
  and the stock comes back; `expire_due` (a job) ends bargains past their validity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert as sql_insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from social_mall.errors import NotFoundError
from social_mall.members.service import member_since
from social_mall.orders.rules import OrderStatus
from social_mall.orders.service import load_order, place_order
from social_mall.views import OrderView
from social_mall_bargain import rules
from social_mall_bargain.errors import (
    AlreadyBargainingError, AlreadyHelpedError, BargainClosedError, BargainSoldOutError, CampaignClosedError,
    HelperNotEligibleError, HelpLimitError, InvalidTermsError, SelfHelpError,
)
from social_mall_bargain.events import BargainExpired, BargainHelped
from social_mall_bargain.models import Bargain, BargainCampaign, BargainHelp, BargainHelpDay
from social_mall_bargain.rules import Status
from storage.uow import UnitOfWork, UowFactory

SOURCE_PREFIX = "bargain:"
CAS_TRIES = 200          # each lost compare-and-set means another help went through: progress


@dataclass(frozen=True)
class CampaignView:
    id: int
    product_id: int
    sku_id: int
    title: str
    name: str            # product title + spec
    price_fen: int       # the SKU's own price (where a bargain starts)
    floor_fen: int
    helps_needed: int
    min_cut_fen: int
    hours: int
    stock: int
    daily_helps: int
    helper_min_age_hours: int
    starts_at: datetime
    ends_at: datetime
    active: bool

    def live(self, now: datetime) -> bool:
        return self.active and self.starts_at <= now < self.ends_at


@dataclass(frozen=True)
class BargainView:
    id: int
    campaign_id: int
    member_id: int
    code: str
    sku_id: int
    title: str
    start_fen: int
    floor_fen: int
    price_fen: int
    helps: int
    helps_needed: int
    status: str
    order_id: int | None
    created_at: datetime
    expires_at: datetime

    @property
    def left_fen(self) -> int:
        """How much is still to cut before the floor."""
        return self.price_fen - self.floor_fen

    @property
    def cut_fen(self) -> int:
        return self.start_fen - self.price_fen

    @property
    def scene(self) -> str:
        return rules.scene_for(self.code)


@dataclass(frozen=True)
class HelpResult:
    bargain: BargainView
    seq: int
    cut_fen: int


def _aware(at: datetime) -> datetime:
    from datetime import timezone

    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


# -- campaigns -------------------------------------------------------------------------------

async def _sku(uow: UnitOfWork, tenant: int, sku_id: int) -> tuple[int, int, str]:
    """(product id, price, name) of a tenant's SKU."""
    found = await uow.catalog.skus_by_ids(tenant, [sku_id])
    if not found:
        raise NotFoundError("sku", sku_id)
    sku, product = found[0]
    return product.id, sku.price_fen, f"{product.title} {sku.spec}".strip()


async def _campaign_views(uow: UnitOfWork, tenant: int, rows: Sequence[BargainCampaign]) -> list[CampaignView]:
    if not rows:
        return []
    skus = {s.id: (s, p) for s, p in await uow.catalog.skus_by_ids(tenant, list({r.sku_id for r in rows}))}
    out: list[CampaignView] = []
    for r in rows:
        sku, product = skus.get(r.sku_id, (None, None))
        name = f"{product.title} {sku.spec}".strip() if sku is not None and product is not None else str(r.sku_id)
        out.append(CampaignView(r.id, r.product_id, r.sku_id, r.title, name, sku.price_fen if sku else 0,
                                r.floor_fen, r.helps_needed, r.min_cut_fen, r.hours, r.stock, r.daily_helps,
                                r.helper_min_age_hours, _aware(r.starts_at), _aware(r.ends_at), r.active))
    return out


async def get_campaign(uow: UnitOfWork, tenant: int, campaign_id: int) -> CampaignView:
    row = (await uow.session.execute(select(BargainCampaign).where(
        BargainCampaign.tenant_id == tenant, BargainCampaign.id == campaign_id))).scalar_one_or_none()
    if row is None:
        raise NotFoundError("bargain_campaign", campaign_id)
    return (await _campaign_views(uow, tenant, [row]))[0]


async def list_campaigns(uow: UnitOfWork, tenant: int) -> list[CampaignView]:
    rows = (await uow.session.execute(select(BargainCampaign).where(BargainCampaign.tenant_id == tenant)
                                      .order_by(BargainCampaign.id.desc()).limit(200))).scalars().all()
    return await _campaign_views(uow, tenant, rows)


async def live_campaigns(uow: UnitOfWork, tenant: int, now: datetime, limit: int = 10) -> list[CampaignView]:
    rows = (await uow.session.execute(select(BargainCampaign).where(
        BargainCampaign.tenant_id == tenant, BargainCampaign.active.is_(True), BargainCampaign.starts_at <= now,
        BargainCampaign.ends_at > now).order_by(BargainCampaign.id).limit(limit))).scalars().all()
    return [c for c in await _campaign_views(uow, tenant, rows) if c.price_fen > c.floor_fen]


async def campaign_running(uow: UnitOfWork, tenant: int, sku_id: int, now: datetime) -> bool:
    """Does a live campaign bargain this SKU now? (the core's price hold: a bargain starts at
    the SKU's price of the moment, so an automatic raise would lengthen every new bargain)"""
    stmt = select(BargainCampaign.id).where(
        BargainCampaign.tenant_id == tenant, BargainCampaign.sku_id == sku_id, BargainCampaign.active.is_(True),
        BargainCampaign.starts_at <= now, BargainCampaign.ends_at > now).limit(1)
    return await uow.session.scalar(stmt) is not None


def _terms_values(t: rules.Terms) -> dict[str, object]:
    return {"floor_fen": t.floor_fen, "helps_needed": t.helps_needed, "min_cut_fen": t.min_cut_fen,
            "hours": t.hours, "stock": t.stock, "daily_helps": t.daily_helps,
            "helper_min_age_hours": t.helper_min_age_hours, "starts_at": t.starts_at, "ends_at": t.ends_at}


def _plain(values: dict[str, object]) -> dict[str, object]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


async def create_campaign(uow: UnitOfWork, tenant: int, *, sku_id: int, title: str, terms: rules.Terms,
                          actor: str) -> CampaignView:
    product_id, price, _ = await _sku(uow, tenant, sku_id)
    bad = rules.check_terms(terms, price) + ([] if 1 <= len(title.strip()) <= 80 else ["title"])
    if bad:
        raise InvalidTermsError(bad)
    row = BargainCampaign(tenant_id=tenant, product_id=product_id, sku_id=sku_id, title=title.strip(),
                          active=True, **_terms_values(terms))
    uow.session.add(row)
    await uow.session.flush()
    uow.audit(tenant, actor, "bargain.campaign_create", f"bargain_campaign:{row.id}",
              after={"sku_id": sku_id, "title": row.title, **_plain(_terms_values(terms))})
    return await get_campaign(uow, tenant, row.id)


async def update_campaign(uow: UnitOfWork, tenant: int, campaign_id: int, *, title: str, terms: rules.Terms,
                          active: bool, actor: str) -> CampaignView:
    """New terms for bargains started from now on (a started bargain keeps its own cuts,
    floor and expiry); stock is set as given."""
    before = await get_campaign(uow, tenant, campaign_id)
    bad = rules.check_terms(terms, before.price_fen) + ([] if 1 <= len(title.strip()) <= 80 else ["title"])
    if bad:
        raise InvalidTermsError(bad)
    values = {**_terms_values(terms), "title": title.strip(), "active": active}
    await uow.session.execute(update(BargainCampaign).where(
        BargainCampaign.tenant_id == tenant, BargainCampaign.id == campaign_id).values(**values))
    uow.audit(tenant, actor, "bargain.campaign_update", f"bargain_campaign:{campaign_id}",
              before={"title": before.title, "floor_fen": before.floor_fen, "helps_needed": before.helps_needed,
                      "stock": before.stock, "active": before.active},
              after=_plain(values))
    return await get_campaign(uow, tenant, campaign_id)


# -- bargains --------------------------------------------------------------------------------

def _view(b: Bargain, title: str) -> BargainView:
    return BargainView(b.id, b.campaign_id, b.member_id, b.code, b.sku_id, title, b.start_fen, b.floor_fen,
                       b.price_fen, b.helps, b.helps_needed, b.status, b.order_id, _aware(b.created_at),
                       _aware(b.expires_at))


async def _views(uow: UnitOfWork, tenant: int, rows: Sequence[Bargain]) -> list[BargainView]:
    titles = {c.id: c.title for c in (await uow.session.execute(select(BargainCampaign).where(
        BargainCampaign.tenant_id == tenant, BargainCampaign.id.in_({r.campaign_id for r in rows})))).scalars()}
    return [_view(r, titles.get(r.campaign_id, "")) for r in rows]


async def _fresh(uow: UnitOfWork, tenant: int, where: object) -> Bargain | None:
    return (await uow.session.execute(select(Bargain).where(Bargain.tenant_id == tenant, where)  # type: ignore[arg-type]
                                      .execution_options(populate_existing=True))).scalar_one_or_none()


async def get_bargain(uow: UnitOfWork, tenant: int, bargain_id: int, member: int | None = None) -> BargainView:
    b = await _fresh(uow, tenant, Bargain.id == bargain_id)
    if b is None or (member is not None and b.member_id != member):
        raise NotFoundError("bargain", bargain_id)
    return (await _views(uow, tenant, [b]))[0]


async def bargain_by_code(uow: UnitOfWork, tenant: int, code: str) -> BargainView:
    b = await _fresh(uow, tenant, Bargain.code == code)
    if b is None:
        raise NotFoundError("bargain", code)
    return (await _views(uow, tenant, [b]))[0]


async def member_bargains(uow: UnitOfWork, tenant: int, member: int, limit: int = 10) -> list[BargainView]:
    rows = (await uow.session.execute(select(Bargain).where(Bargain.tenant_id == tenant, Bargain.member_id == member)
                                      .order_by(Bargain.id.desc()).limit(limit))).scalars().all()
    return await _views(uow, tenant, rows)


async def campaign_bargains(uow: UnitOfWork, tenant: int, campaign_id: int, limit: int = 100) -> list[BargainView]:
    rows = (await uow.session.execute(select(Bargain).where(
        Bargain.tenant_id == tenant, Bargain.campaign_id == campaign_id).order_by(Bargain.id.desc()).limit(limit))
    ).scalars().all()
    return await _views(uow, tenant, rows)


async def helps_of(uow: UnitOfWork, tenant: int, bargain_id: int) -> list[tuple[int, int, int]]:
    """(seq, cut, price after) of a bargain's helps, in order."""
    rows = (await uow.session.execute(select(BargainHelp.seq, BargainHelp.cut_fen, BargainHelp.price_after_fen)
                                      .where(BargainHelp.tenant_id == tenant, BargainHelp.bargain_id == bargain_id)
                                      .order_by(BargainHelp.seq))).all()
    return [(int(a), int(b), int(c)) for a, b, c in rows]


async def start_bargain(uow: UnitOfWork, tenant: int, member: int, campaign_id: int, *, now: datetime) -> BargainView:
    """A new bargain on a live campaign at the SKU's price now, its cuts drawn and stored.
    A member with a live bargain of this campaign gets AlreadyBargainingError (its code)."""
    c = await get_campaign(uow, tenant, campaign_id)
    if not c.live(now) or c.price_fen <= c.floor_fen or c.stock < 1:
        raise CampaignClosedError()
    live = (await uow.session.execute(select(Bargain.code).where(
        Bargain.tenant_id == tenant, Bargain.campaign_id == campaign_id, Bargain.member_id == member,
        Bargain.status.in_([Status.OPEN, Status.REACHED, Status.ORDERED]), Bargain.expires_at > now))).first()
    if live is not None:
        raise AlreadyBargainingError(str(live[0]))
    total = c.price_fen - c.floor_fen
    helps = c.helps_needed
    if total < helps * c.min_cut_fen:
        raise CampaignClosedError()
    seed = rules.new_seed()
    cuts = rules.cut_sequence(total, helps, seed, c.min_cut_fen)
    row = Bargain(tenant_id=tenant, campaign_id=c.id, member_id=member, code=rules.new_code(), sku_id=c.sku_id,
                  start_fen=c.price_fen, floor_fen=c.floor_fen, price_fen=c.price_fen, helps=0, helps_needed=helps,
                  seed=seed, cuts=rules.dump_cuts(cuts), status=Status.OPEN, created_at=now,
                  expires_at=min(now + timedelta(hours=c.hours), c.ends_at))
    uow.session.add(row)
    await uow.session.flush()
    uow.audit(tenant, f"member:{member}", "bargain.start", f"bargain:{row.id}",
              after={"campaign_id": c.id, "start_fen": c.price_fen, "floor_fen": c.floor_fen, "helps_needed": helps,
                     "seed": seed, "cuts": cuts, "expires_at": row.expires_at.isoformat()})
    return _view(row, c.title)


async def _count_help_today(uow: UnitOfWork, tenant: int, helper: int, limit: int, now: datetime) -> bool:
    """Take one of the helper's K helps of today: insert the day's row if missing, then
    `n = n + 1 WHERE n < K` (one conditional UPDATE: parallel helps can't both take the last)."""
    day = rules.day_of(now)
    bind = uow.session.bind
    insert = pg_insert if bind is not None and bind.dialect.name == "postgresql" else sqlite_insert
    await uow.session.execute(insert(BargainHelpDay).values(tenant_id=tenant, member_id=helper, day=day, n=0)
                              .on_conflict_do_nothing(index_elements=["tenant_id", "member_id", "day"]))
    res = await uow.session.execute(update(BargainHelpDay).where(
        BargainHelpDay.tenant_id == tenant, BargainHelpDay.member_id == helper, BargainHelpDay.day == day,
        BargainHelpDay.n < limit).values(n=BargainHelpDay.n + 1))
    return getattr(res, "rowcount", 0) == 1


async def help_bargain(uow: UnitOfWork, tenant: int, helper: int, code: str, *, now: datetime) -> HelpResult:
    """A friend's help on the bargain with this share code (see the module doc for who may
    help). Every refusal raises before anything is written or after what was written is
    left for the caller's rollback."""
    b = await _fresh(uow, tenant, Bargain.code == code)
    if b is None:
        raise NotFoundError("bargain", code)
    if b.status != Status.OPEN or _aware(b.expires_at) <= now:
        raise BargainClosedError(b.code, Status.EXPIRED if b.status == Status.OPEN else b.status)
    min_age, daily, title = (await uow.session.execute(select(
        BargainCampaign.helper_min_age_hours, BargainCampaign.daily_helps, BargainCampaign.title).where(
        BargainCampaign.id == b.campaign_id))).one()
    since = await member_since(uow, tenant, helper, "mp")
    refusal = rules.helper_refusal(helper, b.member_id, since, int(min_age), now)
    if refusal is rules.Refusal.SELF:
        raise SelfHelpError()
    if refusal is not None:
        raise HelperNotEligibleError(refusal.value, int(min_age))
    helped = (await uow.session.execute(select(BargainHelp.id).where(
        BargainHelp.bargain_id == b.id, BargainHelp.helper_member_id == helper))).first()
    if helped is not None:
        raise AlreadyHelpedError()
    if not await _count_help_today(uow, tenant, helper, int(daily), now):
        raise HelpLimitError(int(daily))
    cuts = rules.load_cuts(b.cuts)
    k, price, status = b.helps, b.price_fen, str(b.status)      # as read above; again after a lost CAS
    for attempt in range(CAS_TRIES):
        if attempt:
            row = (await uow.session.execute(select(Bargain.helps, Bargain.price_fen, Bargain.status).where(
                Bargain.id == b.id))).one()
            k, price, status = int(row[0]), int(row[1]), str(row[2])
        if status != Status.OPEN or k >= b.helps_needed:
            raise BargainClosedError(b.code, status)
        cut = cuts[k]
        after = price - cut
        res = await uow.session.execute(update(Bargain).where(
            Bargain.id == b.id, Bargain.status == Status.OPEN, Bargain.helps == k, Bargain.price_fen == price,
            Bargain.expires_at > now).values(
            helps=k + 1, price_fen=after,
            status=Status.REACHED if k + 1 == b.helps_needed else Status.OPEN))
        if getattr(res, "rowcount", 0) == 1:
            break
    else:  # pragma: no cover - only with more concurrent helps than cuts
        raise BargainClosedError(b.code, "busy")
    insert_help = sql_insert(BargainHelp)
    try:
        await uow.session.execute(insert_help.values(
            tenant_id=tenant, bargain_id=b.id, helper_member_id=helper, seq=k + 1, cut_fen=cut,
            price_after_fen=after, created_at=now))
    except IntegrityError:
        raise AlreadyHelpedError() from None   # the same friend's parallel help won: the caller rolls back
    uow.audit(tenant, f"member:{helper}", "bargain.help", f"bargain:{b.id}",
              before={"price_fen": price, "helps": k}, after={"price_fen": after, "helps": k + 1, "cut_fen": cut})
    uow.emit(BargainHelped(tenant_id=tenant, member_id=b.member_id, bargain_id=b.id, code=b.code, cut_fen=cut,
                           price_fen=after, floor_fen=b.floor_fen, helps=k + 1, helps_needed=b.helps_needed))
    # the view from what the compare-and-set wrote (no read while the row is locked)
    done = dataclasses.replace(_view(b, str(title)), price_fen=after, helps=k + 1,
                               status=Status.REACHED if k + 1 == b.helps_needed else Status.OPEN)
    return HelpResult(done, k + 1, cut)


async def buy(uow: UnitOfWork, tenant: int, member: int, bargain_id: int, *, address_id: int, now: datetime,
              timeout: timedelta, channel: str = "mp") -> tuple[OrderView, bool]:
    """The bargain's order at the price reached: (order, placed now). A repeat while its
    order waits for payment returns that order (placed now: False). One conditional move
    open|reached → ordered at the price read (`helps` unchanged: a help landing meanwhile
    makes it read again), the campaign's stock, then `place_order` with the bargain price
    as the unit price, all in the caller's transaction (short stock rolls it all back)."""
    for _ in range(CAS_TRIES):
        b = await _fresh(uow, tenant, Bargain.id == bargain_id)
        if b is None or b.member_id != member:
            raise NotFoundError("bargain", bargain_id)
        if b.status == Status.ORDERED and b.order_id is not None:
            order = await load_order(uow, tenant, b.order_id)
            if order.status == OrderStatus.PENDING_PAYMENT:
                return order, False
        if b.status not in rules.LIVE or _aware(b.expires_at) <= now:
            raise BargainClosedError(b.code, Status.EXPIRED if b.status in rules.LIVE else b.status)
        res = await uow.session.execute(update(Bargain).where(
            Bargain.id == b.id, Bargain.status.in_(list(rules.LIVE)), Bargain.helps == b.helps,
            Bargain.expires_at > now).values(status=Status.ORDERED))
        if getattr(res, "rowcount", 0) == 1:
            break
    else:  # pragma: no cover
        raise BargainClosedError(str(bargain_id), "busy")
    taken = await uow.session.execute(update(BargainCampaign).where(
        BargainCampaign.tenant_id == tenant, BargainCampaign.id == b.campaign_id, BargainCampaign.stock >= 1)
        .values(stock=BargainCampaign.stock - 1))
    if getattr(taken, "rowcount", 0) != 1:
        raise BargainSoldOutError()
    order = await place_order(uow, tenant, member, [(b.sku_id, 1)], address_id=address_id, now=now,
                              timeout=min(timeout, max(_aware(b.expires_at) - now, timedelta(minutes=5))),
                              channel=channel, source=f"{SOURCE_PREFIX}{b.id}",
                              unit_prices={b.sku_id: b.price_fen})
    await uow.session.execute(update(Bargain).where(Bargain.id == b.id).values(order_id=order.id))
    uow.audit(tenant, f"member:{member}", "bargain.buy", f"bargain:{b.id}",
              after={"order_no": order.order_no, "price_fen": b.price_fen, "helps": b.helps})
    return order, True


def bargain_of_source(source: str) -> int | None:
    if not source.startswith(SOURCE_PREFIX):
        return None
    raw = source[len(SOURCE_PREFIX):]
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) <= 18 else None


async def _by_order(uow: UnitOfWork, tenant: int, order_id: int) -> Bargain | None:
    return (await uow.session.execute(select(Bargain).where(Bargain.tenant_id == tenant, Bargain.order_id == order_id)
                                      .execution_options(populate_existing=True))).scalar_one_or_none()


async def order_paid(uow: UnitOfWork, tenant: int, order_id: int) -> bool:
    """ordered → bought (once)."""
    b = await _by_order(uow, tenant, order_id)
    if b is None:
        return False
    res = await uow.session.execute(update(Bargain).where(
        Bargain.id == b.id, Bargain.order_id == order_id, Bargain.status == Status.ORDERED).values(status=Status.BOUGHT))
    return getattr(res, "rowcount", 0) == 1


async def order_cancelled(uow: UnitOfWork, tenant: int, order_id: int, *, now: datetime) -> bool:
    """The bargain's unpaid order was cancelled: its stock comes back and the bargain
    reopens at the price it had (or ends when its validity is over). Once."""
    b = await _by_order(uow, tenant, order_id)
    if b is None or b.status != Status.ORDERED:
        return False
    back = Status.EXPIRED if _aware(b.expires_at) <= now else (
        Status.REACHED if b.helps >= b.helps_needed else Status.OPEN)
    res = await uow.session.execute(update(Bargain).where(
        Bargain.id == b.id, Bargain.order_id == order_id, Bargain.status == Status.ORDERED)
        .values(status=back, order_id=None))
    if getattr(res, "rowcount", 0) != 1:
        return False
    await uow.session.execute(update(BargainCampaign).where(BargainCampaign.id == b.campaign_id)
                              .values(stock=BargainCampaign.stock + 1))
    uow.audit(tenant, "system", "bargain.order_cancelled", f"bargain:{b.id}",
              after={"order_id": order_id, "status": back})
    return True


async def expire_due(uows: UowFactory, *, now: datetime, batch: int = 200) -> int:
    """The sweeper: open or reached bargains past their validity → expired (a conditional
    move each, so workers running it at once expire each bargain once)."""
    done = 0
    async with uows() as uow:
        rows = (await uow.session.execute(select(Bargain.id, Bargain.tenant_id, Bargain.member_id, Bargain.price_fen)
                                          .where(Bargain.status.in_(list(rules.LIVE)), Bargain.expires_at <= now)
                                          .order_by(Bargain.expires_at).limit(batch))).all()
        for bid, tenant, member, price in rows:
            res = await uow.session.execute(update(Bargain).where(
                Bargain.id == bid, Bargain.status.in_(list(rules.LIVE)), Bargain.expires_at <= now)
                .values(status=Status.EXPIRED))
            if getattr(res, "rowcount", 0) == 1:
                done += 1
                uow.emit(BargainExpired(tenant_id=int(tenant), member_id=int(member), bargain_id=int(bid),
                                        price_fen=int(price)))
        await uow.commit()
    return done


async def stats(uow: UnitOfWork, tenant: int, campaign_id: int) -> dict[str, int]:
    rows = (await uow.session.execute(select(Bargain.status, func.count()).where(
        Bargain.tenant_id == tenant, Bargain.campaign_id == campaign_id).group_by(Bargain.status))).all()
    return {str(s): int(n) for s, n in rows}
