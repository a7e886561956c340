"""Helpers for the bargain module's tests: a campaign on a demo SKU, members who followed
long enough ago, and a snapshot of everything a help may write."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from social_mall.members.service import resolve_member
from social_mall_bargain import rules, service
from social_mall_bargain.models import Bargain, BargainCampaign, BargainHelp, BargainHelpDay
from storage.models import AuditEntry, MemberIdentity, OutboxEvent, Product, Sku


async def demo_sku(uow, tenant_id: int, title: str = "丹东草莓") -> Sku:
    product = await uow.session.scalar(select(Product).where(Product.tenant_id == tenant_id, Product.title == title))
    return (await uow.session.scalars(select(Sku).where(Sku.product_id == product.id).order_by(Sku.id))).first()


async def make_campaign(uow, tenant_id: int, now: datetime, *, helps: int = 3, floor_fen: int | None = None,
                        daily: int = 3, age_hours: int = 24, stock: int = 10, hours: int = 24,
                        min_cut_fen: int = 1) -> service.CampaignView:
    sku = await demo_sku(uow, tenant_id)
    terms = rules.Terms(floor_fen=floor_fen or sku.price_fen // 4, helps_needed=helps, min_cut_fen=min_cut_fen,
                        hours=hours, stock=stock, daily_helps=daily, helper_min_age_hours=age_hours,
                        starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=30))
    return await service.create_campaign(uow, tenant_id, sku_id=sku.id, title="草莓砍价", terms=terms,
                                         actor="admin:test")


async def follower(uow, tenant_id: int, openid: str, since: datetime) -> int:
    """A member with an official-account identity first seen at `since`."""
    member, _ = await resolve_member(uow, tenant_id, "mp", openid)
    await backdate(uow, tenant_id, member.id, since)
    return member.id


async def backdate(uow, tenant_id: int, member_id: int, since: datetime) -> None:
    await uow.session.execute(update(MemberIdentity).where(
        MemberIdentity.tenant_id == tenant_id, MemberIdentity.member_id == member_id).values(created_at=since))


async def snapshot(uow, tenant_id: int) -> tuple[object, ...]:
    """Everything a help, a start or a purchase writes (a refusal must leave all of it)."""
    s = uow.session
    bargains = (await s.execute(select(Bargain.id, Bargain.price_fen, Bargain.helps, Bargain.status, Bargain.order_id)
                                .where(Bargain.tenant_id == tenant_id).order_by(Bargain.id))).all()
    helps = (await s.execute(select(BargainHelp.bargain_id, BargainHelp.helper_member_id, BargainHelp.cut_fen)
                             .where(BargainHelp.tenant_id == tenant_id).order_by(BargainHelp.id))).all()
    days = (await s.execute(select(BargainHelpDay.member_id, BargainHelpDay.n).where(
        BargainHelpDay.tenant_id == tenant_id).order_by(BargainHelpDay.id))).all()
    stock = (await s.execute(select(BargainCampaign.id, BargainCampaign.stock).where(
        BargainCampaign.tenant_id == tenant_id).order_by(BargainCampaign.id))).all()
    audits = await s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("bargain.%")))
    events = await s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.topic.like("bargain.%")))
    return tuple(bargains), tuple(helps), tuple(days), tuple(stock), audits, events
