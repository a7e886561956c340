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


async def _lines(uow: UnitOfWork, tenant: int, order: OrderView) -> list[tuple[int, int]]:
    """(what the line pays, its VAT rate) per line of the order: after any promotion the
    tenant lets 企业价 lines take (the order's pricing breakdown), else its amount."""
    from social_mall.pricing.service import breakdown as pricing_breakdown

    found = await uow.catalog.skus_by_ids(tenant, [ln.sku_id for ln in order.lines])
    product: Mapping[int, int] = {s.id: p.id for s, p in found}
    got = await rates(uow, tenant, list(set(product.values())))
    if not any(got.values()):
        return []
    paid: dict[int, int] = {}
    b = await pricing_breakdown(uow, tenant, order.id) if order.discount_fen else None
    if b is not None:
        for priced in b.lines:
            paid[priced.sku_id] = paid.get(priced.sku_id, 0) + priced.pay_fen
    return [(paid.get(ln.sku_id, ln.line_fen), got.get(product.get(ln.sku_id, 0), 0)) for ln in order.lines]


async def of_order(uow: UnitOfWork, tenant: int, order: OrderView) -> list[VatLine]:
    """The VAT inside the order's goods, per rate (empty: no product of it has a rate)."""
    return breakdown(await _lines(uow, tenant, order))


def note_text(goods_fen: int, taxes: Sequence[VatLine]) -> str:
    """「商品价税合计 ¥226.00，其中增值税 13% ¥26.00」 (one part per rate; "" without VAT)."""
    if not taxes:
        return ""
    parts = "，".join(f"{v.percent} ¥{v.tax_fen / 100:.2f}" for v in taxes)
    return f"商品价税合计 ¥{goods_fen / 100:.2f}，其中增值税 {parts}"


async def order_note(uow: UnitOfWork, tenant: int, order: OrderView) -> str:
    """The order notes seam (registry.add_order_note): the VAT of a business buyer's order,
    per rate, on the core's order pages (chat detail, H5, console); "" for anyone else."""
    from social_mall_b2b.accounts import approved_company

    if not order.lines or await approved_company(uow, tenant, order.member_id) is None:
        return ""
    lines = await _lines(uow, tenant, order)
    return note_text(sum(a for a, _ in lines), breakdown(lines))
