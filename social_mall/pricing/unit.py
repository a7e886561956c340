"""Unit prices from modules: the seam through which a module sells a SKU to some members
at a price of its own (a B2B price list, a member-only price…), consulted wherever the
core prices a line for a member: the product card (`unit_prices`), checkout's summary and
`place_order` (`unit_prices` + `check_lines`), so the price a buyer is shown is the price
charged.

A module registers a `UnitPricer` with `registry.add_unit_pricer(pricer)`; the composition
root hands the enabled pricers to every unit of work (`uow.pricers`), so a switched-off or
uninstalled module prices nothing and the shop sells at the SKUs' own prices.

- `prices(...)` → sku id → `UnitPrice` for the lines it prices (others are left out). It
  never raises for a quantity: the card asks with qty 1 to show the price.
- `max_qty(...)` may let a member order more of one SKU per line than the retail cap
  (99): `place_order`, checkout's summaries (the card's and the summary's 「xN」, the
  several-SKU src "list") and the cart (add, 「改 N M」) allow the highest any pricer
  gives; everyone else stays at 99.
- `placed(...)` sees each order written, in its transaction: a limit counted atomically
  (a buyer's monthly budget) raises there to roll the order back.
- `check(...)` raises a `MallError` (below a minimum quantity, not a case multiple…) for
  lines this member may not order so; `place_order` and checkout call it before anything
  is written, so a refusal changes nothing.

- `passive(uow, tenant, member)` (optional): True when the pricer will price, check, count and
  refuse nothing of this member's next order (a contended sale's pricer outside its admitted
  write, a price list for a member it has no price for).
  The order desk (social_mall/orders/desk.py) writes an order of a deployment with pricers
  only when every one says so; a pricer without it is never passive.

A `UnitPrice` with `promotions=False` (the default) takes its line out of the retail
promotions pipeline (member level, flash price, 满减, coupon, points: pricing/rules.py):
the module's price is what the line pays; `admits` names the steps that may still touch
it (a tenant's rule that business lines still take coupons, say), `promotions=True` all of
them. With several pricers, the lowest price wins (with its steps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from social_mall.pricing.rules import ALL_STEPS, Step

if TYPE_CHECKING:
    from social_mall.views import OrderView
    from storage.uow import UnitOfWork


@dataclass(frozen=True)
class Wanted:
    """A line to price: the SKU, its product, its own (retail) price and the quantity."""

    sku_id: int
    product_id: int
    retail_fen: int
    qty: int


@dataclass(frozen=True)
class UnitPrice:
    fen: int
    label: str = ""          # shown beside the price (the pricer names it)
    note: str = ""           # shown under the SKU on the card (tiers, minimum, case pack)
    promotions: bool = False  # may every retail promotion still apply to the line?
    admits: frozenset[Step] = frozenset()   # else: the promotion steps that still apply

    @property
    def steps(self) -> frozenset[Step]:
        """The promotion steps (pricing/rules.py) that may touch a line at this price."""
        return ALL_STEPS if self.promotions else self.admits


class UnitPricer(Protocol):
    key: str

    async def prices(self, uow: UnitOfWork, tenant: int, member: int, lines: Sequence[Wanted],
                     now: datetime) -> Mapping[int, UnitPrice]: ...

    async def check(self, uow: UnitOfWork, tenant: int, member: int, lines: Sequence[Wanted],
                    now: datetime) -> None: ...

    async def placed(self, uow: UnitOfWork, tenant: int, order: OrderView, now: datetime) -> None:
        """The order was written (same unit of work, before its commit): count it against
        what the pricer limits (a buyer's monthly budget…); raising a MallError rolls the
        whole order back."""
        ...

    async def max_qty(self, uow: UnitOfWork, tenant: int, member: int) -> int:
        """The most of one SKU this member may order in one line (0: no say; the core's
        retail cap, orders.rules.MAX_QTY_PER_LINE, applies unless a pricer allows more)."""
        ...


async def unit_prices(uow: UnitOfWork, tenant: int, member: int | None, lines: Sequence[Wanted],
                      now: datetime) -> dict[int, UnitPrice]:
    """sku id → the registered pricers' lowest price for `member` (nothing without pricers,
    for a visitor with no member, or for lines no pricer prices)."""
    out: dict[int, UnitPrice] = {}
    if member is None or not lines or not uow.pricers:
        return out
    for pricer in uow.pricers:
        for sku, p in (await pricer.prices(uow, tenant, member, lines, now)).items():
            if p.fen > 0 and (sku not in out or p.fen < out[sku].fen):
                out[sku] = p
    return out


@dataclass(frozen=True)
class FromPrice:
    """A product's lowest price for one member in a list (「<label> ¥22.00起」): the least
    over its SKUs on sale, each at a pricer's price where one prices it, else retail."""

    fen: int
    label: str           # the pricer's label
    retail_fen: int      # the product's lowest retail price, shown beside it when it differs


async def list_prices(uow: UnitOfWork, tenant: int, member: int | None, product_ids: Sequence[int],
                      now: datetime) -> dict[int, FromPrice]:
    """product id → the member's own 「from」 price, for the products of a list page
    (categories, search results, suggestions, recommendations) that a pricer prices for
    this member. Batched: one query for the page's SKUs and one call to each pricer, however
    many products; nothing at all (no query) without pricers, for a visitor, or when every
    pricer is passive for the member (a consumer)."""
    if member is None or not product_ids or not uow.pricers or await passive(uow, tenant, member):
        return {}
    skus = await uow.catalog.shelf_skus(tenant, product_ids)
    own = await unit_prices(uow, tenant, member, [Wanted(s.id, s.product_id, s.price_fen, 1) for s in skus], now)
    if not own:
        return {}
    low: dict[int, int] = {}
    retail: dict[int, int] = {}
    label: dict[int, str] = {}
    for s in skus:
        retail[s.product_id] = min(retail.get(s.product_id, s.price_fen), s.price_fen)
        p = own.get(s.id)
        if p is not None:
            label.setdefault(s.product_id, p.label)
        fen = p.fen if p is not None else s.price_fen
        low[s.product_id] = min(low.get(s.product_id, fen), fen)
    return {pid: FromPrice(low[pid], text, retail[pid]) for pid, text in label.items()}


async def passive(uow: UnitOfWork, tenant: int, member: int) -> bool:
    """Will no registered pricer have anything to say about `member`'s next order?"""
    for pricer in uow.pricers:
        says = getattr(pricer, "passive", None)
        if says is None or not await says(uow, tenant, member):
            return False
    return True


async def order_placed(uow: UnitOfWork, tenant: int, order: OrderView, now: datetime) -> None:
    """Tell every registered pricer an order was written (place_order, same transaction)."""
    for pricer in uow.pricers:
        await pricer.placed(uow, tenant, order, now)


async def max_qty(uow: UnitOfWork, tenant: int, member: int) -> int:
    """The most of one SKU `member` may order in one line: the core's retail cap, or more
    where a registered pricer allows it (a business account buying by the case)."""
    from social_mall.orders.rules import MAX_QTY_PER_LINE

    most = MAX_QTY_PER_LINE
    for pricer in uow.pricers:
        most = max(most, await pricer.max_qty(uow, tenant, member))
    return most


async def check_lines(uow: UnitOfWork, tenant: int, member: int, lines: Sequence[Wanted], now: datetime) -> None:
    """Each registered pricer's refusal (MallError) for these lines, if any."""
    for pricer in uow.pricers:
        await pricer.check(uow, tenant, member, lines, now)
