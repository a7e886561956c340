"""The demo shop's seckill: a session at the next full hour (Beijing time), an hour long,
with two items at half price, 10 each, one per member. Seeded again only when the shop
has no session still to come or running (a demo database kept for days gets a new one)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from social_mall.tenants import TenantView
from social_mall_seckill import service
from social_mall_seckill.models import SeckillSession
from storage.models import Sku
from storage.uow import UnitOfWork

SHANGHAI = timezone(timedelta(hours=8))


async def seed(uow: UnitOfWork, tenant: TenantView, now: datetime) -> None:
    ahead = await uow.session.scalar(select(SeckillSession.id).where(
        SeckillSession.tenant_id == tenant.id, SeckillSession.ends_at > now).limit(1))
    if ahead is not None:
        return
    skus = list((await uow.session.scalars(select(Sku).where(
        Sku.tenant_id == tenant.id, Sku.on_shelf.is_(True), Sku.stock >= 20, Sku.price_fen >= 200)
        .order_by(Sku.id).limit(2))).all())
    if len(skus) < 2:
        return
    local = now.astimezone(SHANGHAI)
    start = (local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)).astimezone(timezone.utc)
    title = f"{start.astimezone(SHANGHAI):%H:%M} 场"
    sid = await service.create_session(uow, tenant.id, title, start, start + timedelta(hours=1), 5, now)
    for sku in skus:
        await service.add_item(uow, tenant.id, sid, sku.id, max(1, sku.price_fen // 2), 10, 1)
