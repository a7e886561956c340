"""Pricing: gather what the pipeline needs (the member's level, flash prices, 满减 tiers,
the chosen coupon, the points balance and rate), run it (pricing/rules.py), and, for a
placed order, lock the coupon, spend the points and store the breakdown.

`place_order(..., pricing=PricingInput(...))` calls `quote` before writing the order and
`commit` after, in the same unit of work: a coupon that another order locked meanwhile or
points spent elsewhere make the whole order roll back.

Levels, flash prices, 满减 tiers, coupons and points are the `loyalty` module's. With that
module switched off (`uow.enabled("loyalty")` is false) none of them applies: `quote`
prices the lines as they are, `commit` locks and spends nothing (nobody would give a
cancelled order's coupon back), and no flash price is shown or charged.

`active_flash_prices` is the one place that says which flash price (限时折扣) a SKU sells at
now: the chat's product pages show it and `quote` charges it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from social_mall.loyalty import rules as lrules
from social_mall.loyalty import service as loyalty
from social_mall.loyalty.errors import CouponUnavailableError, PointsInsufficientError, PointsOwedError
from social_mall.pricing.rules import (
    ALL_STEPS,
    Breakdown,
    CouponRule,
    FullReduction,
    PointsRule,
    PriceLine,
    PricingContext,
    Step,
    best_coupon,
    max_points,
    price,
)
from storage.loyalty_models import OrderDiscount
from storage.loyalty_repos import LoyaltyRepo
from storage.uow import UnitOfWork

AUTO = -1     # coupon_id: propose the best applicable coupon
NONE = 0      # coupon_id: no coupon (不用券)
MODULE = "loyalty"   # the module whose promotions the pipeline applies


def promotions_on(uow: UnitOfWork) -> bool:
    """Are the loyalty module's promotions (levels, flash, 满减, coupons, points) on?"""
    return uow.enabled(MODULE)


@dataclass(frozen=True)
class FlashView:
    """A SKU's live flash price (below its own price) and when it ends."""

    sku_id: int
    product_id: int
    price_fen: int
    ends_at: datetime


async def active_flash_prices(uow: UnitOfWork, tenant: int, sku_ids: Sequence[int], now: datetime
                              ) -> dict[int, FlashView]:
    """sku id → the flash price it sells at now (the lowest live one). Empty when the
    loyalty module is off."""
    if not sku_ids or not promotions_on(uow):
        return {}
    rows = await LoyaltyRepo(uow.session).active_flash(tenant, sku_ids, now)
    return {sku: FlashView(sku, product, fen, ends) for product, sku, fen, ends in rows}


async def product_flash_prices(uow: UnitOfWork, tenant: int, product_ids: Sequence[int], now: datetime
                               ) -> dict[int, FlashView]:
    """product id → its lowest live flash price over its on-shelf SKUs (for lists).

    Lists are browsing's hot path: they read the tenant's flash schedule (every flash
    price not yet over) through the catalog read cache (storage/cache.py) and pick what
    is live at `now` in memory, so a flash sale still starts and ends on the second."""
    if not product_ids or not promotions_on(uow):
        return {}

    async def load() -> tuple[tuple[int, int, int, datetime, datetime], ...]:
        return tuple(await LoyaltyRepo(uow.session).flash_schedule(tenant, now))

    wanted = set(product_ids)
    out: dict[int, FlashView] = {}
    for product, sku, fen, starts, ends in await uow.cache.get_or_load(("flash_schedule", tenant), load):
        if product not in wanted or not starts <= now < ends:
            continue
        held = out.get(product)
        if held is None or (fen, -ends.timestamp()) < (held.price_fen, -held.ends_at.timestamp()):
            out[product] = FlashView(sku, product, fen, ends)
    return out


@dataclass(frozen=True)
class PricingInput:
    """What the buyer chose: a coupon (AUTO: the best one, NONE / None: none) and how
    many points to spend (-1: as many as allowed)."""

    coupon_id: int | None = AUTO
    points: int = 0


@dataclass(frozen=True)
class Quote:
    breakdown: Breakdown
    coupons: tuple[CouponRule, ...] = field(default=())   # the member's usable coupons
    best_coupon_id: int | None = None
    points_balance: int = 0
    points_max: int = 0                                      # most points this order could take
    points_rule: PointsRule = PointsRule()
    level_name: str = ""


async def price_lines(uow: UnitOfWork, tenant: int, items: Sequence[tuple[int, int, int]],
                      fixed: Collection[int] = (), admits: Mapping[int, frozenset[Step]] | None = None
                      ) -> list[PriceLine]:
    """(sku id, unit fen, qty) → pipeline lines, with product and category; the SKUs in
    `fixed` are priced by a module with promotions off, those in `admits` take only the
    steps named there (pricing/unit.py)."""
    found = {s.id: p for s, p in await uow.catalog.skus_by_ids(tenant, [i[0] for i in items])}
    steps = admits or {}
    return [PriceLine(sku, found[sku].id if sku in found else 0, found[sku].category_id if sku in found else 0,
                      unit, qty, sku in fixed, steps.get(sku, ALL_STEPS)) for sku, unit, qty in items]


async def quote(
    uow: UnitOfWork, tenant: int, member: int, lines: Sequence[PriceLine], shipping_fen: int,
    choice: PricingInput, *, now: datetime,
) -> Quote:
    if not promotions_on(uow):   # the plain price: no level, flash, 满减, coupon or points
        return Quote(price(lines, shipping_fen, PricingContext()))
    r = LoyaltyRepo(uow.session)
    cfg = await loyalty.config(uow, tenant)
    acc = await r.account(tenant, member)
    growth, balance = (acc.growth, acc.points) if acc else (0, 0)
    level = lrules.level_for(growth, await loyalty.levels(uow, tenant))
    usable = [loyalty.coupon_rule(c, t) for c, t in await loyalty.usable_coupons(uow, tenant, member, now)]
    rule = PointsRule(cfg.redeem_points_per_yuan, cfg.redeem_cap_bp)
    ctx = PricingContext(
        level_name=level.name, level_bp=level.discount_bp,
        flash={sku: f.price_fen for sku, f in
               (await active_flash_prices(uow, tenant, [ln.sku_id for ln in lines], now)).items()},
        full_reductions=tuple(FullReduction(t.threshold_fen, t.off_fen) for t in await r.full_reductions(tenant, now)),
        points_rule=rule, points_balance=balance,
    )
    best = best_coupon(lines, shipping_fen, ctx, usable)
    chosen: CouponRule | None = None
    if choice.coupon_id == AUTO:
        chosen = best
    elif choice.coupon_id:
        chosen = next((c for c in usable if c.id == choice.coupon_id), None)
        if chosen is None:
            raise CouponUnavailableError(choice.coupon_id)
    with_coupon = replace(ctx, coupon=chosen)
    most = max_points(lines, shipping_fen, with_coupon)
    if choice.points != 0 and balance < 0:   # points owed (a refund's clawback): none to spend
        raise PointsOwedError(choice.points, balance)
    wanted = most if choice.points < 0 else choice.points
    if wanted > max(balance, 0):
        raise PointsInsufficientError(wanted, balance)
    final = replace(with_coupon, points_wanted=wanted)
    return Quote(price(lines, shipping_fen, final), tuple(usable), best.id if best else None, balance, most,
                 rule, level.name)


async def commit(uow: UnitOfWork, tenant: int, member: int, order_id: int, b: Breakdown, *, now: datetime) -> None:
    """Hold what the order uses (coupon locked, points spent) and store its breakdown.
    Nothing at all with the loyalty module off (its tables are its own)."""
    if not promotions_on(uow):
        return
    r = LoyaltyRepo(uow.session)
    if b.coupon_id is not None and not await loyalty.lock_coupon(uow, tenant, member, b.coupon_id, order_id, now):
        raise CouponUnavailableError(b.coupon_id)
    if b.points_used:
        result = await loyalty.spend_points(uow, tenant, member, b.points_used, f"o{order_id}:spend", now)
        if result != "ok":
            raise PointsInsufficientError(b.points_used, await loyalty.points_balance(uow, tenant, member))
    await r.add(OrderDiscount(
        tenant_id=tenant, order_id=order_id, member_id=member, coupon_id=b.coupon_id, points_used=b.points_used,
        points_fen=b.points_fen, discount_fen=b.discount_fen, breakdown=b.to_json(),
        line_refunds=[0] * (len(b.lines) + 1), created_at=now))


async def breakdown(uow: UnitOfWork, tenant: int, order_id: int) -> Breakdown | None:
    """The stored breakdown of an order (None: placed without the pipeline)."""
    d = await LoyaltyRepo(uow.session).discount(tenant, order_id)
    return Breakdown.from_json(d.breakdown) if d is not None else None
