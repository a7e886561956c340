"""Orders: place (reserving stock), read, cancel (restoring stock), ship, complete.

Every status change is one conditional UPDATE through `uow.orders.move`, so a repeat
call, a second worker or a retried job can never apply it twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from social_mall.catalog.visibility import check_buyable
from social_mall.errors import (
    AddressLockedError,
    MallError,
    EmptyCartError,
    IllegalTransitionError,
    InvalidPriceError,
    NotFoundError,
    NotShippableError,
    OffShelfError,
    OutOfStockError,
    PriceChangedError,
    ShippingChangedError,
)
from social_mall.events import OrderCancelled, OrderCompleted, OrderPlaced, OrderShipped
from social_mall.fulfilment import EXPRESS, EXPRESS_METHOD, Choice, FulfilmentMethod
from social_mall.orders.rules import (
    DEFAULT_MAX_ORDER_FEN,
    MAX_QTY_PER_LINE,
    OrderStatus,
    check_qty,
    check_total,
    new_order_no,
    shipping_fee,
)
from social_mall.members import service as members_service
from social_mall.members.rules import clean_address, mask_phone
from social_mall.orders.entrance import entrance
from social_mall.pricing import service as pricing_service
from social_mall.pricing.rules import ALL_STEPS, PriceLine
from social_mall.pricing.service import PricingInput
from social_mall.pricing.unit import UnitPrice, Wanted, check_lines, max_qty
from social_mall.pricing.unit import order_placed as tell_pricers
from social_mall.pricing.unit import unit_prices as module_unit_prices
from social_mall.views import AddressView, OrderLineView, OrderView, Page
from storage.channel_repos import ChannelRepo
from storage.models import Address, Order, OrderLine, Product, Sku
from storage.repos import AddressRow
from storage.uow import UnitOfWork

S = OrderStatus


async def merchant_of(uow: UnitOfWork, tenant: int, account_id: int | None) -> int | None:
    """The merchant an order placed through this account is paid to (None: the default)."""
    repo = ChannelRepo(uow.session)
    row = await (repo.get(tenant, account_id) if account_id is not None else repo.primary(tenant))
    return row.pay_account_id if row is not None else None


def order_view(o: Order, lines: Sequence[OrderLine]) -> OrderView:
    return OrderView(
        id=o.id, tenant_id=o.tenant_id, order_no=o.order_no, member_id=o.member_id, status=o.status,
        goods_fen=o.goods_fen, shipping_fen=o.shipping_fen, discount_fen=o.discount_fen,
        total_fen=o.total_fen, paid_fen=o.paid_fen, refunded_fen=o.refunded_fen,
        ship_name=o.ship_name, ship_phone=o.ship_phone, ship_address=o.ship_address,
        tracking_no=o.tracking_no, created_at=o.created_at, expires_at=o.expires_at, paid_at=o.paid_at,
        lines=tuple(
            OrderLineView(ln.sku_id, ln.title, ln.spec, ln.price_fen, ln.qty, ln.line_fen) for ln in lines
        ),
        fulfilment=o.fulfilment or EXPRESS,
        channel_account_id=o.channel_account_id or 0, pay_account_id=o.pay_account_id or 0,
    )


async def load_order(uow: UnitOfWork, tenant: int, order_id: int) -> OrderView:
    order = await uow.orders.get(tenant, order_id)
    if order is None:
        raise NotFoundError("order", order_id)
    return order_view(order, await uow.orders.lines(tenant, order_id))


async def find_order(
    uow: UnitOfWork, tenant: int, order_no: str, *, member_id: int | None = None
) -> OrderView:
    """An order by number; with `member_id`, only that member's (others read as not found)."""
    order = await uow.orders.by_no(tenant, order_no)
    if order is None or (member_id is not None and order.member_id != member_id):
        raise NotFoundError("order", order_no)
    return order_view(order, await uow.orders.lines(tenant, order.id))


async def ship_unpaid_order_to(
    uow: UnitOfWork, tenant: int, member_id: int, order_no: str, name: str, phone: str, detail: str, *,
    actor: str, now: datetime, express: FulfilmentMethod = EXPRESS_METHOD,
) -> OrderView:
    """The buyer picks another address for their order before paying it (the H5 pay page's
    WeChat address picker): it is saved to their address book, as the default, and copied
    onto the order with one conditional update, only while the order is unpaid.

    The total never changes here: `express` (the registered "express" method: the core's
    flat fee, or a module's shipping templates) quotes the new address, and a fee other
    than the order's, or a region it doesn't serve, raises ShippingChangedError, as does an
    order not sent by express (a pick-up). Another member's order reads as not found; a
    paid or closed one raises AddressLockedError; an invalid address InvalidAddressError:
    nothing is written then."""
    name, phone, detail = clean_address(name, phone, detail)
    order = await uow.orders.by_no(tenant, order_no)
    if order is None or order.member_id != member_id:
        raise NotFoundError("order", order_no)
    if order.status != S.PENDING_PAYMENT:
        raise AddressLockedError(order_no, order.status)
    if (order.fulfilment or EXPRESS) != EXPRESS:
        raise ShippingChangedError(order_no, order.shipping_fen, None, "not_express")
    rows = await uow.orders.lines(tenant, order.id)
    products = {s.id: p for s, p in await uow.catalog.skus_by_ids(tenant, [ln.sku_id for ln in rows])}
    priced = [PriceLine(ln.sku_id, ln.product_id, products[ln.sku_id].category_id if ln.sku_id in products else 0,
                        ln.price_fen, ln.qty) for ln in rows]
    try:
        dest = await express.quote(uow, tenant, member_id, priced, Choice(EXPRESS),
                                   AddressView(0, name, phone, detail, False), now)
    except MallError as exc:
        raise ShippingChangedError(order_no, order.shipping_fen, None, exc.code) from exc
    if dest.fee_fen != order.shipping_fen:
        raise ShippingChangedError(order_no, order.shipping_fen, dest.fee_fen, "fee")
    before: dict[str, object] = {"name": order.ship_name, "phone": mask_phone(order.ship_phone),
                                 "address": order.ship_address}
    if not await uow.orders.ship_to(tenant, order.id, name, phone, detail):
        now_row = await uow.orders.by_no(tenant, order_no)
        raise AddressLockedError(order_no, now_row.status if now_row is not None else order.status)
    await members_service.add_address(uow, tenant, member_id, name, phone, detail)
    uow.audit(tenant, actor, "order.ship_to", f"order:{order_no}", before=before,
              after={"name": name, "phone": mask_phone(phone), "address": detail})
    return await find_order(uow, tenant, order_no)


async def list_orders(
    uow: UnitOfWork, tenant: int, member_id: int, *, page: int = 1, per_page: int = 5
) -> Page[OrderView]:
    page = max(1, page)
    rows, total = await uow.orders.for_member(tenant, member_id, (page - 1) * per_page, per_page)
    views = [order_view(o, await uow.orders.lines(tenant, o.id)) for o in rows]
    return Page(tuple(views), total, page, per_page)


async def max_order_fen(uow: UnitOfWork, tenant: int) -> int:
    """The most one order of the tenant may cost (its `max_order_fen`, ¥1,000,000 by default)."""
    found = await uow.tenants.max_order_fen(tenant)
    return DEFAULT_MAX_ORDER_FEN if found is None else found


async def check_order_total(uow: UnitOfWork, tenant: int, total_fen: int) -> int:
    """`total_fen` if one order may cost that much in this tenant; OrderTooLargeError if not."""
    return check_total(total_fen, await max_order_fen(uow, tenant))


async def place_order(
    uow: UnitOfWork,
    tenant: int,
    member_id: int,
    items: Sequence[tuple[int, int]],
    *,
    address_id: int | None,
    now: datetime,
    timeout: timedelta,
    channel: str = "mp",
    source: str = "",
    from_cart: bool = False,
    unit_prices: Mapping[int, int] | None = None,
    pricing: PricingInput | None = None,
    expect_total_fen: int | None = None,
    fulfilment: tuple[FulfilmentMethod, Choice] | None = None,
    account_id: int | None = None,
) -> OrderView:
    """Reserve stock for every line and write the order, all in the caller's transaction.

    `unit_prices` (sku id → fen) lets a module set the price it sells at (a group price,
    say); otherwise a registered unit pricer's price for this member
    (social_mall/pricing/unit.py: a B2B price list; its refusals, e.g. below a minimum
    quantity, raise before anything is written), otherwise the SKU's own price. `source` records where the order came
    from ("groupbuy:team:12", "ref:…") for the modules that react to its events.

    With `pricing` (the buyer's coupon and points), the promotions pipeline
    (social_mall/pricing) prices the lines as computed here, unit_prices included: the
    order's discount_fen and total_fen come from it, the coupon is locked, the points are
    spent and the breakdown is stored (`pricing.service.breakdown(uow, tenant, order.id)`).

    The total is settled before anything is written: more than the tenant's cap
    (`max_order_fen`) raises OrderTooLargeError; with `expect_total_fen` (the total the buyer
    was shown and confirmed), any other total raises PriceChangedError. Both leave the
    caller's transaction as it was.

    With `fulfilment` (a method registered at checkout and the buyer's choice; see
    social_mall/fulfilment.py) the method quotes the fee and destination (the address is
    then optional: a pick-up needs none) and records what it holds for the order;
    without it the order ships by the core's express at the flat fee.

    `account_id` names the tenant's channel account the order came through (None: the
    request's entrance, see orders/entrance.py, which is the primary account when the edge
    set none); the order is then paid through the merchant that account names.

    On OutOfStockError the caller rolls back, which also returns what earlier lines took.
    """
    if account_id is None:
        account_id = entrance()
    wanted: dict[int, int] = {}
    for sku_id, qty in items:
        wanted[sku_id] = wanted.get(sku_id, 0) + qty
    if not wanted:
        raise EmptyCartError()
    most = await max_qty(uow, tenant, member_id) if uow.pricers else MAX_QTY_PER_LINE
    for qty in wanted.values():
        check_qty(qty, most)
    address = await uow.members.address(tenant, member_id, address_id) if address_id is not None else None
    if address is None and (address_id is not None or fulfilment is None):
        raise NotFoundError("address", address_id)
    found = {s.id: (s, p) for s, p in await uow.catalog.skus_by_ids(tenant, list(wanted))}
    for sku_id in sorted(wanted):
        if sku_id not in found:
            raise NotFoundError("sku", sku_id)
        sku, product = found[sku_id]
        if not (sku.on_shelf and product.on_shelf):
            raise OffShelfError(_name(sku, product))
    if uow.visibility:   # a product kept from this member (catalog/visibility.py): refused, nothing written
        await check_buyable(uow, tenant, member_id, [(found[k][1].id, _name(*found[k])) for k in sorted(wanted)])
    # a module's own price (pricing/unit.py) for lines the caller didn't price itself
    asked = [Wanted(k, found[k][1].id, found[k][0].price_fen, q) for k, q in sorted(wanted.items())
             if unit_prices is None or k not in unit_prices]
    modular: dict[int, UnitPrice] = {}
    if asked and uow.pricers:
        await check_lines(uow, tenant, member_id, asked, now)
        modular = await module_unit_prices(uow, tenant, member_id, asked, now)
    lines: list[OrderLine] = []
    priced: list[PriceLine] = []
    for sku_id in sorted(wanted):
        sku, product = found[sku_id]
        qty = wanted[sku_id]
        own = modular.get(sku_id)
        if unit_prices is not None and sku_id in unit_prices:
            price = unit_prices[sku_id]
        else:
            price = own.fen if own is not None else sku.price_fen
        if price <= 0:
            raise InvalidPriceError(sku_id, price)
        lines.append(order_line(tenant, sku, product, price, qty))
        priced.append(PriceLine(sku_id, product.id, product.category_id, price, qty,
                                admits=own.steps if own is not None else ALL_STEPS))
    goods = sum(line.line_fen for line in lines)
    method = EXPRESS
    if fulfilment is None:
        assert address is not None
        ship, ship_to = shipping_fee(goods), ShipTo(address.name, address.phone, address.detail)
    else:
        held = AddressView(address.id, address.name, address.phone, address.detail, address.is_default) \
            if address is not None else None
        dest = await fulfilment[0].quote(uow, tenant, member_id, priced, fulfilment[1], held, now)
        method, ship, ship_to = fulfilment[0].key, dest.fee_fen, ShipTo(dest.name, dest.phone, dest.address)
    discount = 0
    quoted = None
    if pricing is not None:
        quoted = (await pricing_service.quote(uow, tenant, member_id, priced, ship, pricing, now=now)).breakdown
        discount = quoted.discount_fen
    total = await check_order_total(uow, tenant, goods + ship - discount)
    if expect_total_fen is not None and total != expect_total_fen:
        raise PriceChangedError(expect_total_fen, total)
    for sku_id in sorted(wanted):  # a fixed order: two orders never wait on each other's rows
        if not await uow.catalog.reserve(tenant, sku_id, wanted[sku_id]):
            raise OutOfStockError(_name(*found[sku_id]), await uow.catalog.stock(tenant, sku_id))
    row = new_order(tenant, member_id, ship_to, goods, ship, discount, now=now, timeout=timeout, channel=channel,
                    source=source, fulfilment=method)
    row.channel_account_id, row.pay_account_id = account_id, await merchant_of(uow, tenant, account_id)
    order = await uow.orders.add(row, lines)
    if quoted is not None:
        await pricing_service.commit(uow, tenant, member_id, order.id, quoted, now=now)
    if from_cart:
        await uow.members.remove_cart_items(tenant, member_id, list(wanted))
    view = order_view(order, lines)
    if fulfilment is not None:
        await fulfilment[0].placed(uow, tenant, view, fulfilment[1], dest, now)
    if uow.pricers:   # a module counting the order against a limit may refuse it (rolls back)
        await tell_pricers(uow, tenant, view, now)
    uow.emit(order_placed(order))
    return view


def _name(sku: Sku, product: Product) -> str:
    return f"{product.title} {sku.spec}".strip()


# -- the rows of a new order: place_order and the batched group-buy join build them alike

def order_line(tenant: int, sku: Sku, product: Product, price: int, qty: int) -> OrderLine:
    return OrderLine(tenant_id=tenant, sku_id=sku.id, product_id=product.id, title=product.title, spec=sku.spec,
                     price_fen=price, qty=qty, line_fen=price * qty)


class ShipTo(NamedTuple):
    name: str
    phone: str
    detail: str


def new_order(tenant: int, member_id: int, address: Address | AddressRow | ShipTo, goods: int, ship: int,
              discount: int, *, now: datetime, timeout: timedelta, channel: str, source: str,
              fulfilment: str = EXPRESS) -> Order:
    """A pending-payment order shipping to `address` (copied: a later edit of the
    address book doesn't move a placed order)."""
    return Order(
        tenant_id=tenant, order_no=new_order_no(now), member_id=member_id, status=S.PENDING_PAYMENT,
        channel=channel, goods_fen=goods, shipping_fen=ship, discount_fen=discount,
        total_fen=goods + ship - discount, ship_name=address.name, ship_phone=address.phone,
        ship_address=address.detail, source=source, created_at=now, expires_at=now + timeout,
        fulfilment=fulfilment,
    )


def order_placed(order: Order) -> OrderPlaced:
    return OrderPlaced(tenant_id=order.tenant_id, order_id=order.id, order_no=order.order_no,
                       member_id=order.member_id, total_fen=order.total_fen, source=order.source)


async def _restock(uow: UnitOfWork, tenant: int, order_id: int) -> None:
    await restock_unshipped(uow, tenant, order_id)


async def restock_unshipped(uow: UnitOfWork, tenant: int, order_id: int) -> int:
    """Put every unit of an order that never shipped back into sellable stock, less those
    already put back (a partial refund before shipping): each unit once. Units put back."""
    back = 0
    for line in await uow.orders.lines(tenant, order_id):
        back += await _take_back(uow, tenant, line, line.qty - line.restocked_qty)
    return back


async def return_unshipped_units(uow: UnitOfWork, tenant: int, order_id: int, sku_id: int, qty: int) -> int:
    """Put up to `qty` units of `sku_id` of an order that will not ship them (a refund of
    part of an unshipped order) back into sellable stock, each unit once whoever asks
    (a later full refund or cancel restocks only the rest). Units put back."""
    back = 0
    for line in await uow.orders.lines(tenant, order_id):
        if line.sku_id == sku_id and back < qty:
            back += await _take_back(uow, tenant, line, min(qty - back, line.qty - line.restocked_qty))
    return back


async def _take_back(uow: UnitOfWork, tenant: int, line: OrderLine, qty: int) -> int:
    if qty <= 0 or not await uow.orders.take_back(tenant, line.id, qty):
        return 0
    await uow.catalog.restock(tenant, line.sku_id, qty)
    return qty


async def cancel_order(
    uow: UnitOfWork,
    tenant: int,
    order_id: int,
    *,
    reason: str,
    now: datetime,
    member_id: int | None = None,
) -> OrderView:
    """Cancel an unpaid order and put its stock back (exactly once). Idempotent."""
    order = await uow.orders.get(tenant, order_id)
    if order is None or (member_id is not None and order.member_id != member_id):
        raise NotFoundError("order", order_id)
    if await uow.orders.move(tenant, order_id, S.PENDING_PAYMENT, S.CANCELLED, closed_at=now, cancel_reason=reason):
        await _restock(uow, tenant, order_id)
        uow.emit(
            OrderCancelled(
                tenant_id=tenant, order_id=order_id, order_no=order.order_no,
                member_id=order.member_id, reason=reason,
            )
        )
        return await load_order(uow, tenant, order_id)
    current = await load_order(uow, tenant, order_id)
    if current.status == S.CANCELLED:
        return current
    raise IllegalTransitionError(order.order_no, current.status, S.CANCELLED)


async def ship_order(
    uow: UnitOfWork, tenant: int, order_id: int, *, tracking_no: str, now: datetime
) -> OrderView:
    order = await load_order(uow, tenant, order_id)
    if order.fulfilment != EXPRESS:  # picked up or delivered by the method's own steps
        raise NotShippableError(order.order_no, order.fulfilment)
    if not await uow.orders.move(tenant, order_id, S.PAID, S.SHIPPED, shipped_at=now, tracking_no=tracking_no):
        raise IllegalTransitionError(order.order_no, order.status, S.SHIPPED)
    uow.emit(
        OrderShipped(
            tenant_id=tenant, order_id=order_id, order_no=order.order_no,
            member_id=order.member_id, tracking_no=tracking_no,
        )
    )
    return await load_order(uow, tenant, order_id)


async def complete_order(uow: UnitOfWork, tenant: int, order_id: int, *, now: datetime) -> OrderView:
    """Shipped → completed (the buyer confirmed receipt, or the sweeper did). Idempotent."""
    order = await load_order(uow, tenant, order_id)
    if await uow.orders.move(tenant, order_id, S.SHIPPED, S.COMPLETED, completed_at=now):
        uow.emit(
            OrderCompleted(
                tenant_id=tenant, order_id=order_id, order_no=order.order_no,
                member_id=order.member_id, paid_fen=order.paid_fen,
            )
        )
        return await load_order(uow, tenant, order_id)
    if order.status == S.COMPLETED:
        return order
    raise IllegalTransitionError(order.order_no, order.status, S.COMPLETED)


async def hand_over(uow: UnitOfWork, tenant: int, order_id: int, *, now: datetime) -> bool:
    """Paid → completed for an order that never ships by express: the buyer got it in
    person (a pick-up verified, a rider's delivery, a service rendered). One conditional
    UPDATE: True for the call that moved it (that one emits order.completed)."""
    order = await load_order(uow, tenant, order_id)
    if order.fulfilment == EXPRESS:
        raise NotShippableError(order.order_no, order.fulfilment)
    if not await uow.orders.move(tenant, order_id, S.PAID, S.COMPLETED, completed_at=now):
        return False
    uow.emit(
        OrderCompleted(
            tenant_id=tenant, order_id=order_id, order_no=order.order_no,
            member_id=order.member_id, paid_fen=order.paid_fen,
        )
    )
    return True


async def expire_unpaid(uow: UnitOfWork, tenant: int, order_id: int, *, now: datetime) -> bool:
    """The sweeper's step: cancel one unpaid order past its deadline. False if someone else did."""
    order = await uow.orders.get(tenant, order_id)
    if order is None or order.status != S.PENDING_PAYMENT or order.expires_at > now:
        return False
    if not await uow.orders.move(tenant, order_id, S.PENDING_PAYMENT, S.CANCELLED, closed_at=now, cancel_reason="timeout"):
        return False
    await _restock(uow, tenant, order_id)
    uow.emit(
        OrderCancelled(
            tenant_id=tenant, order_id=order_id, order_no=order.order_no,
            member_id=order.member_id, reason="timeout",
        )
    )
    return True
