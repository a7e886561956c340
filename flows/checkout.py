"""Checkout: from the cart (`结算`) or one SKU (a SKU picked on its card) straight to the
summary: lines, discounts, shipping, total and the address the order ships to. A
returning customer's default address (the last one used) is pre-selected; a new one sees
the lines and total and sends the whole address in one message (「张三 13800138000 上海市
浦东新区世纪大道100号」, any order: social_mall/members/address_parse.py), shown back in
the summary, so `确认` confirms both. What the parser can't find is asked for alone
(name → phone → detail, only the missing ones).

From the summary: `确认` places the order and answers with its number, total and pay link,
at the total shown: if prices changed since (the total differs), nothing is placed and
the new summary is shown to confirm again. A total over the tenant's cap on one order ends
the checkout with a clear answer. 「x3」 changes the quantity (re-priced at once), 「加购」
puts the SKU in the cart instead (back to the listing), 「换地址」 lists the saved addresses
(a number picks one, or a new one is typed), 「返回」 goes back one step (to the product
card, or the cart), 「取消」 leaves.

The summary runs the promotions pipeline (social_mall/pricing): it proposes the best
applicable coupon and shows each discount line; 「不用券」 / 「用券」 and 「用积分 N」 /
「用积分」 (as many as allowed) / 「不用积分」 price it again. `确认` places the order with
exactly the coupon and points shown.

A typed address is saved to the member's address book at `确认` (with the order), not
before: a misread one never lands there. The address an order is placed with becomes the
member's default, so the next checkout pre-selects it.

Fulfilment: when modules offer more methods than express for these lines (store pick-up,
same-city delivery…; see social_mall/fulfilment.py), checkout first lists them and the
pick's `begin` asks its own questions, usually in the method's own flow, which hands back
with `confirm_with(...)`; the summary shows the method's fee and destination, and `确认`
places the order with that method. With express alone nothing of this shows.

State data: src ("cart" | "buy" | "list"), product/sku/qty for "buy", lines (flat sku, qty
pairs) for "list" (several SKUs at once: `begin({"src": "list", "lines": [...]})`, e.g. a
module's quick order) and the listing the buyer came
from (l_cat, l_q, l_page, l_pages, l_items: flows/catalog.py), methods (the keys listed),
ful (the method picked; none: express), f_* (the method's details: store, slot…), address
(a saved address id) or name/phone/detail (a typed address not saved yet),
a_name/a_phone/a_detail (the parts of an address typed field by field), addrs (listed
address ids),
items (flat sku, qty pairs confirmed), coupon (the coupon id shown, 0: none), points (the
points shown), shown_total (the total shown, in fen: only compared at 确认, never charged).
Menu CLICK key: CHECKOUT.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from flows import cart, catalog, orders
from flows.catalog import AddToCart, ShowProduct, load_sku
from flows.engine import (
    CheckoutMethod, Ctx, Data, Flow, Intent, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn, Value, num,
    pairs, text,
)
from flows.home import expired
from social_mall import activity
from social_mall.errors import (
    EmptyCartError,
    InvalidAddressError,
    NoFulfilmentError,
    NotFoundError,
    OffShelfError,
    OutOfStockError,
    OrderTooLargeError,
    PriceChangedError,
)
from social_mall.fulfilment import Choice, Detail, Express
from social_mall.members.address_parse import DETAIL_MAX, DETAIL_MIN, parse_address
from social_mall.members.rules import PHONE, clean_address
from social_mall.members.service import add_address, list_addresses, use_address, view_cart
from social_mall.orders.rules import check_qty
from social_mall.orders.desk import PlaceRequest, place_alone, place_standing  # noqa
from social_mall.orders.service import check_order_total
from social_mall.payments.methods import offers as payment_offers
from social_mall.pricing import service as pricing
from social_mall.pricing.rules import ALL_STEPS
from social_mall.pricing.rules import Step as PromoStep
from social_mall.pricing.service import AUTO, NONE, PricingInput
from social_mall.catalog.visibility import check_buyable
from social_mall.pricing.unit import Wanted, check_lines, max_qty, unit_prices
from social_mall.views import AddressView

NAME = "checkout"
MAX_NAME = 20


class St(StrEnum):
    IDLE = "idle"
    METHOD = "method"       # fulfilment methods listed: a number
    CONFIRM = "confirm"     # the summary: 确认 / x3 / 加购 / 换地址 / coupons, points
    NEW = "new_address"     # no address yet (or 新地址): the whole address in one message
    ADDRESS = "address"     # 换地址: saved addresses listed: a number, or a new address typed
    NAME = "name"           # what the pasted address lacked, one field at a time
    PHONE = "phone"
    DETAIL = "detail"


class Do(StrEnum):
    CHECKOUT = "checkout.start"
    NEW_ADDRESS = "checkout.new_address"
    CHANGE_ADDRESS = "checkout.change_address"
    ADD_CART = "checkout.add_cart"
    NO_COUPON = "checkout.no_coupon"
    USE_COUPON = "checkout.use_coupon"
    USE_POINTS = "checkout.use_points"
    NO_POINTS = "checkout.no_points"


SOURCE = ("src", "product", "sku", "qty", "ful", "lines")
DETAIL_PREFIX = "f_"                         # prefix of the fulfilment method's details (store, slot…)
TYPED = ("name", "phone", "detail")          # a typed address, not saved yet
FIELD = "a_"                                 # prefix of the fields of an address being typed in parts
CHOICE = ("coupon", "points")
FIELD_STATE = {"name": St.NAME, "phone": St.PHONE, "detail": St.DETAIL}

#: Where the summary ships to: a saved address id, or a typed (name, phone, detail).
Ship = int | tuple[str, str, str]


@dataclass(frozen=True)
class Line:
    sku_id: int
    title: str
    spec: str
    price_fen: int
    qty: int
    label: str = ""      # a module's price (social_mall/pricing/unit.py)
    admits: frozenset[PromoStep] = ALL_STEPS  # the retail promotion steps that price still takes

    @property
    def line_fen(self) -> int:
        return self.price_fen * self.qty


def _source(data: Data) -> dict[str, Value]:
    """What is being bought, the listing it came from and how it is fulfilled: kept
    through every step."""
    return {k: v for k, v in data.items()
            if k in SOURCE or k.startswith(catalog.CARRIED) or k.startswith(DETAIL_PREFIX)}


source_of = _source  # for a method's own flow: what it must carry back to confirm_with


def _detail(data: Data) -> Detail:
    n = len(DETAIL_PREFIX)
    return {k[n:]: v for k, v in data.items() if k.startswith(DETAIL_PREFIX) and isinstance(v, (str, int))}


def _method(ctx: Ctx, data: Data) -> CheckoutMethod:
    key = text(data, "ful") or EXPRESS.key
    method = ctx.methods.get(key)
    if method is None:  # switched off since the conversation began
        raise NotFoundError("fulfilment", key)
    return method


def _express(data: Data) -> bool:
    return (text(data, "ful") or EXPRESS.key) == EXPRESS.key


def _ship(data: Data) -> Ship | None:
    address = num(data, "address")
    if address is not None:
        return address
    typed = tuple(text(data, k) for k in TYPED)
    return (typed[0], typed[1], typed[2]) if all(typed) else None


def _ship_data(ship: Ship) -> dict[str, Value]:
    if isinstance(ship, int):
        return {"address": ship}
    return dict(zip(TYPED, ship, strict=True))


async def _lines(ctx: Ctx, data: Data) -> tuple[tuple[Line, ...], int]:
    """What would be ordered now, and how many cart lines are left out (sold out…)."""
    if text(data, "src") == "buy":
        product, sku_id, qty = num(data, "product"), num(data, "sku"), num(data, "qty")
        if product is None or sku_id is None or qty is None:
            raise EmptyCartError()
        check_qty(qty, await max_qty(ctx.uow, ctx.tenant_id, ctx.member.id))
        p, sku = await load_sku(ctx, product, sku_id, qty)
        return await _module_priced(ctx, (Line(sku.id, p.title, sku.spec, sku.price_fen, qty),)), 0
    if text(data, "src") == "list":
        return await _module_priced(ctx, await _listed(ctx, pairs(data, "lines"))), 0
    cart_ = await view_cart(ctx.uow, ctx.tenant_id, ctx.member.id)
    lines = tuple(Line(c.sku_id, c.title, c.spec, c.price_fen, c.qty) for c in cart_.lines if c.available)
    if not lines:
        raise EmptyCartError()
    return await _module_priced(ctx, lines), len(cart_.lines) - len(lines)


async def _listed(ctx: Ctx, wanted: list[tuple[int, int]]) -> tuple[Line, ...]:
    """Several SKUs bought at once (src "list": a module's quick order): each must be on
    sale and in stock for its quantity."""
    if not wanted:
        raise EmptyCartError()
    most = await max_qty(ctx.uow, ctx.tenant_id, ctx.member.id)
    for _, qty in wanted:
        check_qty(qty, most)
    found = {s.id: (s, p) for s, p in await ctx.uow.catalog.skus_by_ids(ctx.tenant_id, [k for k, _ in wanted])}
    lines: list[Line] = []
    for sku_id, qty in wanted:
        if sku_id not in found:
            raise NotFoundError("sku", sku_id)
        s, p = found[sku_id]
        name = f"{p.title} {s.spec}".strip()
        if not (s.on_shelf and p.on_shelf):
            raise OffShelfError(name)
        await check_buyable(ctx.uow, ctx.tenant_id, ctx.member.id, [(p.id, name)])
        if s.stock < qty:
            raise OutOfStockError(name, s.stock)
        lines.append(Line(s.id, p.title, s.spec, s.price_fen, qty))
    return tuple(lines)


async def _module_priced(ctx: Ctx, lines: tuple[Line, ...]) -> tuple[Line, ...]:
    """The lines at a module's unit price for this member, as place_order will charge
    them (social_mall/pricing/unit.py); a module's refusal (below its minimum…) raises."""
    if not ctx.uow.pricers:
        return lines
    found = {s.id: p for s, p in await ctx.uow.catalog.skus_by_ids(ctx.tenant_id, [ln.sku_id for ln in lines])}
    wanted = [Wanted(ln.sku_id, found[ln.sku_id].id, ln.price_fen, ln.qty) for ln in lines if ln.sku_id in found]
    await check_lines(ctx.uow, ctx.tenant_id, ctx.member.id, wanted, ctx.now)
    own = await unit_prices(ctx.uow, ctx.tenant_id, ctx.member.id, wanted, ctx.now)
    return tuple(replace(ln, price_fen=own[ln.sku_id].fen, label=own[ln.sku_id].label,
                         admits=own[ln.sku_id].steps) if ln.sku_id in own else ln for ln in lines)


# -- commands ----------------------------------------------------------------------------

# -- the core's express at checkout ---------------------------------------------------------

class ExpressCheckout(Express):
    """Express at checkout: the summary at once, shipping to the member's default address,
    or (none saved yet) the lines and total and a request for the whole address. A module
    that replaces express pricing (shipping-fee templates) subclasses this."""

    async def begin(self, ctx: Ctx, source: Data) -> Outcome:
        addrs = await list_addresses(ctx.uow, ctx.tenant_id, ctx.member.id)
        shown = await Preview(source, addrs[0].id if addrs else None).run(ctx)
        return Outcome(shown.replies, shown.data, to=shown.to, flow=NAME)


EXPRESS = ExpressCheckout()


@dataclass(frozen=True)
class StartCheckout:
    """Offer the fulfilment methods these lines may use, or begin the only one (with the
    core alone: express's summary at once), or begin `method`."""

    data: Mapping[str, Value]
    method: str = ""

    async def run(self, ctx: Ctx) -> Outcome:
        lines, _ = await _lines(ctx, self.data)  # nothing to buy: say so before anything else
        if self.method:
            keys = [self.method]
        elif len(ctx.methods) > 1:
            priced = await pricing.price_lines(ctx.uow, ctx.tenant_id, [(ln.sku_id, ln.price_fen, ln.qty) for ln in lines])
            keys = [k for k, m in ctx.methods.items() if await m.offered(ctx.uow, ctx.tenant_id, priced)]
        else:
            keys = list(ctx.methods)
        if not keys:
            raise NoFulfilmentError()
        ctx.note(activity.CHECKOUT, lines[0].sku_id if lines else 0, lines=len(lines),
                 fen=sum(ln.line_fen for ln in lines))
        if len(keys) > 1:
            say = Say("chat/checkout/methods.txt", {"methods": [ctx.methods[k].label for k in keys]})
            return Outcome((say,), {**_source(self.data), "methods": ",".join(keys)}, to=St.METHOD)
        source = {**_source(self.data), "ful": keys[0]}
        outcome = await _method(ctx, source).begin(ctx, source)
        return Outcome(outcome.replies, {**source, **outcome.data}, to=outcome.to, flow=outcome.flow)


@dataclass(frozen=True)
class Preview:
    """What `确认` will order, shipping to `ship`; without one, the same lines and total
    and a request for the address (state NEW)."""

    data: Mapping[str, Value]
    ship: Ship | None = None
    coupon: int = AUTO                        # AUTO: the best one; NONE: 不用券
    points: int = 0                           # -1: as many as allowed

    async def run(self, ctx: Ctx) -> Outcome:
        method = _method(ctx, self.data)
        address: AddressView | None = None
        if isinstance(self.ship, int):
            saved = await list_addresses(ctx.uow, ctx.tenant_id, ctx.member.id)
            address = next((a for a in saved if a.id == self.ship), None)
            if address is None:
                raise NotFoundError("address", self.ship)
        elif self.ship is not None:
            address = AddressView(0, *clean_address(*self.ship), is_default=False)
        lines, skipped = await _lines(ctx, self.data)
        goods = sum(line.line_fen for line in lines)
        priced = await pricing.price_lines(ctx.uow, ctx.tenant_id, [(ln.sku_id, ln.price_fen, ln.qty) for ln in lines],
                                           admits={ln.sku_id: ln.admits for ln in lines})
        dest = await method.quote(ctx.uow, ctx.tenant_id, ctx.member.id, priced, Choice(method.key, _detail(self.data)),
                                  address, ctx.now)
        ship = dest.fee_fen
        quote = await pricing.quote(ctx.uow, ctx.tenant_id, ctx.member.id, priced, ship,
                                    PricingInput(self.coupon, self.points), now=ctx.now)
        b = quote.breakdown
        try:
            await check_order_total(ctx.uow, ctx.tenant_id, b.total_fen)
        except OrderTooLargeError as exc:  # no quantity of this summary can be placed: start over
            return Outcome((Say("chat/checkout/too_large.txt", exc.facts()),), to=St.IDLE)
        express = method.key == EXPRESS.key
        ready = address is not None or not express   # express needs an address; other methods asked already
        ctx_ = {"lines": lines, "skipped": skipped, "goods_fen": goods, "shipping_fen": ship,
                "total_fen": b.total_fen, "address": address, "typed": not isinstance(self.ship, int),
                "q": quote, "b": b, "buy": text(self.data, "src") == "buy", "dest": dest, "express": express,
                "ready": ready}
        summary = Say("chat/checkout/confirm.txt", ctx_)
        if not ready:
            return Outcome((summary,), dict(_source(self.data)), to=St.NEW)
        items = [n for line in lines for n in (line.sku_id, line.qty)]
        return Outcome((summary,), {
            **_source(self.data), **(_ship_data(self.ship) if self.ship is not None else {}), "items": items,
            "coupon": b.coupon_id or NONE, "points": b.points_used, "shown_total": b.total_fen}, to=St.CONFIRM)


@dataclass(frozen=True)
class ListAddresses:
    """「换地址」: the saved addresses (a number picks one; a new one may be typed)."""

    async def run(self, ctx: Ctx) -> Outcome:
        addrs = await list_addresses(ctx.uow, ctx.tenant_id, ctx.member.id)
        if not addrs:
            return Outcome((Say("chat/checkout/ask_address.txt"),), to=St.NEW)
        return Outcome((Say("chat/checkout/addresses.txt", {"addrs": addrs}),), {"addrs": [a.id for a in addrs]})


@dataclass(frozen=True)
class PlaceOrder:
    """Place the confirmed items at the total the buyer was shown (`shown_total`), shipping
    to `ship` (a typed address is saved now, as the member's default). Any other total
    places nothing: the summary is shown again, priced now, to confirm."""

    items: tuple[tuple[int, int], ...]
    ship: Ship | None                 # None: a method that needs no address (store pick-up…)
    from_cart: bool
    coupon: int = NONE
    points: int = 0
    shown_total: int = 0
    source: Mapping[str, Value] = field(default_factory=dict)  # src… and the method picked (ful, f_*)

    async def run(self, ctx: Ctx) -> Outcome:
        method = _method(ctx, self.source)
        address_id: int | None
        if self.ship is None or isinstance(self.ship, int):
            address_id = self.ship
        else:
            address_id = (await add_address(ctx.uow, ctx.tenant_id, ctx.member.id, *self.ship)).id
        req = PlaceRequest(ctx.tenant_id, ctx.member.id, self.items, address_id, ctx.now, ctx.order_timeout,
                           channel=ctx.channel, source="chat", expect_total_fen=self.shown_total,
                           account_id=ctx.account or None, pricing=PricingInput(self.coupon, self.points),
                           fulfilment=(method, Choice(method.key, _detail(self.source))),
                           idem_key=ctx.message)
        try:
            if isinstance(self.ship, int):   # a saved address: the order desk may write it (orders/desk.route)
                order = await place_standing(ctx.uow, req)
            else:   # just typed, saved in this step's transaction: only place_order sees it
                order = await place_alone(ctx.uow, req)
        except (PriceChangedError, OrderTooLargeError) as exc:  # no order was written
            return await self._again(ctx, exc, address_id)
        if self.from_cart:
            await ctx.uow.members.remove_cart_items(ctx.tenant_id, ctx.member.id, [k for k, _ in self.items])
        if address_id is not None:
            await use_address(ctx.uow, ctx.tenant_id, ctx.member.id, address_id)
        minutes = int(ctx.order_timeout.total_seconds() // 60)
        say = Say("chat/checkout/placed.txt", {
            "order": order, "minutes": minutes, "pay_url": await ctx.links.pay_link(ctx.tenant_code, order.order_no),
            "offers": await payment_offers(ctx.uow, ctx.tenant_id, order, ctx.now) if ctx.uow.payment_methods else [],
        })
        return Outcome((say,), {"order": order.id, "orders": [order.id], "page": 1, "pages": 1})

    async def _again(self, ctx: Ctx, exc: PriceChangedError | OrderTooLargeError, address_id: int | None) -> Outcome:
        """Back to checkout's summary, priced now (or its end, if now over the cap). A typed
        address the buyer confirmed stays saved: the summary ships to it by id."""
        again = await Preview(self.source, address_id, coupon=self.coupon, points=self.points).run(ctx)
        said: tuple[Say, ...] = ()
        now_total = num(again.data, "shown_total")
        if isinstance(exc, PriceChangedError) and now_total is not None and now_total != exc.shown_fen:
            said = (Say("chat/checkout/price_changed.txt", {"shown_fen": exc.shown_fen, "total_fen": now_total}),)
        return Outcome((*said, *again.replies), again.data, to=again.to or St.CONFIRM, flow=NAME)


# -- steps (pure) ------------------------------------------------------------------------

def begin(source: Mapping[str, Value]) -> Step:
    """Enter checkout (from the cart, or a SKU bought from its card: product/sku/qty)."""
    return Step(St.CONFIRM, data=dict(source), command=StartCheckout(dict(source)), flow=NAME)


def from_cart(turn: Turn) -> Step:
    return begin({"src": "cart"})


def confirm_with(source: Data, *, method: str, detail: Detail, address_id: int | None = None) -> Step:
    """Back to checkout's summary from a method's own flow, with the buyer's choice."""
    data: dict[str, Value] = {**_source(source), "ful": method,
                              **{f"{DETAIL_PREFIX}{k}": v for k, v in detail.items()}}
    return Step(St.CONFIRM, data={**data, **({} if address_id is None else {"address": address_id})},
                command=Preview(data, address_id), flow=NAME)


def pick_method(turn: Turn) -> Step:
    keys = [k for k in turn.text("methods").split(",") if k]
    n = turn.said.n
    if n is None or not 1 <= n <= len(keys):
        return turn.stay(Say("chat/bad_number.txt", {"n": n, "count": len(keys)}))
    source = _source(turn.data)
    return Step(St.METHOD, data={**source, "methods": turn.text("methods")},
                command=StartCheckout(source, method=keys[n - 1]))


def _summary(turn: Turn, ship: Ship | None, *, coupon: int | None = None, points: int | None = None,
             source: Mapping[str, Value] | None = None) -> Step:
    """The summary again: shipping to `ship` (none yet: the address is asked for), with the
    buyer's coupon / points choices unless given (a first summary proposes the best coupon)."""
    c = coupon if coupon is not None else num(turn.data, "coupon")
    p = points if points is not None else (turn.num("points") or 0)
    src = dict(source) if source is not None else _source(turn.data)
    return Step(St.CONFIRM, data={**src, **(_ship_data(ship) if ship is not None else {})},
                command=Preview(src, ship, coupon=AUTO if c is None else c, points=p))


def _reprice(turn: Turn, *, coupon: int | None = None, points: int | None = None) -> Step:
    """Price the confirmation again with another coupon / points choice."""
    ship = _ship(turn.data)
    if ship is None and _express(turn.data):
        return expired(turn)
    return _summary(turn, ship, coupon=coupon, points=points)


def confirm(turn: Turn) -> Step:
    ship, items, shown = _ship(turn.data), tuple(pairs(turn.data, "items")), turn.num("shown_total")
    if (ship is None and _express(turn.data)) or not items:
        return expired(turn)
    if shown is None:   # a summary from before totals were kept: show it again, priced now
        return _reprice(turn)
    command = PlaceOrder(items, ship, from_cart=turn.text("src") == "cart",
                         coupon=max(turn.num("coupon") or NONE, NONE), points=max(turn.num("points") or 0, 0),
                         shown_total=shown, source=_source(turn.data))
    return Step(orders.St.DETAIL, command=command, flow=orders.NAME)


def change_qty(turn: Turn) -> Step:
    """「x3」 on a SKU's summary: three of it, priced again (the best coupon proposed anew)."""
    if turn.said.n is not None:
        return turn.stay(Say("chat/checkout/qty_usage.txt", {"buy": turn.text("src") == "buy"}))
    if turn.text("src") != "buy":
        return turn.stay(Say("chat/checkout/qty_usage.txt", {"buy": False}))
    # checked against the member's per-line cap as the summary is built (_lines);
    # InvalidQuantityError: said, the summary stays
    return _summary(turn, _ship(turn.data), coupon=AUTO, source={**_source(turn.data), "qty": turn.said.qty or 0})


def add_to_cart_instead(turn: Turn) -> Step:
    """「加购」 on a SKU's summary: into the cart, back to the listing it came from."""
    sku, qty = turn.num("sku"), turn.num("qty")
    if turn.text("src") != "buy":
        return turn.stay(Say("chat/checkout/in_cart_already.txt"))
    if sku is None or qty is None:
        return expired(turn)
    listed = catalog.restore(turn.data)
    to = catalog.PRODUCTS if listed.get("items") else catalog.IDLE
    return Step(to, data=listed, command=AddToCart(sku, qty, back_to_list=bool(listed.get("items"))),
                flow=catalog.SHOP)


def back_out(turn: Turn) -> Step:
    """「返回」 from the summary (or the address request): the product card, or the cart."""
    product = turn.num("product")
    if turn.text("src") == "buy" and product is not None:
        return Step(catalog.CARD, data={**catalog.restore(turn.data), "product": product},
                    command=ShowProduct(product), flow=catalog.SHOP)
    return Step(cart.St.LIST, command=cart.ShowCart(), flow=cart.NAME)


def back_from_new(turn: Turn) -> Step:
    """「返回」 while asked for an address: the summary it was asked from (换地址), or out."""
    return _reprice(turn) if _ship(turn.data) is not None else back_out(turn)


def back_to_ask(turn: Turn) -> Step:
    """「返回」 while one field is asked for: the whole address again (the parts typed go)."""
    return Step(St.NEW, (Say("chat/checkout/ask_address.txt"),), _kept(turn.data))


def _kept(data: Data) -> dict[str, Value]:
    """What stays while another address is chosen or typed: the goods, the coupon and
    points choices, and the summary's address (for 返回)."""
    keep: dict[str, Value] = {**_source(data), **{k: v for k, v in data.items() if k in CHOICE}}
    ship = _ship(data)
    if ship is not None:
        keep.update(_ship_data(ship))
    return keep


def change_address(turn: Turn) -> Step:
    return Step(St.ADDRESS, data=_kept(turn.data), command=ListAddresses())


def pick_address(turn: Turn) -> Step:
    address = turn.pick("addrs")
    if address is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("addrs"))}))
    return _summary(turn, address)


def new_address(turn: Turn) -> Step:
    """「新地址」: type one (the summary's address kept for 返回)."""
    return Step(St.NEW, (Say("chat/checkout/ask_address.txt"),), _kept(turn.data))


def typed_address(turn: Turn) -> Step:
    """A whole address in one message (any order); what is missing is asked for alone."""
    parsed = parse_address(turn.said.text)
    return _with_typed(turn, {k: getattr(parsed, k) for k in TYPED if getattr(parsed, k)}, parsed=True)


def _with_typed(turn: Turn, have: Mapping[str, str], *, parsed: bool = False) -> Step:
    """The summary when `have` holds name, phone and detail; else the first missing field
    is asked for, saying what was understood (`parsed`: from a whole address)."""
    missing = [k for k in TYPED if not have.get(k)]
    if not missing:
        return _summary(turn, (have["name"], have["phone"], have["detail"]))
    say = Say("chat/checkout/ask_field.txt", {"have": have, "missing": missing, "parsed": parsed})
    return Step(FIELD_STATE[missing[0]], (say,), {**_kept(turn.data), **{FIELD + k: v for k, v in have.items()}})


def _field(turn: Turn, name: str) -> Step:
    """One field typed when asked for it. When the text carries a phone and more (the
    whole address, or part of it, sent again), what it holds is taken instead."""
    known = {k: turn.text(FIELD + k) for k in TYPED if turn.text(FIELD + k)}
    parsed = parse_address(turn.said.text)
    found = {k: getattr(parsed, k) for k in TYPED if getattr(parsed, k)}
    if parsed.complete or (parsed.phone and len(found) > 1):
        return _with_typed(turn, {**known, **found}, parsed=True)
    raw = turn.said.text.strip()
    if name == "phone":
        value = parsed.phone or re.sub(r"[\s-]", "", raw)
        if not PHONE.match(value):
            raise InvalidAddressError("phone")
    elif name == "name":
        value = raw
        if not 1 <= len(value) <= MAX_NAME:
            raise InvalidAddressError("name")
    else:
        value = raw
        if not DETAIL_MIN <= len(value) <= DETAIL_MAX:
            raise InvalidAddressError("detail")
    return _with_typed(turn, {**known, name: value})


def enter_name(turn: Turn) -> Step:
    return _field(turn, "name")


def enter_phone(turn: Turn) -> Step:
    return _field(turn, "phone")


def enter_detail(turn: Turn) -> Step:
    return _field(turn, "detail")


def no_coupon(turn: Turn) -> Step:
    return _reprice(turn, coupon=NONE)


def use_coupon(turn: Turn) -> Step:
    return _reprice(turn, coupon=AUTO)


def use_points(turn: Turn) -> Step:
    n = next((a for a in turn.said.args if a), "")
    return _reprice(turn, points=int(n) if n else -1)


def no_points(turn: Turn) -> Step:
    return _reprice(turn, points=0)


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.CHECKOUT): from_cart,
    (St.METHOD, Intent.NUMBER): pick_method,
    (St.METHOD, Intent.BACK): back_out,
    (St.CONFIRM, Intent.YES): confirm,
    (St.CONFIRM, Intent.TIMES): change_qty,
    (St.CONFIRM, Do.ADD_CART): add_to_cart_instead,
    (St.CONFIRM, Do.CHANGE_ADDRESS): change_address,
    (St.CONFIRM, Do.NEW_ADDRESS): new_address,
    (St.CONFIRM, Intent.BACK): back_out,
    (St.CONFIRM, Do.NO_COUPON): no_coupon,
    (St.CONFIRM, Do.USE_COUPON): use_coupon,
    (St.CONFIRM, Do.USE_POINTS): use_points,
    (St.CONFIRM, Do.NO_POINTS): no_points,
    (St.NEW, Intent.TEXT): typed_address,
    (St.NEW, Intent.NUMBER): typed_address,
    (St.NEW, Intent.TIMES): change_qty,
    (St.NEW, Do.ADD_CART): add_to_cart_instead,
    (St.NEW, Intent.BACK): back_from_new,
    (St.ADDRESS, Intent.NUMBER): pick_address,
    (St.ADDRESS, Intent.TEXT): typed_address,
    (St.ADDRESS, Do.NEW_ADDRESS): new_address,
    (St.ADDRESS, Intent.BACK): _reprice,
    (St.NAME, Intent.TEXT): enter_name,
    (St.NAME, Intent.NUMBER): enter_name,
    (St.NAME, Intent.BACK): back_to_ask,
    (St.PHONE, Intent.TEXT): enter_phone,
    (St.PHONE, Intent.NUMBER): enter_phone,
    (St.PHONE, Intent.BACK): back_to_ask,
    (St.DETAIL, Intent.TEXT): enter_detail,
    (St.DETAIL, Intent.NUMBER): enter_detail,
    (St.DETAIL, Intent.BACK): back_to_ask,
}

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    keywords=(
        Keyword(Do.CHECKOUT, words=("结算", "去结算", "checkout")),
        Keyword(Do.USE_POINTS, pattern=r"用积分\s*(\d{1,7})?"),
    ),
    words={"新地址": Do.NEW_ADDRESS, "新增地址": Do.NEW_ADDRESS, "添加地址": Do.NEW_ADDRESS,
           "换地址": Do.CHANGE_ADDRESS, "换个地址": Do.CHANGE_ADDRESS, "修改地址": Do.CHANGE_ADDRESS,
           "改地址": Do.CHANGE_ADDRESS, "选地址": Do.CHANGE_ADDRESS,
           "加购": Do.ADD_CART, "加入购物车": Do.ADD_CART,
           "不用券": Do.NO_COUPON, "不用优惠券": Do.NO_COUPON, "不使用优惠券": Do.NO_COUPON,
           "用券": Do.USE_COUPON, "使用优惠券": Do.USE_COUPON, "不用积分": Do.NO_POINTS},
    hints={
        St.IDLE: "chat/hints/home_idle.txt",
        St.METHOD: "chat/hints/checkout_method.txt",
        St.CONFIRM: "chat/hints/checkout_confirm.txt",
        St.NEW: "chat/hints/checkout_new.txt",
        St.ADDRESS: "chat/hints/checkout_address.txt",
        St.NAME: "chat/hints/checkout_name.txt",
        St.PHONE: "chat/hints/checkout_phone.txt",
        St.DETAIL: "chat/hints/checkout_detail.txt",
    },
    menu=(MenuEntry(25, "chat/checkout/_help.txt"),),
    # a whole address is no keyword pattern, nor 「2 x3」: in NEW 「x3」 and 「加购」 still work
    free_text=frozenset({St.ADDRESS, St.NAME, St.PHONE, St.DETAIL}),
)
