"""Helpers for group-buy tests: a campaign on a demo product, members with addresses."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from social_mall.groupbuy import rules, service
from social_mall.members.service import add_address, resolve_member
from storage.models import Product, Sku

T0 = datetime(2026, 6, 1, 2, 0, tzinfo=timezone.utc)
TIMEOUT = timedelta(minutes=30)


async def make_campaign(uow, tenant_id: int, *, title: str = "丹东草莓", size: int = 3, hours: int = 24,
                        simulated: bool = False, leader_discount_fen: int = 0, max_teams: int = 0,
                        start: datetime = T0, group_fen: int | None = None, leader_reward_fen: int = 0,
                        leader_reward_bp: int = 0) -> service.CampaignView:
    product = await uow.session.scalar(select(Product).where(Product.tenant_id == tenant_id, Product.title == title))
    skus = (await uow.session.scalars(select(Sku).where(Sku.product_id == product.id).order_by(Sku.id))).all()
    prices = {s.id: group_fen or s.price_fen * 8 // 10 for s in skus}
    terms = rules.CampaignTerms(
        team_size=size, lifetime_hours=hours, starts_at=start - timedelta(days=1), ends_at=start + timedelta(days=30),
        max_teams_per_member=max_teams, max_qty=5, leader_discount_fen=leader_discount_fen, simulated=simulated,
        leader_reward_fen=leader_reward_fen, leader_reward_bp=leader_reward_bp)
    return await service.create_campaign(uow, tenant_id, product_id=product.id, title=f"{title}拼团",
                                         terms=terms, group_prices=prices)


async def make_member(uow, tenant_id: int, name: str, *, channel: str = "mp") -> tuple[int, int]:
    """(member id, address id)"""
    member, _ = await resolve_member(uow, tenant_id, channel, name)
    addr = await add_address(uow, tenant_id, member.id, "王小明", "13912345678", "深圳市南山区科技园1号")
    return member.id, addr.id


async def make_members(uows, tenant_id: int, n: int, prefix: str = "o_gb_") -> list[tuple[int, int]]:
    """n members with an address each, committed: [(member id, address id)]."""
    async with uows() as uow:
        out = [await make_member(uow, tenant_id, f"{prefix}{i:04d}") for i in range(n)]
        await uow.commit()
    return out


async def open_team(uows, tenant_id: int, campaign: service.CampaignView, member: tuple[int, int], *,
                    now: datetime = T0) -> service.JoinResult:
    """`member` opens a team of `campaign` on its first SKU, committed."""
    async with uows() as uow:
        r = await service.open_team(uow, tenant_id, member[0], campaign.id, campaign.prices[0].sku_id, 1,
                                    address_id=member[1], now=now, timeout=TIMEOUT)
        await uow.commit()
    return r
