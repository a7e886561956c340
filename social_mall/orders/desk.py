"""Orders in batches: the ordinary order path under a crowd (social_mall/desk.py).

Sixty-four buyers on one SKU, one transaction each: every place_order waits on the SKU
row's lock for the one before it to commit, and spends ~7 statements, a pool connection
and the ORM's unit of work (identity map, flush, refresh) per order. Under a crowd the
wait grows with the queue and the order in which waiters get the lock is the database's,
not the buyers' (some wait seconds while later ones pass).

The desk queues the orders (FIFO) and writes the next lot in one transaction with
prebuilt Core statements (`place_many`), one statement per step whatever the lot's size:

  1. the ship-to addresses of the lot               SELECT … WHERE id IN (…)
  2. the SKUs and their products, locked            SELECT … FOR UPDATE OF skus (PostgreSQL)
  3. the tenant's order cap                         SELECT (one per tenant in the lot)
  4. the checks of place_order, in memory, in arrival order (stock handed out first come,
     first served against the locked rows; an order that can't have all its lines is
     refused whole with OutOfStockError, as place_order would)
  5. stock down for the lot, guarded in SQL         UPDATE skus … WHERE stock >= n
     (a guard that fails means someone else took stock the lock didn't cover:
     the lot is rolled back and its orders placed one by one through place_order)
  6. the orders                                     INSERT … RETURNING id, order_no
  7. their lines                                    INSERT (many rows)
  8. their order.placed outbox rows                 INSERT (uow.emit_many)

The desk covers the plain order, and `route` is the one place that says which that is:
  - a saved address, shipped by express (the core's, or a method keyed "express" that
    holds nothing when an order is placed: `placed` is Express's; its `quote` is asked
    in the desk's transaction for the fee and destination, as place_order asks it);
  - no coupon and no points (locking a coupon or spending points is place_order's): the
    promotions pipeline's other steps (member level, flash price, 满减) are quoted by
    `route` in the caller's unit of work and the desk writes that breakdown (order total,
    discount, the order_discounts row) after checking its lines against the locked prices;
  - no module unit pricer with something to say for this member (`pricing.unit.passive`:
    a price list of its own is never passive for its buyers; a pricer guarding a contended
    sale is, outside its own admitted write);
  - a unit of work made by a factory (the desk commits in its own transaction), on
    PostgreSQL (SQLite writes one transaction at a time: a caller holding its own open
    transaction would wait on the desk's commit, so the embedded default keeps place_order).
Anything else is placed by `place_order` in the caller's unit of work. What is checked and
written is what place_order checks and writes for such an order (same errors, same rows,
same event). A lot whose prices moved between `route`'s quote and the desk's lock is
placed one by one by place_order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update

from social_mall.catalog.visibility import hidden_products
from social_mall.desk import BatchFailed, Desk, desk_of
from social_mall.errors import (
    EmptyCartError,
    InvalidPriceError,
    MallError,
    NotFoundError,
    OffShelfError,
    OutOfStockError,
    PriceChangedError,
)
from social_mall.events import OrderPlaced
from social_mall.fulfilment import EXPRESS, Choice, Express, FulfilmentMethod
from social_mall.orders.entrance import entrance
from social_mall.orders.lots import (
    insert_orders,
    line_row,
    on_postgres,
    order_row,
    placed_event,
    placed_view,
    sku_name,
    sku_rows,
    take_stock,
)
from social_mall.orders.rules import MAX_QTY_PER_LINE, check_qty, check_total, shipping_fee
from social_mall.orders.service import cancel_order, load_order, max_order_fen, merchant_of, place_order
from social_mall.pricing.rules import Breakdown, PriceLine
from social_mall.pricing.service import NONE, PricingInput, promotions_on
from social_mall.pricing.service import quote as pricing_quote
from social_mall.pricing.unit import passive
from social_mall.views import AddressView, OrderView
from storage.bulk import any_of
from storage.loyalty_models import OrderDiscount
from storage.models import Address, Order
from storage.uow import UnitOfWork, UowFactory

DESK = "orders.place"
MAX_BATCH = 200

_DISCOUNTS = cast(Table, OrderDiscount.__table__)


@dataclass(frozen=True)
class PlaceRequest:
    tenant: int
    member_id: int
    items: tuple[tuple[int, int], ...]   # (sku id, qty), as place_order takes them
    address_id: int | None
    now: datetime
    timeout: timedelta
    channel: str = "mp"
    source: str = ""
    expect_total_fen: int | None = None  # the total the buyer was shown (PriceChangedError if not)
    # the channel account it came through (None: the primary): the requester's entrance
    account_id: int | None = field(default_factory=entrance)
    unit_prices: tuple[tuple[int, int], ...] = ()   # (sku id, fen): place_order's unit_prices
    pricing: PricingInput | None = None  # the buyer's choice (coupon none, points 0 on the desk)
    fulfilment: tuple[FulfilmentMethod, Choice] | None = None   # an express method (see `route`)
    breakdown: Breakdown | None = None   # the pipeline's quote for `pricing` (`route` fills it)
    idem_key: str = ""                   # the inbound message placing it: one order per message


# -- prebuilt statements --------------------------------------------------------------------

_ADDRESS_COLUMNS = select(Address.id, Address.member_id, Address.name, Address.phone, Address.detail,
                          Address.is_default)
_ADDRESSES = _ADDRESS_COLUMNS.where(Address.tenant_id == bindparam("tenant"),
                                    Address.id.in_(bindparam("ids", expanding=True)))
_PG_ADDRESSES = _ADDRESS_COLUMNS.where(Address.tenant_id == bindparam("tenant"), any_of(Address.id, "ids"))


@dataclass
class _Plan:
    req: PlaceRequest
    wanted: dict[int, int]
    ship: tuple[str, str, str]
    lines: list[dict[str, Any]]
    goods: int
    fee: int
    discount: int = 0
    method: str = EXPRESS
    account: tuple[int | None, int | None] = (None, None)   # channel account, pay merchant
    row: dict[str, Any] = field(default_factory=dict)        # the order as written (lots.order_row)

    @property
    def total(self) -> int:
        return self.goods + self.fee - self.discount


async def place_many(uow: UnitOfWork, tenant: int, reqs: Sequence[PlaceRequest]) -> list[OrderView | MallError]:
    """Place every order of the lot that may be placed, in arrival order, in the caller's
    transaction (uncommitted); the refused ones get the error place_order would raise.
    Raises BatchFailed when the lot can't be written as a whole (then roll back)."""
    s = uow.session
    address_ids = sorted({q.address_id for q in reqs if q.address_id is not None})
    addresses = _PG_ADDRESSES if on_postgres(uow) else _ADDRESSES
    book = {r.id: r for r in (await s.execute(addresses, {"tenant": tenant, "ids": address_ids})).all()} \
        if address_ids else {}
    skus = await sku_rows(uow, tenant, sorted({k for q in reqs for k, _ in q.items}), lock=True)
    cap = await max_order_fen(uow, tenant)
    merchants = {a: await merchant_of(uow, tenant, a) for a in {q.account_id for q in reqs}}
    left = {k: r.stock for k, r in skus.items()}
    out: list[_Plan | MallError] = []
    for q in reqs:
        try:
            plan = await _check(uow, q, book, skus, left, cap)
            plan.account = (q.account_id, merchants[q.account_id])
            out.append(plan)
        except MallError as exc:
            out.append(exc)
    plans = [p for p in out if isinstance(p, _Plan)]
    if plans:
        await _write(uow, tenant, plans, skus, left)
    return [placed_view(p.row, p.lines) if isinstance(p, _Plan) else p for p in out]


async def _check(uow: UnitOfWork, q: PlaceRequest, book: dict[int, Any], skus: dict[int, Any], left: dict[int, int],
                 cap: int) -> _Plan:
    """place_order's checks for a plain order, in its order; stock taken off `left` last."""
    wanted: dict[int, int] = {}
    for sku_id, qty in q.items:
        wanted[sku_id] = wanted.get(sku_id, 0) + qty
    if not wanted:
        raise EmptyCartError()
    for qty in wanted.values():
        check_qty(qty, MAX_QTY_PER_LINE)
    address = book.get(q.address_id) if q.address_id is not None else None
    if address is None or address.member_id != q.member_id:
        raise NotFoundError("address", q.address_id)
    for sku_id in sorted(wanted):
        row = skus.get(sku_id)
        if row is None:
            raise NotFoundError("sku", sku_id)
        if not (row.on_shelf and row.product_on_shelf):
            raise OffShelfError(sku_name(row))
    own = dict(q.unit_prices)
    lines = []
    priced: list[PriceLine] = []
    for sku_id in sorted(wanted):
        row, qty = skus[sku_id], wanted[sku_id]
        price = own.get(sku_id, row.price_fen)
        if price <= 0:
            raise InvalidPriceError(sku_id, price)
        lines.append(line_row(q.tenant, row, price, qty))
        priced.append(PriceLine(sku_id, row.product_id, row.category_id, price, qty))
    goods = sum(ln["line_fen"] for ln in lines)
    ship = (address.name, address.phone, address.detail)
    method = EXPRESS
    if q.fulfilment is None:
        fee = shipping_fee(goods)
    else:
        held = AddressView(address.id, address.name, address.phone, address.detail, address.is_default)
        dest = await q.fulfilment[0].quote(uow, q.tenant, q.member_id, priced, q.fulfilment[1], held, q.now)
        fee, ship, method = dest.fee_fen, (dest.name, dest.phone, dest.address), q.fulfilment[0].key
    b = q.breakdown
    if b is not None and (b.goods_fen != goods or b.shipping_fen != fee
                          or [(ln.sku_id, ln.base_fen) for ln in b.lines] != [(p.sku_id, p.base_fen) for p in priced]):
        raise BatchFailed("prices moved since the quote")   # place_order quotes them again, one by one
    discount = b.discount_fen if b is not None else 0
    total = check_total(goods + fee - discount, cap)
    if q.expect_total_fen is not None and total != q.expect_total_fen:
        raise PriceChangedError(q.expect_total_fen, total)
    for sku_id in sorted(wanted):   # all lines or none: first come, first served
        if left[sku_id] < wanted[sku_id]:
            raise OutOfStockError(sku_name(skus[sku_id]), left[sku_id])
    for sku_id, qty in wanted.items():
        left[sku_id] -= qty
    return _Plan(q, wanted, ship, lines, goods, fee, discount, method)


async def _write(uow: UnitOfWork, tenant: int, plans: list[_Plan], skus: dict[int, Any],
                 left: dict[int, int]) -> None:
    await take_stock(uow, tenant, {k: skus[k].stock - n for k, n in left.items()})
    for p in plans:
        q = p.req
        p.row = order_row(tenant, q.member_id, p.ship, p.goods, p.fee, p.discount, now=q.now, timeout=q.timeout,
                          channel=q.channel, source=q.source, account=p.account, fulfilment=p.method,
                          idem_key=q.idem_key)
    await insert_orders(uow, [(p.row, p.lines) for p in plans])
    # the pipeline's breakdown, as pricing.service.commit stores it (nothing with promotions off)
    discounts = [{"tenant_id": tenant, "order_id": p.row["id"], "member_id": p.req.member_id, "coupon_id": None,
                  "points_used": 0, "points_fen": 0, "discount_fen": b.discount_fen, "breakdown": b.to_json(),
                  "line_refunds": [0] * (len(b.lines) + 1), "created_at": p.req.now}
                 for p in plans if (b := p.req.breakdown) is not None]
    if discounts and promotions_on(uow):
        await uow.session.execute(_DISCOUNTS.insert(), discounts)
    await uow.emit_many([placed_event(p.row) for p in plans])


async def place_lot(uow: UnitOfWork, reqs: Sequence[PlaceRequest]) -> list[OrderView | MallError]:
    """A lot from any tenants, in arrival order, in the caller's transaction."""
    by_tenant: dict[int, list[int]] = defaultdict(list)
    for i, q in enumerate(reqs):
        by_tenant[q.tenant].append(i)
    results: list[OrderView | MallError | None] = [None] * len(reqs)
    for tenant, idx in by_tenant.items():
        for i, got in zip(idx, await place_many(uow, tenant, [reqs[i] for i in idx])):
            results[i] = got
    return results  # type: ignore[return-value]


async def place_alone(uow: UnitOfWork, q: PlaceRequest) -> OrderView:
    """One order in the caller's unit of work (uncommitted), through place_order; marked
    with the message that placed it (the unique key refuses a second one at commit)."""
    view = await place_order(uow, q.tenant, q.member_id, q.items, address_id=q.address_id, now=q.now,
                             timeout=q.timeout, channel=q.channel, source=q.source,
                             expect_total_fen=q.expect_total_fen, unit_prices=dict(q.unit_prices) or None,
                             pricing=q.pricing, fulfilment=q.fulfilment, account_id=q.account_id)
    if q.idem_key:
        await uow.session.execute(update(Order).where(Order.id == view.id).values(idem_key=q.idem_key))
    return view


async def forget_message(uow: UnitOfWork, tenant: int, order_id: int) -> None:
    """The order no longer answers for the message that placed it (its step was undone:
    the message may place anew)."""
    await uow.session.execute(update(Order).where(Order.tenant_id == tenant, Order.id == order_id)
                              .values(idem_key=None))


_PLACED_BY = select(Order.id).where(Order.tenant_id == bindparam("tenant"), Order.idem_key == bindparam("key"))


async def placed_by(uow: UnitOfWork, tenant: int, idem_key: str) -> OrderView | None:
    """The order the message `idem_key` placed already (committed), if any."""
    if not idem_key:
        return None
    order_id = await uow.session.scalar(_PLACED_BY, {"tenant": tenant, "key": idem_key})
    return None if order_id is None else await load_order(uow, tenant, int(order_id))


class OrderDesk(Desk[PlaceRequest, OrderView]):
    """One per deployment process (kept on the unit-of-work factory)."""

    def __init__(self, uows: UowFactory, max_batch: int = MAX_BATCH) -> None:
        super().__init__("orders", uows, place_lot, place_alone, max_batch=max_batch)


def _plain_method(method: FulfilmentMethod) -> bool:
    """Express to the saved address, holding nothing when the order is placed."""
    return method.key == EXPRESS and getattr(type(method), "placed", None) is Express.placed


async def route(uow: UnitOfWork, req: PlaceRequest) -> PlaceRequest | None:
    """The one rule for which orders the desk writes (see the module's docstring): `req`
    ready for the desk (the pipeline's quote filled in), or None: place_order writes it
    in the caller's unit of work. Reads only (in the caller's unit of work)."""
    if uow.factory is None or req.address_id is None:
        return None
    bind = uow.session.bind
    if bind is None or bind.dialect.name != "postgresql":
        # the embedded default (SQLite) writes one transaction at a time: the caller's open
        # one (its reads) would hold the desk's commit back; place_order writes it there
        return None
    if req.fulfilment is not None and not _plain_method(req.fulfilment[0]):
        return None
    if uow.pricers and not await passive(uow, req.tenant, req.member_id):
        return None
    hidden = await hidden_products(uow, req.tenant, req.member_id)
    if hidden:   # some products are kept from this member: place_order refuses those (RestrictedProductError)
        skus = await uow.catalog.skus_by_ids(req.tenant, [k for k, _ in req.items])
        if any(p.id in hidden for _, p in skus):
            return None
    p = req.pricing
    if p is None or req.breakdown is not None or not promotions_on(uow):
        return req
    if p.coupon_id != NONE or p.points != 0:   # a coupon locked, points spent: place_order's
        return None
    wanted: dict[int, int] = {}
    for sku_id, qty in req.items:
        wanted[sku_id] = wanted.get(sku_id, 0) + qty
    found = {s.id: (s, pr) for s, pr in await uow.catalog.skus_by_ids(req.tenant, list(wanted))}
    if set(found) != set(wanted):
        return None                              # place_order says which is missing
    own = dict(req.unit_prices)
    priced = [PriceLine(k, found[k][1].id, found[k][1].category_id, own.get(k, found[k][0].price_fen), n)
              for k, n in sorted(wanted.items())]
    goods = sum(ln.base_fen for ln in priced)
    if req.fulfilment is None:
        fee = shipping_fee(goods)
    else:
        a = await uow.members.address(req.tenant, req.member_id, req.address_id)
        if a is None:
            return None
        held = AddressView(a.id, a.name, a.phone, a.detail, a.is_default)
        fee = (await req.fulfilment[0].quote(uow, req.tenant, req.member_id, priced, req.fulfilment[1], held,
                                             req.now)).fee_fen
    q = await pricing_quote(uow, req.tenant, req.member_id, priced, fee, p, now=req.now)
    return replace(req, breakdown=q.breakdown)


async def place_routed(uow: UnitOfWork, req: PlaceRequest) -> tuple[OrderView, bool]:
    """`req` through this deployment's desk when `route` says the desk may write it
    (committed in the desk's own transaction: True), otherwise through place_order in the
    caller's unit of work (uncommitted: False). A request whose message placed an order
    already (a worker died after the desk's commit, before the caller's: the message came
    again) is answered with that order (True: it is committed)."""
    done = await placed_by(uow, req.tenant, req.idem_key)
    if done is not None:
        return done, True
    ready = await route(uow, req)
    desk = desk_of(uow, DESK, OrderDesk) if ready is not None else None
    if desk is None or ready is None:
        return await place_alone(uow, req), False
    view = await desk.submit(ready)
    uow.emitted_elsewhere(OrderPlaced(tenant_id=view.tenant_id, order_id=view.id, order_no=view.order_no,
                                      member_id=view.member_id, total_fen=view.total_fen, source=req.source))
    return view, True


async def place_standing(uow: UnitOfWork, req: PlaceRequest, *, reason: str = "checkout_undone") -> OrderView:
    """`place_routed` for a caller that goes on writing in its own unit of work and commits
    after (the chat's 确认, the app's POST /orders): an order the desk committed stands only
    if the caller's transaction does too. Rolled back (a lost race on the conversation, a
    failed commit), the order is cancelled in a transaction of its own (`reason`): its stock
    goes back, and the buyer's retry places it anew. Through place_order it is simply part
    of the caller's transaction."""
    order, by_desk = await place_routed(uow, req)
    if by_desk:
        uows, tenant, now = uow.factory, req.tenant, req.now

        async def undo() -> None:
            assert uows is not None   # the desk only writes for a unit of work made by a factory
            async with uows() as own:
                await cancel_order(own, tenant, order.id, reason=reason, now=now)
                await forget_message(own, tenant, order.id)   # the step runs again: it may place anew
                await own.commit()
        uow.after_rollback(undo)
    return order


async def place_plain(uow: UnitOfWork, req: PlaceRequest) -> OrderView:
    """A plain order (no pricing, no fulfilment method: the caller vouches) through this
    deployment's desk, committed in the desk's own transaction, for a caller holding no
    transaction of its own (the bench, tests; any backend). A unit of work made outside a
    factory, or a deployment with a module unit pricer, places it in the caller's unit of
    work, uncommitted, through place_order. Callers that may hold a transaction (the chat's
    checkout) use `place_routed`."""
    desk = desk_of(uow, DESK, OrderDesk) if not (uow.pricers or uow.visibility) else None
    if desk is None:
        return await place_alone(uow, req)
    return await desk.submit(req)
