"""What the demo shop shows of group buying: a running campaign with an open team.

The campaign 「演示拼团」 on one demo product runs from an hour ago to a month ahead (moved
on when a start finds it ending within a week); its team is opened by the demo leader
(演示团长), whose order is paid through the sandbox, so a member can join it at once.
A start that finds no team of the leader forming for the next hour opens a new one
(simulated completion: an expired demo team succeeds rather than refunds)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from social_mall.demo import demo_member, pay_demo_order
from social_mall.groupbuy import rules, service
from social_mall.tenants import TenantView
from storage.uow import UnitOfWork

TITLE = "演示拼团：阳光玫瑰葡萄"
PRODUCT = "阳光玫瑰葡萄"
GROUP_PRICE_FEN = 4990
TEAM_SIZE = 3
TEAM_HOURS = 48
RUNS_FOR = timedelta(days=30)
RENEW_WITHIN = timedelta(days=7)
ORDER_TIMEOUT = timedelta(minutes=30)


async def seed(uow: UnitOfWork, tenant: TenantView, now: datetime) -> None:
    r = service.repo(uow)
    row = await r.campaign_titled(tenant.id, TITLE)
    if row is None:
        products, _ = await uow.catalog.products(tenant.id, category_id=None, keyword=PRODUCT, offset=0, limit=1)
        if not products:
            return  # the catalog was changed by hand: nothing to show it on
        skus = await uow.catalog.skus(tenant.id, products[0].id)
        terms = rules.CampaignTerms(
            team_size=TEAM_SIZE, lifetime_hours=TEAM_HOURS, starts_at=now - timedelta(hours=1),
            ends_at=now + RUNS_FOR, max_teams_per_member=0, max_qty=5, leader_discount_fen=500,
            simulated=True)
        campaign = await service.create_campaign(
            uow, tenant.id, product_id=products[0].id, title=TITLE, terms=terms, actor="demo",
            group_prices={s.id: min(GROUP_PRICE_FEN, s.price_fen) for s in skus})
        campaign_id = campaign.id
    else:
        if not row.active:
            return  # the merchant stopped it: so it stays
        campaign_id = row.id
        if row.ends_at - now < RENEW_WITHIN or row.starts_at > now:
            await r.set_campaign_window(tenant.id, row.id, min(row.starts_at, now - timedelta(hours=1)),
                                        now + RUNS_FOR)
    await _open_team(uow, tenant, campaign_id, now)


async def _open_team(uow: UnitOfWork, tenant: TenantView, campaign_id: int, now: datetime) -> None:
    leader, address_id = await demo_member(uow, tenant, "demo_leader", "演示团长")
    for team in await service.leader_teams(uow, tenant.id, leader):
        if (team.campaign_id == campaign_id and team.status == rules.TeamStatus.FORMING
                and team.expires_at > now + timedelta(hours=1)):
            return
    campaign = await service.load_campaign(uow, tenant.id, campaign_id)
    joined = await service.open_team(uow, tenant.id, leader, campaign_id, campaign.prices[0].sku_id, 1,
                                     address_id=address_id, now=now, timeout=ORDER_TIMEOUT, channel="demo")
    await pay_demo_order(uow, tenant, joined.order, now)
    await service.on_order_paid(uow, tenant.id, joined.order.id, now=now)


def wecom_seeder(*, token: str, aes_key: str, webhook_key: str, bot_name: str, webhook_base: str
                 ) -> Callable[[UnitOfWork, TenantView, datetime], Awaitable[None]]:
    """The demo seeder of the WeCom group bot the settings describe (when the tenant has none yet)."""

    async def seed_wecom(uow: UnitOfWork, tenant: TenantView, now: datetime) -> None:
        if await service.wecom_settings(uow, tenant.id) is not None:
            return
        await service.update_wecom_settings(uow, tenant.id, {
            "token": token, "aes_key": aes_key, "webhook_key": webhook_key, "bot_name": bot_name,
        }, webhook_base=webhook_base, actor="settings", now=now)

    return seed_wecom
