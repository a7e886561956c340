"""Sessions, items and the database's side of a seckill order (the only file with SQL).

The database is the truth: `guard` (run inside the order's transaction, by the pricer's
`placed`) raises the item's `sold` with one conditional UPDATE (`sold + n <= stock`) and
the member's claim with one conditional upsert (`qty + n <= limit`), so neither the stock
nor the limit can be passed whatever the admission step in front of it said (two parallel
orders of one member: the second waits on the claim row and finds it full). `release`
gives both back once (a conditional status move on `seckill_orders`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from social_mall.admission import Held, PoolTruth, ms
from social_mall.errors import NotFoundError
from social_mall_seckill.errors import InvalidSessionError, OverLimitError, SoldOutError
from social_mall_seckill.models import (
    SeckillClaim, SeckillItem, SeckillOrder, SeckillReminder, SeckillSession, SeckillSettings,
)
from social_mall_seckill.rules import MAX_PAY_MINUTES, PAY_GRACE, Phase, phase
from storage.models import Member, Product, Sku, utcnow
from storage.uow import UnitOfWork

PLACED, PAID, RELEASED = "placed", "paid", "released"


@dataclass(frozen=True)
class ItemView:
    id: int
    session_id: int
    product_id: int
    sku_id: int
    title: str
    price_fen: int
    retail_fen: int
    stock: int
    sold: int
    limit: int

    @property
    def left(self) -> int:
        return max(0, self.stock - self.sold)


@dataclass(frozen=True)
class SessionView:
    id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    pay_minutes: int
    enabled: bool
    items: tuple[ItemView, ...] = ()

    def phase(self, now: datetime) -> Phase:
        return phase(self.starts_at, self.ends_at, now)


@dataclass(frozen=True)
class Settings:
    new_member_minutes: int = 0
    attempts_per_minute: int = 20
    announce: bool = True


def _session(s: SeckillSession, items: Sequence[ItemView] = ()) -> SessionView:
    return SessionView(s.id, s.title, s.starts_at, s.ends_at, s.pay_minutes, s.enabled, tuple(items))


async def _items(uow: UnitOfWork, tenant: int, session_ids: Sequence[int]) -> dict[int, list[ItemView]]:
    if not session_ids:
        return {}
    rows = (await uow.session.execute(
        select(SeckillItem, Product.title, Sku.spec, Sku.price_fen)
        .join(Sku, and_(Sku.id == SeckillItem.sku_id, Sku.tenant_id == SeckillItem.tenant_id))
        .join(Product, Product.id == SeckillItem.product_id)
        .where(SeckillItem.tenant_id == tenant, SeckillItem.session_id.in_(session_ids))
        .order_by(SeckillItem.id)
        .execution_options(populate_existing=True))).all()
    out: dict[int, list[ItemView]] = {}
    for it, title, spec, retail in rows:
        out.setdefault(it.session_id, []).append(ItemView(
            it.id, it.session_id, it.product_id, it.sku_id, f"{title} {spec}".strip(), it.price_fen, retail,
            it.stock, it.sold, it.limit_per_member))
    return out


async def board(uow: UnitOfWork, tenant: int, now: datetime, *, upcoming: int = 2) -> list[SessionView]:
    """The live session(s) and the next `upcoming` ones, soonest first, with their items."""
    rows = list((await uow.session.scalars(
        select(SeckillSession).where(SeckillSession.tenant_id == tenant, SeckillSession.enabled.is_(True),
                                     SeckillSession.ends_at > now)
        .order_by(SeckillSession.starts_at, SeckillSession.id).limit(upcoming + 3))).all())
    live = [s for s in rows if s.starts_at <= now]
    soon = [s for s in rows if s.starts_at > now][:upcoming]
    chosen = live + soon
    items = await _items(uow, tenant, [s.id for s in chosen])
    return [_session(s, items.get(s.id, ())) for s in chosen]


async def sessions(uow: UnitOfWork, tenant: int, *, limit: int = 50) -> list[SessionView]:
    """Every session, newest start first (the console)."""
    rows = list((await uow.session.scalars(
        select(SeckillSession).where(SeckillSession.tenant_id == tenant)
        .order_by(SeckillSession.starts_at.desc(), SeckillSession.id.desc()).limit(limit))).all())
    items = await _items(uow, tenant, [s.id for s in rows])
    return [_session(s, items.get(s.id, ())) for s in rows]


async def session(uow: UnitOfWork, tenant: int, session_id: int) -> SessionView:
    s = await uow.session.scalar(select(SeckillSession).where(
        SeckillSession.tenant_id == tenant, SeckillSession.id == session_id)
        .execution_options(populate_existing=True))
    if s is None:
        raise NotFoundError("seckill_session", session_id)
    return _session(s, (await _items(uow, tenant, [s.id])).get(s.id, ()))


async def item(uow: UnitOfWork, tenant: int, item_id: int) -> tuple[SessionView, ItemView]:
    session_id = await uow.session.scalar(select(SeckillItem.session_id).where(
        SeckillItem.tenant_id == tenant, SeckillItem.id == item_id))
    if session_id is None:
        raise NotFoundError("seckill_item", item_id)
    s = await session(uow, tenant, session_id)
    return s, next(i for i in s.items if i.id == item_id)


# -- the database's side of an order ---------------------------------------------------------

def _insert(uow: UnitOfWork):  # type: ignore[no-untyped-def]
    return pg_insert if uow.session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def guard(uow: UnitOfWork, tenant: int, member: int, item_id: int, qty: int, *, order_id: int, token: str,
                pay_by: datetime, title: str) -> None:
    """Count the order against the item's stock and the member's limit, or raise (the
    caller's transaction then rolls the whole order back)."""
    took = await uow.session.execute(
        update(SeckillItem).where(SeckillItem.tenant_id == tenant, SeckillItem.id == item_id,
                                  SeckillItem.sold + qty <= SeckillItem.stock)
        .values(sold=SeckillItem.sold + qty).returning(SeckillItem.limit_per_member))
    limit = took.scalar()
    if limit is None:
        raise SoldOutError(title)
    ins = _insert(uow)(SeckillClaim).values(tenant_id=tenant, item_id=item_id, member_id=member, qty=qty)
    claimed = await uow.session.execute(ins.on_conflict_do_update(
        index_elements=[SeckillClaim.item_id, SeckillClaim.member_id],
        set_={"qty": SeckillClaim.qty + ins.excluded.qty},
        where=SeckillClaim.qty + ins.excluded.qty <= limit).returning(SeckillClaim.id))
    if qty > limit or claimed.scalar() is None:
        raise OverLimitError(title, limit)
    uow.session.add(SeckillOrder(tenant_id=tenant, item_id=item_id, member_id=member, order_id=order_id, qty=qty,
                                 token=token, status=PLACED, pay_by=pay_by))
    await uow.session.flush()


@dataclass(frozen=True)
class Won:
    """An admitted request's order, written by the lot (`guard_many` counts it)."""

    member: int
    item_id: int
    qty: int
    order_id: int
    token: str
    pay_by: datetime


async def guard_many(uow: UnitOfWork, tenant: int, won: Sequence[Won]) -> bool:
    """`guard` for a lot of orders written in the caller's transaction, a few statements
    whatever its size: per item one conditional UPDATE of `sold` and one conditional upsert
    of the lot's claims, then one INSERT of the seckill_orders rows. False (the caller
    rolls the lot back and writes each order alone through `guard`) when the database
    refuses any of them: stock or a member's limit reached, a member twice in the lot."""
    s = uow.session
    by_item: dict[int, list[Won]] = {}
    for w in won:
        by_item.setdefault(w.item_id, []).append(w)
    for item_id, ws in sorted(by_item.items()):
        members = [w.member for w in ws]
        if len(set(members)) != len(members):
            return False
        n = sum(w.qty for w in ws)
        limit = (await s.execute(
            update(SeckillItem).where(SeckillItem.tenant_id == tenant, SeckillItem.id == item_id,
                                      SeckillItem.sold + n <= SeckillItem.stock)
            .values(sold=SeckillItem.sold + n).returning(SeckillItem.limit_per_member))).scalar()
        if limit is None or any(w.qty > limit for w in ws):
            return False
        ins = _insert(uow)(SeckillClaim).values(
            [{"tenant_id": tenant, "item_id": item_id, "member_id": w.member, "qty": w.qty} for w in ws])
        claimed = (await s.execute(ins.on_conflict_do_update(
            index_elements=[SeckillClaim.item_id, SeckillClaim.member_id],
            set_={"qty": SeckillClaim.qty + ins.excluded.qty},
            where=SeckillClaim.qty + ins.excluded.qty <= limit).returning(SeckillClaim.id))).all()
        if len(claimed) != len(ws):
            return False
    await s.execute(insert(SeckillOrder.__table__), [  # type: ignore[arg-type]
        {"tenant_id": tenant, "item_id": w.item_id, "member_id": w.member, "order_id": w.order_id, "qty": w.qty,
         "token": w.token, "status": PLACED, "pay_by": w.pay_by, "created_at": utcnow()} for w in won])
    return True


@dataclass(frozen=True)
class Taken:
    item_id: int
    member_id: int
    qty: int
    token: str
    pay_by: datetime


async def _move(uow: UnitOfWork, tenant: int, order_id: int, src: str, dst: str) -> Taken | None:
    row = (await uow.session.execute(
        update(SeckillOrder).where(SeckillOrder.tenant_id == tenant, SeckillOrder.order_id == order_id,
                                   SeckillOrder.status == src)
        .values(status=dst)
        .returning(SeckillOrder.item_id, SeckillOrder.member_id, SeckillOrder.qty, SeckillOrder.token,
                   SeckillOrder.pay_by))).first()
    return None if row is None else Taken(*row)


async def release(uow: UnitOfWork, tenant: int, order_id: int) -> Taken | None:
    """A cancelled order gives its stock and claim back (once); None when it is no
    seckill order or was given back already."""
    t = await _move(uow, tenant, order_id, PLACED, RELEASED)
    if t is None:
        return None
    await uow.session.execute(update(SeckillItem).where(SeckillItem.tenant_id == tenant, SeckillItem.id == t.item_id)
                              .values(sold=SeckillItem.sold - t.qty))
    await uow.session.execute(update(SeckillClaim).where(
        SeckillClaim.tenant_id == tenant, SeckillClaim.item_id == t.item_id, SeckillClaim.member_id == t.member_id)
        .values(qty=SeckillClaim.qty - t.qty))
    return t


async def mark_paid(uow: UnitOfWork, tenant: int, order_id: int) -> Taken | None:
    return await _move(uow, tenant, order_id, PLACED, PAID)


async def unpaid_due(uow: UnitOfWork, now: datetime, limit: int = 200) -> list[tuple[int, int]]:
    """(tenant, order id) of seckill orders still placed past their payment deadline."""
    rows = (await uow.session.execute(
        select(SeckillOrder.tenant_id, SeckillOrder.order_id)
        .where(SeckillOrder.status == PLACED, SeckillOrder.pay_by <= now)
        .order_by(SeckillOrder.pay_by).limit(limit))).all()
    return [(t, o) for t, o in rows]


async def truth(uow: UnitOfWork, tenant: int, item_id: int) -> PoolTruth:
    """What the database says of an item's pool: the stock left, the limit, each member's
    claim, and the live orders' tokens (unpaid: held until the core's deadline; paid: for good)."""
    it = await uow.session.scalar(select(SeckillItem).where(SeckillItem.tenant_id == tenant,
                                                            SeckillItem.id == item_id)
                                  .execution_options(populate_existing=True))
    if it is None:
        raise NotFoundError("seckill_item", item_id)
    claims = (await uow.session.execute(select(SeckillClaim.member_id, SeckillClaim.qty).where(
        SeckillClaim.tenant_id == tenant, SeckillClaim.item_id == item_id, SeckillClaim.qty > 0))).all()
    live = (await uow.session.execute(select(
        SeckillOrder.token, SeckillOrder.member_id, SeckillOrder.qty, SeckillOrder.status, SeckillOrder.pay_by)
        .where(SeckillOrder.tenant_id == tenant, SeckillOrder.item_id == item_id,
               SeckillOrder.status.in_((PLACED, PAID))))).all()
    held = {tok: Held(m, q, "", None if st == PAID else ms(by + PAY_GRACE)) for tok, m, q, st, by in live}
    return PoolTruth(it.stock - it.sold, it.limit_per_member, {m: q for m, q in claims}, held)


async def counts(uow: UnitOfWork, tenant: int, item_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """item → (paid, awaiting payment) quantities (the console's 已售 / 待支付)."""
    if not item_ids:
        return {}
    rows = (await uow.session.execute(
        select(SeckillOrder.item_id, SeckillOrder.status, func.sum(SeckillOrder.qty))
        .where(SeckillOrder.tenant_id == tenant, SeckillOrder.item_id.in_(item_ids),
               SeckillOrder.status.in_((PLACED, PAID)))
        .group_by(SeckillOrder.item_id, SeckillOrder.status))).all()
    out: dict[int, tuple[int, int]] = {}
    for item_id, status, n in rows:
        paid, placed = out.get(item_id, (0, 0))
        out[item_id] = (paid + int(n), placed) if status == PAID else (paid, placed + int(n))
    return out


async def selling(uow: UnitOfWork, tenant: int, sku_id: int, now: datetime) -> bool:
    """Is an enabled session selling this SKU now? (the core's price hold: automatic price
    rules may not raise the 原价 a running seckill is advertised against)"""
    stmt = (select(SeckillItem.id).join(SeckillSession, SeckillSession.id == SeckillItem.session_id)
            .where(SeckillItem.tenant_id == tenant, SeckillItem.sku_id == sku_id, SeckillSession.tenant_id == tenant,
                   SeckillSession.enabled.is_(True), SeckillSession.starts_at <= now, SeckillSession.ends_at > now)
            .limit(1))
    return await uow.session.scalar(stmt) is not None


async def member_joined(uow: UnitOfWork, tenant: int, member: int) -> datetime | None:
    return await uow.session.scalar(select(Member.created_at).where(Member.tenant_id == tenant, Member.id == member))


# -- reminders and starts ------------------------------------------------------------------

async def remind(uow: UnitOfWork, tenant: int, session_id: int, member: int, now: datetime) -> bool:
    """Subscribe `member` to the session's start (True: new; False: already subscribed)."""
    ins = _insert(uow)(SeckillReminder).values(tenant_id=tenant, session_id=session_id, member_id=member,
                                               created_at=now)
    done = await uow.session.execute(ins.on_conflict_do_nothing(
        index_elements=[SeckillReminder.session_id, SeckillReminder.member_id]).returning(SeckillReminder.id))
    return done.scalar() is not None


async def start_due(uow: UnitOfWork, now: datetime, limit: int = 20) -> list[tuple[int, int]]:
    """Claim the sessions that have started and were not started yet (one conditional
    UPDATE each, so two workers start a session once): (tenant, session id)."""
    due = (await uow.session.execute(
        select(SeckillSession.tenant_id, SeckillSession.id)
        .where(SeckillSession.started_at.is_(None), SeckillSession.enabled.is_(True),
               SeckillSession.starts_at <= now, SeckillSession.ends_at > now)
        .limit(limit))).all()
    claimed: list[tuple[int, int]] = []
    for tenant, sid in due:
        done = await uow.session.execute(update(SeckillSession).where(
            SeckillSession.id == sid, SeckillSession.started_at.is_(None)).values(started_at=now))
        if done.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append((tenant, sid))
    return claimed


async def reminded(uow: UnitOfWork, tenant: int, session_id: int) -> list[int]:
    rows = await uow.session.scalars(select(SeckillReminder.member_id).where(
        SeckillReminder.tenant_id == tenant, SeckillReminder.session_id == session_id)
        .order_by(SeckillReminder.id))
    return list(rows)


# -- settings and the console ----------------------------------------------------------------

async def settings(uow: UnitOfWork, tenant: int) -> Settings:
    row = await uow.session.get(SeckillSettings, tenant, populate_existing=True)
    if row is None:
        return Settings()
    return Settings(row.new_member_minutes, row.attempts_per_minute, row.announce)


async def save_settings(uow: UnitOfWork, tenant: int, s: Settings) -> None:
    if not (0 <= s.new_member_minutes <= 10080 and 1 <= s.attempts_per_minute <= 600):
        raise InvalidSessionError("新用户限制 0–10080 分钟，每分钟次数 1–600")
    row = await uow.session.get(SeckillSettings, tenant)
    if row is None:
        uow.session.add(SeckillSettings(tenant_id=tenant, new_member_minutes=s.new_member_minutes,
                                        attempts_per_minute=s.attempts_per_minute, announce=s.announce))
    else:
        row.new_member_minutes, row.attempts_per_minute, row.announce = \
            s.new_member_minutes, s.attempts_per_minute, s.announce
    await uow.session.flush()


def _check_session(title: str, starts_at: datetime, ends_at: datetime, pay_minutes: int) -> str:
    title = title.strip()
    if not 0 < len(title) <= 40:
        raise InvalidSessionError("场次名称 1–40 字")
    if ends_at <= starts_at:
        raise InvalidSessionError("结束时间须晚于开始时间")
    if not 1 <= pay_minutes <= MAX_PAY_MINUTES:
        raise InvalidSessionError(f"支付时限 1–{MAX_PAY_MINUTES} 分钟")
    return title


async def create_session(uow: UnitOfWork, tenant: int, title: str, starts_at: datetime, ends_at: datetime,
                         pay_minutes: int, now: datetime) -> int:
    row = SeckillSession(tenant_id=tenant, title=_check_session(title, starts_at, ends_at, pay_minutes),
                         starts_at=starts_at, ends_at=ends_at, pay_minutes=pay_minutes, enabled=True, created_at=now)
    uow.session.add(row)
    await uow.session.flush()
    return row.id


async def edit_session(uow: UnitOfWork, tenant: int, session_id: int, title: str, starts_at: datetime,
                       ends_at: datetime, pay_minutes: int, enabled: bool) -> None:
    title = _check_session(title, starts_at, ends_at, pay_minutes)
    done = await uow.session.execute(update(SeckillSession).where(
        SeckillSession.tenant_id == tenant, SeckillSession.id == session_id)
        .values(title=title, starts_at=starts_at, ends_at=ends_at, pay_minutes=pay_minutes, enabled=enabled))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFoundError("seckill_session", session_id)


async def add_item(uow: UnitOfWork, tenant: int, session_id: int, sku_id: int, price_fen: int, stock: int,
                   limit: int) -> int:
    await session(uow, tenant, session_id)
    found = await uow.catalog.skus_by_ids(tenant, [sku_id])
    if not found:
        raise InvalidSessionError(f"没有编号 {sku_id} 的规格")
    sku, product = found[0]
    if not (0 < price_fen < sku.price_fen):
        raise InvalidSessionError("秒杀价须低于原价且大于 0")
    if not (1 <= stock <= 1_000_000 and 1 <= limit <= 99):
        raise InvalidSessionError("秒杀库存 1–1000000，每人限购 1–99")
    dup = await uow.session.scalar(select(SeckillItem.id).where(SeckillItem.session_id == session_id,
                                                                SeckillItem.sku_id == sku_id))
    if dup is not None:
        raise InvalidSessionError("这个规格已在本场次")
    row = SeckillItem(tenant_id=tenant, session_id=session_id, product_id=product.id, sku_id=sku.id,
                      price_fen=price_fen, stock=stock, sold=0, limit_per_member=limit)
    uow.session.add(row)
    await uow.session.flush()
    return row.id


async def edit_item(uow: UnitOfWork, tenant: int, item_id: int, price_fen: int, stock: int, limit: int) -> None:
    """Change an item's price, stock (never below what is sold) and limit. The caller drops
    the item's admission pool afterwards so it is rebuilt from here."""
    if not (price_fen > 0 and 1 <= stock <= 1_000_000 and 1 <= limit <= 99):
        raise InvalidSessionError("秒杀价大于 0，库存 1–1000000，每人限购 1–99")
    done = await uow.session.execute(update(SeckillItem).where(
        SeckillItem.tenant_id == tenant, SeckillItem.id == item_id, SeckillItem.sold <= stock)
        .values(price_fen=price_fen, stock=stock, limit_per_member=limit))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        await item(uow, tenant, item_id)  # not found raises
        raise InvalidSessionError("库存不能少于已售出的数量")


async def live_items(uow: UnitOfWork, now: datetime) -> list[tuple[int, int]]:
    """(tenant, item id) of every item in a session running now."""
    rows = (await uow.session.execute(
        select(SeckillItem.tenant_id, SeckillItem.id)
        .join(SeckillSession, SeckillSession.id == SeckillItem.session_id)
        .where(SeckillSession.starts_at <= now, SeckillSession.ends_at > now))).all()
    return [(t, i) for t, i in rows]


async def pay_minutes_of(uow: UnitOfWork, tenant: int, order_id: int) -> int | None:
    """The payment window of the session a seckill order was placed in."""
    return await uow.session.scalar(
        select(SeckillSession.pay_minutes)
        .join(SeckillItem, SeckillItem.session_id == SeckillSession.id)
        .join(SeckillOrder, SeckillOrder.item_id == SeckillItem.id)
        .where(SeckillOrder.tenant_id == tenant, SeckillOrder.order_id == order_id))
