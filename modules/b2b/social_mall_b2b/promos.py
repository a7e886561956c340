"""Which retail promotions a business buyer's 企业价 lines still take, per tenant (console
企业采购 → 对公转账与规则): member level discount (会员折扣), flash price (限时折扣), 满减,
coupons (优惠券), points (积分抵扣). Default: none. The pricer hands the allowed steps to the
core's pricing pipeline through the unit-price seam (`UnitPrice.admits`); the core applies
them, counting thresholds and caps over the lines that take each step only."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from social_mall.pricing.rules import Step
from social_mall_b2b.models import PromoRules, ShopTerms
from storage.models import Tenant
from storage.uow import UnitOfWork

CACHE = "b2b_promos"
FIELDS: tuple[tuple[str, Step, str], ...] = (
    ("level", Step.LEVEL, "会员折扣"), ("flash", Step.FLASH, "限时折扣"), ("full", Step.FULL, "满减"),
    ("coupon", Step.COUPON, "优惠券"), ("points", Step.POINTS, "积分抵扣"),
)


@dataclass(frozen=True)
class Allowed:
    level: bool = False
    flash: bool = False
    full: bool = False
    coupon: bool = False
    points: bool = False

    @property
    def steps(self) -> frozenset[Step]:
        return frozenset(step for name, step, _ in FIELDS if getattr(self, name))

    def as_dict(self) -> dict[str, object]:
        return {name: bool(getattr(self, name)) for name, _, _ in FIELDS}


async def allowed(uow: UnitOfWork, tenant: int) -> Allowed:
    """The tenant's rule (cached for the unit of work: the pricer asks on every line set).
    The same statement reads the tenant's quote threshold into its cache (quotes.quote_from):
    a list page's pricing costs one query for both."""
    cache: dict[int, Allowed] = uow.session.info.setdefault(CACHE, {})
    if tenant in cache:
        return cache[tenant]
    from social_mall_b2b.quotes import THRESHOLD_CACHE

    row = (await uow.session.execute(
        select(PromoRules.level, PromoRules.flash, PromoRules.full, PromoRules.coupon, PromoRules.points,
               ShopTerms.quote_from_qty).select_from(Tenant)
        .outerjoin(PromoRules, PromoRules.tenant_id == Tenant.id).outerjoin(ShopTerms, ShopTerms.tenant_id == Tenant.id)
        .where(Tenant.id == tenant))).one_or_none()
    if row is None:
        return Allowed()
    level, flash, full, coupon, points, quote_from = row
    cache[tenant] = out = Allowed(*(bool(v) for v in (level, flash, full, coupon, points)))
    uow.session.info.setdefault(THRESHOLD_CACHE, {})[tenant] = int(quote_from or 0)
    return out


async def set_allowed(uow: UnitOfWork, tenant: int, rule: Allowed, actor: str) -> bool:
    """Save the tenant's rule (audited with before/after). False: nothing changed."""
    s = uow.session
    row = (await s.execute(select(PromoRules).where(PromoRules.tenant_id == tenant))).scalar_one_or_none()
    before = Allowed() if row is None else Allowed(row.level, row.flash, row.full, row.coupon, row.points)
    if before == rule:
        return False
    if row is None:
        row = PromoRules(tenant_id=tenant)
        s.add(row)
    row.level, row.flash, row.full, row.coupon, row.points = rule.level, rule.flash, rule.full, rule.coupon, \
        rule.points
    await s.flush()
    uow.session.info.pop(CACHE, None)
    uow.audit(tenant, actor, "b2b.promo_rules", f"tenant:{tenant}", before=before.as_dict(), after=rule.as_dict())
    return True
