"""The `groupbuy` module (拼团): chat flow, share pages and QR images, sweepers and the
subscribers that tie teams to orders and tell every member what happened.

Routes:
  GET /gb/{tenant}/team/{team}              share page of a team (seats, time left, QR to follow)
  GET /groupbuy/qr/{tenant}/{team}.png      QR image (segno) of the official account's temporary
                                            parametric QR with scene gb_<team>; following or
                                            scanning it lands the member on the team's join step
  /wechat/wecom/{tenant}                    the WeCom group channel (handlers/wecom.py)
  /h5/bind/{tenant}?c=…                     the one-time bind link a WeCom member without an
                                            official-account identity gets in the group
                                            (handlers/wecom_bind.py; OAuth from the pay module)

Jobs: groupbuy.expire (forming teams past expiry → failed | simulated success),
groupbuy.refund (failed teams → one refund per paid order through the outbox).

Subscribers: order.paid → confirm the seat (maybe the team succeeds); order.cancelled →
release a held seat (this is how an unpaid seat expires: the order sweeper cancels the
order at ORDER_TIMEOUT, never later than the team's expiry); order.refunded → the seat is
refunded (the last one makes the team refunded); member.entered gb_<team> → noted (the
flow's scene keyword already answered with the join step); member.merged → the merged
member's teams and seats move to the kept member; groupbuy.* → pushes to every member
(customer-service messages) and the WeCom group (robot webhook).
"""

from __future__ import annotations

import logging
from datetime import datetime

from aiohttp import web

from flows import groupbuy as groupbuy_flow
from handlers import wecom, wecom_bind
from handlers.push import UNDELIVERABLE
from handlers.scene_qr import qr_png, scene_qr_url
from handlers.context import SERVICES, Services
from adapters.wechat_client import WeChatAPIError
from social_mall import activity
from social_mall.activity import Activity
from social_mall.errors import NotFoundError
from social_mall.groupbuy import demo, jobs, rules, service
from social_mall.parsing import parse_id
from social_mall.plugins import Delivery, Module, Registry
from social_mall.sharing import share_path
from social_mall.tenants import TenantView

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

NAME = "groupbuy"


async def team_qr_url(svc: Services, tenant: TenantView, team_id: int) -> str:
    """What the team's QR encodes: the parametric QR (scene gb_<team>) of the official
    account `tenant` is seen through (the sharer's), made once per team and account and
    cached (handlers.scene_qr); the share page if WeChat can't be reached."""
    return await scene_qr_url(svc, tenant, rules.team_scene(team_id),
                              groupbuy_flow.share_url(svc, tenant.code, team_id, tenant.account_id))


async def _team(request: web.Request) -> tuple[Services, TenantView, service.TeamView, service.CampaignView]:
    svc = request.app[SERVICES]
    tenant = await svc.tenant(request.match_info["tenant"])
    team_id = parse_id(request.match_info["team"])
    if tenant is None or team_id is None:
        raise web.HTTPNotFound()
    try:
        async with svc.uows() as uow:
            team = await service.load_team(uow, tenant.id, team_id)
            campaign = await service.load_campaign(uow, tenant.id, team.campaign_id)
    except NotFoundError:
        raise web.HTTPNotFound() from None
    return svc, tenant, team, campaign


@routes.get(r"/groupbuy/qr/{tenant}/{team}.png")
async def qr_image(request: web.Request) -> web.Response:
    svc, tenant, team, _ = await _team(request)
    png = qr_png(await team_qr_url(svc, await svc.shared_at(tenant, request), team.id))
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "public, max-age=3600"})


@routes.get(r"/gb/{tenant}/team/{team}")
async def share_page(request: web.Request) -> web.Response:
    svc, tenant, team, campaign = await _team(request)
    if svc.registry.activity_sinks:  # a share opened (the visitor is anonymous here; the leader shared it)
        svc.track(Activity(tenant.id, 0, "h5", activity.SHARE_OPEN, svc.clock(), campaign.product_id,
                           f"gb_{team.id}", {"what": "groupbuy"}))
    html = svc.templates.get_template("h5/groupbuy_team.html").render(
        t=team, c=campaign, now=svc.clock(),
        qr=share_path(f"/groupbuy/qr/{tenant.code}/{team.id}.png", (await svc.shared_at(tenant, request)).account_id))
    return web.Response(text=html, content_type="text/html")


# -- pushes ------------------------------------------------------------------------------------

async def push_members(svc: Services, tenant_id: int, team_id: int, template: str, ctx: dict[str, object],
                       *, skip: int | None = None) -> int:
    """A customer-service text to every official-account member of the team, through the
    account its openid belongs to; a share link in it (`share`) names that account, so
    the QR its page shows follows the account the member talks to."""
    async with svc.uows() as uow:
        members = await service.members_of(uow, tenant_id, team_id)
    page = svc.templates.get_template(template)
    texts: dict[int, str] = {}
    sent = 0
    for m in members:
        target = await svc.push_target(tenant_id, m) if m != skip else None
        if target is None:
            continue
        tenant, openid = target   # through the official account the member's openid belongs to
        if (text := texts.get(tenant.account_id)) is None:
            share = {"share": groupbuy_flow.share_url(svc, tenant.code, team_id, tenant.account_id)} if "share" in ctx else {}
            text = texts[tenant.account_id] = page.render(**(ctx | share)).strip()
        try:
            await svc.wechat(tenant).send_text(openid, text)
            sent += 1
        except WeChatAPIError as exc:
            if exc.errcode not in UNDELIVERABLE:
                raise
            log.info("groupbuy.push.undeliverable", extra={"tenant": tenant.code, "errcode": exc.errcode})
    return sent


async def _facts(svc: Services, tenant_id: int, team_id: int) -> tuple[TenantView, service.TeamView, service.CampaignView]:
    tenant = await svc.tenant_by_id(tenant_id)
    async with svc.uows() as uow:
        team = await service.load_team(uow, tenant_id, team_id)
        campaign = await service.load_campaign(uow, tenant_id, team.campaign_id)
    return tenant, team, campaign


def setup(reg: Registry) -> None:
    svc: Services = reg.services
    reg.add_routes(routes)
    from handlers.api_app_social import groupbuy_routes

    reg.add_routes(groupbuy_routes)  # the member JSON API's paths of this module
    reg.add_routes(wecom.routes)
    reg.add_routes(wecom_bind.routes)
    reg.add_flow(groupbuy_flow.FLOW)
    from handlers.console import pages_groupbuy  # the module's console pages

    pages_groupbuy.register(reg)

    st = svc.settings
    reg.add_demo(demo.seed)
    reg.add_demo(demo.wecom_seeder(  # the demo's WeCom group bot from the settings
        token=st.wecom_token.get_secret_value(), aes_key=st.wecom_aes_key.get_secret_value(),
        webhook_key=st.wecom_webhook_key.get_secret_value(), bot_name=st.wecom_bot_name,
        webhook_base=st.wecom_api_base))

    async def expire() -> dict[str, int]:
        return await jobs.expire_teams(svc.uows, svc.clock())

    async def refund() -> int:
        return await jobs.refund_failed_teams(svc.uows, svc.clock())

    reg.add_job("groupbuy.expire", svc.settings.sweep_interval_seconds, expire)
    reg.add_job("groupbuy.refund", svc.settings.sweep_interval_seconds, refund)

    async def on_paid(d: Delivery) -> None:
        async with svc.uows() as uow:
            await service.on_order_paid(uow, d.tenant_id, int(d.payload["order_id"]), now=svc.clock())
            await uow.commit()

    async def on_cancelled(d: Delivery) -> None:
        async with svc.uows() as uow:
            if await service.on_order_cancelled(uow, d.tenant_id, int(d.payload["order_id"]), now=svc.clock()):
                await uow.commit()

    async def on_refunded(d: Delivery) -> None:
        async with svc.uows() as uow:
            if await service.on_order_refunded(uow, d.tenant_id, int(d.payload["order_id"]),
                                               full=bool(d.payload["full"])):
                await uow.commit()

    async def on_merged(d: Delivery) -> None:
        async with svc.uows() as uow:
            await service.absorb_member(uow, d.tenant_id, int(d.payload["kept_member_id"]),
                                        int(d.payload["merged_member_id"]))
            await uow.commit()

    async def on_entered(d: Delivery) -> None:
        team_id = rules.team_of_scene(str(d.payload.get("scene", "")))
        if team_id is not None:
            log.info("groupbuy.landed", extra={"tenant": d.tenant_id, "team_id": team_id,
                                               "first_time": bool(d.payload.get("first_time"))})

    async def on_confirmed(d: Delivery) -> None:
        p = d.payload
        tenant, team, campaign = await _facts(svc, d.tenant_id, int(p["team_id"]))
        if team.status != rules.TeamStatus.FORMING:
            return  # the result push says it all
        now: datetime = svc.clock()
        hours, minutes = team.time_left(now)
        share = groupbuy_flow.share_url(svc, tenant.code, team.id)
        ctx = {"team_id": team.id, "paid": team.paid, "size": team.size, "missing": team.missing,
               "hours": hours, "minutes": minutes, "share": share}
        await push_members(svc, d.tenant_id, team.id, "chat/groupbuy/push/progress.txt", ctx)
        target = await svc.push_target(d.tenant_id, int(p["member_id"]))
        if target is not None:   # the payer's share card: link + QR image of the team
            via, openid = target   # its link and QR image follow the account it is sent through
            card = svc.templates.get_template("chat/groupbuy/push/share.txt").render(
                title=campaign.title, missing=team.missing, size=team.size, price=campaign.min_group_fen).strip()
            title, _, desc = card.partition("\n")
            try:
                await svc.wechat(via).send_news(openid, [{
                    "title": title, "description": desc,
                    "url": groupbuy_flow.share_url(svc, tenant.code, team.id, via.account_id),
                    "picurl": groupbuy_flow.qr_url(svc, tenant.code, team.id, via.account_id)}])
            except WeChatAPIError as exc:
                if exc.errcode not in UNDELIVERABLE:
                    raise
        await wecom.announce(svc, tenant, team, campaign, now)

    async def on_succeeded(d: Delivery) -> None:
        tenant, team, campaign = await _facts(svc, d.tenant_id, int(d.payload["team_id"]))
        await push_members(svc, d.tenant_id, team.id, "chat/groupbuy/push/succeeded.txt",
                           {"team_id": team.id, "title": campaign.title, "virtual": team.virtual})
        await wecom.announce(svc, tenant, team, campaign, svc.clock())

    async def on_failed(d: Delivery) -> None:
        tenant, team, campaign = await _facts(svc, d.tenant_id, int(d.payload["team_id"]))
        await push_members(svc, d.tenant_id, team.id, "chat/groupbuy/push/failed.txt",
                           {"team_id": team.id, "title": campaign.title})
        await wecom.announce(svc, tenant, team, campaign, svc.clock())

    reg.subscribe("order.paid", "groupbuy.confirm_seat", on_paid)
    reg.subscribe("order.cancelled", "groupbuy.release_seat", on_cancelled)
    reg.subscribe("order.refunded", "groupbuy.seat_refunded", on_refunded)
    reg.subscribe("member.entered", "groupbuy.landed", on_entered)
    reg.subscribe("member.merged", "groupbuy.merge", on_merged)
    reg.subscribe("groupbuy.seat_confirmed", "groupbuy.push_progress", on_confirmed)
    reg.subscribe("groupbuy.team_succeeded", "groupbuy.push_succeeded", on_succeeded)
    reg.subscribe("groupbuy.team_failed", "groupbuy.push_failed", on_failed)


MODULE = Module(NAME, setup, "Group buying (拼团): teams, share QR codes, WeCom group channel, refunds")
