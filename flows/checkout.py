"""Checkout: from the cart (`结算`) or one SKU (立即购买) → pick a saved address or enter a
new one (name, phone, detail) → confirmation with lines, shipping and total → `确认`
places the order and answers with its number, total and pay link, at the total shown:
if prices changed since (the total differs), nothing is placed and the new summary is
shown to confirm again. A total over the tenant's cap on one order ends the checkout
with a clear answer.

The confirmation runs the promotions pipeline (social_mall/pricing): it proposes the best
applicable coupon and shows each discount line; 「不用券」 / 「用券」 and 「用积分 N」 /
「用积分」 (as many as allowed) / 「不用积分」 price it again. `确认` places the order with
exactly the coupon and points shown.

Fulfilment: when modules offer more methods than express for these lines (store pick-up,
same-city delivery…; see social_mall/fulfilment.py), checkout first lists them and the
pick's `begin` asks its own questions, usually in the method's own flow, which hands back
with `confirm_with(...)`; the confirmation shows the method's fee and destination, and
`确认` places the order with that method. With express alone nothing changes.

State data: src ("cart" | "buy"), product/sku/qty for "buy", methods (the keys listed),
ful (the method picked; none: express), f_* (the method's details: store, slot…),
addrs (listed address ids), name/phone while a new address is typed, address, items
(flat sku, qty pairs confirmed), coupon (the coupon id shown, 0: none), points (the
points shown), shown_total (the total shown, in fen: only compared at 确认, never charged).
Menu CLICK key: CHECKOUT.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from flows import orders
from flows.engine import (
    CheckoutMethod, Ctx, Data, Flow, Intent, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn, Value, num,
    pairs, text,
)
from flows.home import expired
from social_mall.catalog.service import product_detail
from social_mall.errors import (
    EmptyCartError,
    InvalidAddressError,
    NoFulfilmentError,
    NotFoundError,
    OrderTooLargeError,
    OutOfStockError,
    PriceChangedError,
)
from social_mall.fulfilment import Choice, Detail, Express
from social_mall.members.rules import PHONE
from social_mall.members.service import add_address, list_addresses, view_cart
from social_mall.orders.service import check_order_total, place_order
from social_mall.pricing import service as pricing
from social_mall.pricing.service import AUTO, NONE, PricingInput
from social_mall.views import ProductDetail, SkuView

NAME = "checkout"
MAX_NAME = 20


class St(StrEnum):
    IDLE = "idle"
    METHOD = "method"       # fulfilment methods listed: a number
    ADDRESS = "address"     # saved addresses listed: a number or 新地址
    NAME = "name"
    PHONE = "phone"
    DETAIL = "detail"
    CONFIRM = "confirm"


class Do(StrEnum):
    CHECKOUT = "checkout.start"
    NEW_ADDRESS = "checkout.new_address"
    NO_COUPON = "checkout.no_coupon"
    USE_COUPON = "checkout.use_coupon"
    USE_POINTS = "checkout.use_points"
    NO_POINTS = "checkout.no_points"


SOURCE = ("src", "product", "sku", "qty", "ful")
DETAIL_PREFIX = "f_"


@dataclass(frozen=True)
class Line:
    sku_id: int
    title: str
    spec: str
    price_fen: int
    qty: int

    @property
    def line_fen(self) -> int:
        return self.price_fen * self.qty


def _source(data: Data) -> dict[str, Value]:
    """What is being bought and how it is fulfilled (kept through every step)."""
    return {k: v for k, v in data.items() if k in SOURCE or k.startswith(DETAIL_PREFIX)}


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


async def _lines(ctx: Ctx, data: Data) -> tuple[tuple[Line, ...], int]:
    """What would be ordered now, and how many cart lines are left out (sold out…)."""
    if text(data, "src") == "buy":
        product, sku_id, qty = num(data, "product"), num(data, "sku"), num(data, "qty")
        if product is None or sku_id is None or qty is None:
            raise EmptyCartError()
        p, sku = await load_sku(ctx, product, sku_id, qty)
        return (Line(sku.id, p.title, sku.spec, sku.price_fen, qty),), 0
    cart = await view_cart(ctx.uow, ctx.tenant_id, ctx.member.id)
    lines = tuple(Line(c.sku_id, c.title, c.spec, c.price_fen, c.qty) for c in cart.lines if c.available)
    if not lines:
        raise EmptyCartError()
    return lines, len(cart.lines) - len(lines)


async def load_sku(ctx: Ctx, product_id: int, sku_id: int, qty: int = 1) -> tuple[ProductDetail, SkuView]:
    """The product and SKU if `qty` of it can be bought now; the core's errors otherwise."""
    p = await product_detail(ctx.uow, ctx.tenant_id, product_id)
    sku = next((s for s in p.skus if s.id == sku_id), None)
    if sku is None:
        raise NotFoundError("sku", sku_id)
    if sku.stock < qty:
        raise OutOfStockError(f"{p.title} {sku.spec}".strip(), sku.stock)
    return p, sku


# -- the core's express at checkout ---------------------------------------------------------

class ExpressCheckout(Express):
    """Express at checkout: pick a saved address or type a new one (the steps below).
    A module that replaces express pricing (shipping-fee templates) subclasses this."""

    async def begin(self, ctx: Ctx, source: Data) -> Outcome:
        addrs = await list_addresses(ctx.uow, ctx.tenant_id, ctx.member.id)
        if not addrs:
            return Outcome((Say("chat/checkout/ask_name.txt", {"first": True}),), to=St.NAME, flow=NAME)
        return Outcome((Say("chat/checkout/addresses.txt", {"addrs": addrs}),), {"addrs": [a.id for a in addrs]},
                       to=St.ADDRESS, flow=NAME)


EXPRESS = ExpressCheckout()


# -- commands ----------------------------------------------------------------------------

@dataclass(frozen=True)
class StartCheckout:
    """Offer the fulfilment methods these lines may use (straight to the questions of the
    only one: with the core alone, express's addresses), or begin `method`."""

    data: Mapping[str, Value]
    method: str = ""

    async def run(self, ctx: Ctx) -> Outcome:
        lines, _ = await _lines(ctx, self.data)  # nothing to buy: say so before asking for an address
        if self.method:
            keys = [self.method]
        elif len(ctx.methods) > 1:
            priced = await pricing.price_lines(ctx.uow, ctx.tenant_id, [(ln.sku_id, ln.price_fen, ln.qty) for ln in lines])
            keys = [k for k, m in ctx.methods.items() if await m.offered(ctx.uow, ctx.tenant_id, priced)]
        else:
            keys = list(ctx.methods)
        if not keys:
            raise NoFulfilmentError()
        if len(keys) > 1:
            say = Say("chat/checkout/methods.txt", {"methods": [ctx.methods[k].label for k in keys]})
            return Outcome((say,), {"methods": ",".join(keys)}, to=St.METHOD)
        source = {**_source(self.data), "ful": keys[0]}
        outcome = await _method(ctx, source).begin(ctx, source)
        return Outcome(outcome.replies, {**source, **outcome.data}, to=outcome.to, flow=outcome.flow)


@dataclass(frozen=True)
class Preview:
    """Save the typed address (if any), then show what `确认` will order."""

    data: Mapping[str, Value]
    address_id: int | None = None
    new: tuple[str, str, str] | None = None   # name, phone, detail
    coupon: int = AUTO                        # AUTO: the best one; NONE: 不用券
    points: int = 0                           # -1: as many as allowed

    async def run(self, ctx: Ctx) -> Outcome:
        method = _method(ctx, self.data)
        address = None
        if self.new is not None:
            address = await add_address(ctx.uow, ctx.tenant_id, ctx.member.id, *self.new)
        elif self.address_id is not None:
            saved = await list_addresses(ctx.uow, ctx.tenant_id, ctx.member.id)
            address = next((a for a in saved if a.id == self.address_id), None)
            if address is None:
                raise NotFoundError("address", self.address_id)
        elif method.key == EXPRESS.key:
            raise NotFoundError("address", None)
        lines, skipped = await _lines(ctx, self.data)
        goods = sum(line.line_fen for line in lines)
        priced = await pricing.price_lines(ctx.uow, ctx.tenant_id, [(ln.sku_id, ln.price_fen, ln.qty) for ln in lines])
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
        ctx_ = {"lines": lines, "skipped": skipped, "goods_fen": goods, "shipping_fen": ship,
                "total_fen": b.total_fen, "address": address, "q": quote, "b": b, "dest": dest,
                "express": method.key == EXPRESS.key}
        items = [n for line in lines for n in (line.sku_id, line.qty)]
        data: dict[str, Value] = {"items": items, "coupon": b.coupon_id or NONE, "points": b.points_used,
                                  "shown_total": b.total_fen}
        if address is not None:
            data["address"] = address.id
        return Outcome((Say("chat/checkout/confirm.txt", ctx_),), data)


@dataclass(frozen=True)
class PlaceOrder:
    """Place the confirmed items at the total the buyer was shown (`shown_total`). Any
    other total places nothing: the summary is shown again, priced now, to confirm."""

    items: tuple[tuple[int, int], ...]
    address_id: int | None
    from_cart: bool
    coupon: int = NONE
    points: int = 0
    shown_total: int = 0
    source: Mapping[str, Value] = field(default_factory=dict)  # src… and the method picked (ful, f_*)

    async def run(self, ctx: Ctx) -> Outcome:
        method = _method(ctx, self.source)
        try:
            order = await place_order(
                ctx.uow, ctx.tenant_id, ctx.member.id, self.items, address_id=self.address_id,
                now=ctx.now, timeout=ctx.order_timeout, channel=ctx.channel, source="chat",
                from_cart=self.from_cart, pricing=PricingInput(self.coupon, self.points),
                expect_total_fen=self.shown_total,
                fulfilment=(method, Choice(method.key, _detail(self.source))),
            )
        except (PriceChangedError, OrderTooLargeError) as exc:  # nothing was written
            return await self._again(ctx, exc)
        minutes = int(ctx.order_timeout.total_seconds() // 60)
        say = Say("chat/checkout/placed.txt", {
            "order": order, "minutes": minutes, "pay_url": await ctx.links.pay_link(ctx.tenant_code, order.order_no),
        })
        return Outcome((say,), {"order": order.id, "orders": [order.id], "page": 1, "pages": 1})

    async def _again(self, ctx: Ctx, exc: PriceChangedError | OrderTooLargeError) -> Outcome:
        """Back to checkout's summary, priced now (or its end, if now over the cap)."""
        again = await Preview(self.source, address_id=self.address_id, coupon=self.coupon,
                              points=self.points).run(ctx)
        said: tuple[Say, ...] = ()
        now_total = num(again.data, "shown_total")
        if isinstance(exc, PriceChangedError) and now_total is not None and now_total != exc.shown_fen:
            said = (Say("chat/checkout/price_changed.txt", {"shown_fen": exc.shown_fen, "total_fen": now_total}),)
        data = {**self.source, **({} if self.address_id is None else {"address": self.address_id}), **again.data}
        return Outcome((*said, *again.replies), data, to=again.to or St.CONFIRM, flow=NAME)


# -- steps (pure) ------------------------------------------------------------------------

def begin(source: Mapping[str, Value]) -> Step:
    """Enter checkout (from the cart, or 立即购买 with product/sku/qty)."""
    return Step(St.ADDRESS, data=dict(source), command=StartCheckout(dict(source)), flow=NAME)


def from_cart(turn: Turn) -> Step:
    return begin({"src": "cart"})


def confirm_with(source: Data, *, method: str, detail: Detail, address_id: int | None = None) -> Step:
    """Back to checkout's confirmation from a method's own flow, with the buyer's choice."""
    data: dict[str, Value] = {**_source(source), "ful": method,
                              **{f"{DETAIL_PREFIX}{k}": v for k, v in detail.items()}}
    if address_id is not None:
        data["address"] = address_id
    return Step(St.CONFIRM, data=data, command=Preview(data, address_id=address_id), flow=NAME)


def pick_method(turn: Turn) -> Step:
    keys = [k for k in turn.text("methods").split(",") if k]
    n = turn.said.n
    if n is None or not 1 <= n <= len(keys):
        return turn.stay(Say("chat/bad_number.txt", {"n": n, "count": len(keys)}))
    source = _source(turn.data)
    return Step(St.METHOD, data={**source, "methods": turn.text("methods")},
                command=StartCheckout(source, method=keys[n - 1]))


def pick_address(turn: Turn) -> Step:
    address = turn.pick("addrs")
    if address is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("addrs"))}))
    return Step(St.CONFIRM, data={**_source(turn.data), "address": address},
                command=Preview(_source(turn.data), address_id=address))


def new_address(turn: Turn) -> Step:
    return Step(St.NAME, (Say("chat/checkout/ask_name.txt", {"first": False}),), _source(turn.data))


def enter_name(turn: Turn) -> Step:
    name = turn.said.text.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidAddressError("name")
    return Step(St.PHONE, (Say("chat/checkout/ask_phone.txt", {"name": name}),), {**turn.data, "name": name})


def enter_phone(turn: Turn) -> Step:
    phone = re.sub(r"[\s-]", "", turn.said.text)
    if not PHONE.match(phone):
        raise InvalidAddressError("phone")
    return Step(St.DETAIL, (Say("chat/checkout/ask_detail.txt"),), {**turn.data, "phone": phone})


def enter_detail(turn: Turn) -> Step:
    new = (turn.text("name"), turn.text("phone"), turn.said.text)
    return Step(St.CONFIRM, data=_source(turn.data), command=Preview(_source(turn.data), new=new))


def _express(data: Data) -> bool:
    return (text(data, "ful") or EXPRESS.key) == EXPRESS.key


def confirm(turn: Turn) -> Step:
    address, items, shown = turn.num("address"), tuple(pairs(turn.data, "items")), turn.num("shown_total")
    if (address is None and _express(turn.data)) or not items:
        return expired(turn)
    if shown is None:   # a summary from before totals were kept: show it again, priced now
        return _reprice(turn)
    command = PlaceOrder(items, address, from_cart=turn.text("src") == "cart",
                         coupon=max(turn.num("coupon") or NONE, NONE), points=max(turn.num("points") or 0, 0),
                         shown_total=shown, source=_source(turn.data))
    return Step(orders.St.DETAIL, command=command, flow=orders.NAME)


def _reprice(turn: Turn, *, coupon: int | None = None, points: int | None = None) -> Step:
    """Price the confirmation again with another coupon / points choice."""
    address = turn.num("address")
    if (address is None and _express(turn.data)) or not turn.ids("items"):
        return expired(turn)
    c = coupon if coupon is not None else (turn.num("coupon") or NONE)
    p = points if points is not None else (turn.num("points") or 0)
    data = _source(turn.data) if address is None else {**_source(turn.data), "address": address}
    return Step(St.CONFIRM, data=data, command=Preview(_source(turn.data), address_id=address, coupon=c, points=p))


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
    (St.ADDRESS, Intent.NUMBER): pick_address,
    (St.ADDRESS, Do.NEW_ADDRESS): new_address,
    (St.NAME, Do.NEW_ADDRESS): new_address,
    (St.NAME, Intent.TEXT): enter_name,
    (St.NAME, Intent.NUMBER): enter_name,
    (St.PHONE, Intent.TEXT): enter_phone,
    (St.PHONE, Intent.NUMBER): enter_phone,
    (St.DETAIL, Intent.TEXT): enter_detail,
    (St.DETAIL, Intent.NUMBER): enter_detail,
    (St.CONFIRM, Intent.YES): confirm,
    (St.CONFIRM, Do.NO_COUPON): no_coupon,
    (St.CONFIRM, Do.USE_COUPON): use_coupon,
    (St.CONFIRM, Do.USE_POINTS): use_points,
    (St.CONFIRM, Do.NO_POINTS): no_points,
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
           "不用券": Do.NO_COUPON, "不用优惠券": Do.NO_COUPON, "不使用优惠券": Do.NO_COUPON,
           "用券": Do.USE_COUPON, "使用优惠券": Do.USE_COUPON, "不用积分": Do.NO_POINTS},
    hints={
        St.IDLE: "chat/hints/home_idle.txt",
        St.METHOD: "chat/hints/checkout_method.txt",
        St.ADDRESS: "chat/hints/checkout_address.txt",
        St.NAME: "chat/hints/checkout_name.txt",
        St.PHONE: "chat/hints/checkout_phone.txt",
        St.DETAIL: "chat/hints/checkout_detail.txt",
        St.CONFIRM: "chat/hints/checkout_confirm.txt",
    },
    free_text=frozenset({St.NAME, St.PHONE, St.DETAIL}),
    menu=(MenuEntry(25, "chat/checkout/_help.txt"),),
)
