"""The module's part of the demo shop (DEMO_SHOWCASE): one bargain campaign on a demo product
(idempotent). Its helpers need no minimum follow age, so the demo can be tried at once; the
console proposes 24 hours for a real campaign."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from social_mall.tenants import TenantView
from social_mall_bargain import rules, service
from social_mall_bargain.models import BargainCampaign
from storage.uow import UnitOfWork

TITLE = "丹东草莓 砍价免单价"
PRODUCT = "丹东草莓"


async def seed(uow: UnitOfWork, tenant: TenantView, now: datetime) -> None:
    if (await uow.session.execute(select(BargainCampaign.id).where(
            BargainCampaign.tenant_id == tenant.id, BargainCampaign.title == TITLE))).first() is not None:
        return
    products = await uow.catalog.products(tenant.id, category_id=None, keyword=PRODUCT, offset=0, limit=1)
    if not products:
        return
    sku = (await uow.catalog.skus(tenant.id, products[0][0].id))[0]
    floor = max(sku.price_fen // 5, 1)
    terms = rules.Terms(floor_fen=floor, helps_needed=5, min_cut_fen=1, hours=24, stock=50, daily_helps=3,
                        helper_min_age_hours=0, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=90))
    await service.create_campaign(uow, tenant.id, sku_id=sku.id, title=TITLE, terms=terms, actor="system:demo")
