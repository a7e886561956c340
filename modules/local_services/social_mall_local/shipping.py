"""Express shipping-fee templates as a service: the fee of an order's lines to an address
(the module's "express" method quotes with it, so the checkout shows it and place_order
charges it, once, through the pricing pipeline), and the console's template editing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from social_mall.errors import NotFoundError
from social_mall.pricing.rules import PriceLine
from social_mall_local import products as P
from social_mall_local.errors import RegionNotServedError
from social_mall_local.models import ShipTemplate
from social_mall_local.repos import LocalRepo
from social_mall_local.rules_shipping import FeeRule, Parcel, Template, province_of, rule_json, template_fee
from storage.uow import UnitOfWork


def template_of(row: ShipTemplate) -> Template:
    return Template.from_json(row.id, row.name, row.mode, row.free_over_fen, row.unserved or [], row.rules or [])


@dataclass(frozen=True)
class TemplateView:
    template: Template
    is_default: bool


async def all_templates(uow: UnitOfWork, tenant: int) -> list[TemplateView]:
    return [TemplateView(template_of(r), r.is_default) for r in await LocalRepo(uow.session).ship_templates(tenant)]


async def express_fee(uow: UnitOfWork, tenant: int, lines: Sequence[PriceLine], address: str) -> int | None:
    """The templates' fee for these lines to `address`; None when the tenant has no
    templates (the core's flat fee applies). Raises RegionNotServedError."""
    views = await all_templates(uow, tenant)
    if not views:
        return None
    by_id = {v.template.id: v.template for v in views}
    default = next((v.template for v in views if v.is_default), None)
    rules = await P.settings_for(uow, tenant, [ln.product_id for ln in lines])
    groups: dict[int, list[tuple[PriceLine, P.ProductSettings]]] = {}
    flat: list[PriceLine] = []
    for ln in lines:
        s = rules[ln.product_id]
        t = by_id.get(s.ship_template_id or 0) or default
        if t is None:
            flat.append(ln)
        else:
            groups.setdefault(t.id, []).append((ln, s))
    region = province_of(address)
    total = 0
    for tid, members in groups.items():
        parcel = Parcel(sum(ln.base_fen for ln, _ in members), sum(ln.qty for ln, _ in members),
                        sum(ln.qty * s.weight_g for ln, s in members))
        fee = template_fee(by_id[tid], region, parcel)
        if fee is None:
            raise RegionNotServedError(region)
        total += fee
    if flat:
        from social_mall.orders.rules import shipping_fee

        total += shipping_fee(sum(ln.base_fen for ln in flat))
    return total


@dataclass(frozen=True)
class TemplateInput:
    name: str
    mode: str
    free_over_fen: int
    unserved: tuple[str, ...]
    rules: tuple[FeeRule, ...]
    is_default: bool


async def save_template(uow: UnitOfWork, tenant: int, actor: str, data: TemplateInput, template_id: int | None,
                        now: datetime) -> Template:
    repo = LocalRepo(uow.session)
    if template_id is None:
        row = ShipTemplate(tenant_id=tenant)
        before = None
    else:
        found = await repo.ship_template(tenant, template_id)
        if found is None:
            raise NotFoundError("ship_template", template_id)
        row, before = found, {"name": found.name, "mode": found.mode, "free_over_fen": found.free_over_fen,
                              "unserved": found.unserved, "rules": found.rules, "is_default": found.is_default}
    row.name, row.mode, row.free_over_fen = data.name, data.mode, data.free_over_fen
    row.unserved, row.rules, row.is_default = list(data.unserved), [rule_json(r) for r in data.rules], data.is_default
    row.updated_at = now
    await repo.add(row)
    if data.is_default:
        await repo.clear_default_template(tenant, row.id)
    uow.audit(tenant, actor, "local.ship_template.save", f"ship_template:{row.id}", before=before,
              after={"name": row.name, "mode": row.mode, "free_over_fen": row.free_over_fen, "unserved": row.unserved,
                     "rules": row.rules, "is_default": row.is_default})
    return template_of(row)
