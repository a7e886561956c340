"""What the demo shop shows of membership: coupons to claim (「领券」) and a flash sale
that is live whenever the demo starts (from an hour before the start to hours after it;
a start that finds it over, or ending within the hour, moves it on)."""

from __future__ import annotations

from datetime import datetime, timedelta

from social_mall.loyalty import service
from social_mall.pricing.rules import CouponKind
from social_mall.tenants import TenantView
from storage.uow import UnitOfWork

#: (name, kind, threshold fen, off fen, off basis points, days valid after claiming)
COUPONS: tuple[tuple[str, CouponKind, int, int, int, int], ...] = (
    ("新人券 满30减5", CouponKind.AMOUNT, 3000, 500, 0, 7),
    ("满100减15", CouponKind.AMOUNT, 10000, 1500, 0, 14),
    ("会员95折券", CouponKind.PERCENT, 0, 0, 500, 14),
)
FLASH_PRODUCT = "海南贵妃芒"
FLASH_OFF_FEN = 1000              # the flash price: the SKU's own price less ¥10.00
FLASH_BEFORE = timedelta(hours=1)
FLASH_FOR = timedelta(hours=6)
FLASH_RENEW_WITHIN = timedelta(hours=1)


async def seed(uow: UnitOfWork, tenant: TenantView, now: datetime) -> None:
    r = service.repo(uow)
    for name, kind, threshold, off, off_bp, days in COUPONS:
        if await r.template_named(tenant.id, name) is None:
            await service.create_template(uow, tenant.id, name=name, kind=kind, threshold_fen=threshold,
                                          off_fen=off, off_bp=off_bp, valid_days=days, per_member=1)
    await _flash_sale(uow, tenant, now)


async def _flash_sale(uow: UnitOfWork, tenant: TenantView, now: datetime) -> None:
    products, _ = await uow.catalog.products(tenant.id, category_id=None, keyword=FLASH_PRODUCT, offset=0, limit=1)
    if not products:
        return
    sku = (await uow.catalog.skus(tenant.id, products[0].id))[0]
    r = service.repo(uow)
    existing = await r.flash_prices_of(tenant.id, sku.id)
    if not existing:
        await service.add_flash_price(uow, tenant.id, sku.id, max(sku.price_fen - FLASH_OFF_FEN, 1),
                                      starts_at=now - FLASH_BEFORE, ends_at=now + FLASH_FOR)
        return
    flash = existing[-1]
    if flash.starts_at > now or flash.ends_at - now < FLASH_RENEW_WITHIN:
        await r.set_flash_window(tenant.id, flash.id, now - FLASH_BEFORE, now + FLASH_FOR)
