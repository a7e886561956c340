"""Tax-inclusive prices (含税价) with a VAT rate per product (增值税率): the console sets a
product's rate (through a SKU of it); business buyers see 「含税，增值税 13%」 under the
price, and an order's VAT (tax-inclusive: line × rate / (1 + rate), per rate, rounded to
the fen) in what the module tells them about the order (「月结」, 「对公转账」)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from social_mall.errors import NotFoundError
from social_mall.views import OrderView
from social_mall_b2b.errors import InvalidApplicationError
from social_mall_b2b.models import VatRate
from storage.uow import UnitOfWork

BP = 10_000


@dataclass(frozen=True)
class VatLine:
    rate_bp: int
    base_fen: int     # the tax-inclusive amount at this rate
    tax_fen: int

    @property
    def percent(self) -> str:
        return f"{self.rate_bp / 100:g}%"


def tax_in(amount_fen: int, rate_bp: int) -> int:
    """The VAT inside a tax-inclusive amount, rounded half up to the fen (integers only)."""
    return (2 * amount_fen * rate_bp + BP + rate_bp) // (2 * (BP + rate_bp))


async def set_rate(uow: UnitOfWork, tenant: int, sku_id: int, rate_bp: int, actor: str) -> None:
    if not 0 <= rate_bp <= 3000:
        raise InvalidApplicationError("vat")
    found = await uow.catalog.skus_by_ids(tenant, [sku_id])
    if not found:
        raise NotFoundError("sku", sku_id)
    product = found[0][1].id
    s = uow.session
    row = (await s.execute(select(VatRate).where(VatRate.tenant_id == tenant,
                                                 VatRate.product_id == product))).scalar_one_or_none()
    before: dict[str, object] | None = None if row is None else {"rate_bp": row.rate_bp}
    if row is None:
        s.add(VatRate(tenant_id=tenant, product_id=product, rate_bp=rate_bp))
    else:
        row.rate_bp = rate_bp
    await s.flush()
    uow.audit(tenant, actor, "b2b.vat_rate", f"product:{product}", before=before, after={"rate_bp": rate_bp})


async def rates(uow: UnitOfWork, tenant: int, product_ids: Sequence[int] | None = None) -> dict[int, int]:
    q = select(VatRate.product_id, VatRate.rate_bp).where(VatRate.tenant_id == tenant)
    if product_ids is not None:
        q = q.where(VatRate.product_id.in_(list(product_ids)))
    return {p: r for p, r in (await uow.session.execute(q)).all()}


def breakdown(lines: Sequence[tuple[int, int]]) -> list[VatLine]:
    """(line amount, rate) pairs → one VatLine per rate (highest rate first)."""
    by: dict[int, int] = {}
    for amount, rate in lines:
        by[rate] = by.get(rate, 0) + amount
    return [VatLine(r, a, tax_in(a, r)) for r, a in sorted(by.items(), reverse=True) if r > 0]


async def of_order(uow: UnitOfWork, tenant: int, order: OrderView) -> list[VatLine]:
    found = await uow.catalog.skus_by_ids(tenant, [ln.sku_id for ln in order.lines])
    product: Mapping[int, int] = {s.id: p.id for s, p in found}
    got = await rates(uow, tenant, list(set(product.values())))
    return breakdown([(ln.line_fen, got.get(product.get(ln.sku_id, 0), 0)) for ln in order.lines])
