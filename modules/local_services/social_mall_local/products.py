"""How each product is fulfilled: its kind (goods, service, multi-use card, booking), the
methods goods may use (express, pick-up, same-city delivery), the tickets' uses and
validity, whether an expired ticket refunds its unused part, and the express template
and weight. A product without settings ships by express only, as in the core."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from social_mall.errors import NotFoundError
from social_mall.views import Page
from social_mall_local.models import ProductRule
from social_mall_local.repos import LocalRepo
from storage.uow import UnitOfWork

GOODS, SERVICE, CARD, BOOKING = "goods", "service", "card", "booking"
KINDS = (GOODS, SERVICE, CARD, BOOKING)
KIND_ZH = {GOODS: "实物", SERVICE: "到店服务", CARD: "次卡", BOOKING: "预约服务"}
EXPRESS, PICKUP, DELIVERY = "express", "pickup", "delivery"
METHODS = (EXPRESS, PICKUP, DELIVERY)
METHOD_ZH = {EXPRESS: "快递", PICKUP: "门店自提", DELIVERY: "同城配送"}
TICKETED = (SERVICE, CARD)   # paid for: tickets used at a store


@dataclass(frozen=True)
class ProductSettings:
    product_id: int
    kind: str = GOODS
    methods: tuple[str, ...] = (EXPRESS,)
    uses: int = 1
    valid_days: int = 30
    refund_unused: bool = False
    ship_template_id: int | None = None
    weight_g: int = 0

    @property
    def allowed(self) -> frozenset[str]:
        """The checkout methods its lines may use: services and cards are used at a store
        (pick-up: a store is chosen, tickets are issued); bookings go through 「预约」."""
        if self.kind in TICKETED:
            return frozenset({PICKUP})
        if self.kind == BOOKING:
            return frozenset()
        return frozenset(self.methods)


def settings_of(product_id: int, r: ProductRule | None) -> ProductSettings:
    if r is None:
        return ProductSettings(product_id)
    return ProductSettings(product_id, r.kind, tuple(m for m in r.methods.split(",") if m in METHODS),
                           r.uses, r.valid_days, r.refund_unused, r.ship_template_id, r.weight_g)


async def settings_for(uow: UnitOfWork, tenant: int, product_ids: Sequence[int]) -> dict[int, ProductSettings]:
    rules = await LocalRepo(uow.session).product_rules(tenant, product_ids)
    return {p: settings_of(p, rules.get(p)) for p in product_ids}


def check(s: ProductSettings) -> ProductSettings:
    """Settings that make sense (the console's parser refuses the rest; this is the backstop)."""
    methods = tuple(m for m in METHODS if m in s.methods) or (EXPRESS,)
    return replace(s, kind=s.kind if s.kind in KINDS else GOODS, methods=methods,
                   uses=min(max(s.uses, 1), 1000), valid_days=min(max(s.valid_days, 1), 3650),
                   weight_g=min(max(s.weight_g, 0), 10**7))


async def save_settings(uow: UnitOfWork, tenant: int, actor: str, s: ProductSettings) -> ProductSettings:
    s = check(s)
    repo = LocalRepo(uow.session)
    if await repo.product(tenant, s.product_id) is None:
        raise NotFoundError("product", s.product_id)
    row = await repo.product_rule(tenant, s.product_id)
    before = None if row is None else settings_of(s.product_id, row).__dict__
    if row is None:
        row = ProductRule(tenant_id=tenant, product_id=s.product_id)
    row.kind, row.methods, row.uses, row.valid_days = s.kind, ",".join(s.methods), s.uses, s.valid_days
    row.refund_unused, row.ship_template_id, row.weight_g = s.refund_unused, s.ship_template_id, s.weight_g
    row.updated_at = datetime.now(timezone.utc)
    await repo.add(row)
    uow.audit(tenant, actor, "local.product.save", f"product:{s.product_id}",
              before=dict(before) if before else None, after=dict(s.__dict__))
    return s


@dataclass(frozen=True)
class ProductRow:
    id: int
    title: str
    on_shelf: bool
    settings: ProductSettings


async def product_page(uow: UnitOfWork, tenant: int, *, page: int = 1, per_page: int = 30) -> Page[ProductRow]:
    page = max(1, page)
    repo = LocalRepo(uow.session)
    rows = await repo.rule_page(tenant, (page - 1) * per_page, per_page)
    items = tuple(ProductRow(p.id, p.title, p.on_shelf, settings_of(p.id, r)) for p, r in rows)
    return Page(items, await repo.count_products(tenant), page, per_page)
