"""The `referral` module (分销): share links and official-account QR codes, binding on
`ref_<code>` scenes, frozen commissions on paid orders, reversals on refunds, the
unfreeze sweeper, withdrawals paid out through the gateway's transfer API, and the
pushes that tell distributors what happened.

Routes:
  GET /r/{tenant}/{code}[?p=<product id>]      landing page of a share link / card: records
                                               the binding intent (cookie) and shows the QR
                                               to follow through
  GET /referral/qr/{tenant}/{code}.png         the distributor's QR image (segno), encoding the
                                               official account's permanent QR (scene ref_<code>)

Events: member.entered (bind on a ref_ scene), order.paid/refunded/completed (commissions,
reversals, the freeze clock), member.merged (social_mall/referral/merge.py: the merged
member's referral state becomes the kept member's), referral.payout_due (the transfer).

Jobs: referral.unfreeze, and referral.payout_sweep: payouts the gateway left under way
(ACCEPTED, PROCESSING, WAIT_USER_CONFIRM, …) are asked about again by out_bill_no until
final, and settled once (`sweep_payouts`).

Admin actions (approve/reject distributors and withdrawals, adjustments, settings, levels,
product rates, reconciliation) are services in social_mall/referral/service.py for the
console to call.
"""

from __future__ import annotations

import io
import logging
from dataclasses import replace

import segno
from aiohttp import web

from flows import referral as referral_flow
from handlers.push import UNDELIVERABLE, push_to_member
from handlers.context import SERVICES, Services
from adapters.wechat_client import WeChatAPIError
from social_mall import activity
from social_mall.activity import Activity
from social_mall.catalog.service import product_detail
from social_mall.errors import MallError, NotFoundError
from social_mall.members.service import identities_on
from social_mall.parsing import parse_id
from social_mall.payments.gateway import PayGateway
from social_mall.payments.sandbox import SandboxGateway
from social_mall.payments.wxpay_v3 import PayNotifyError
from social_mall.plugins import Delivery, Module, Registry
from social_mall.referral import demo, merge, rules, service
from social_mall.sharing import share_path
from social_mall.tenants import TenantView
from social_mall.views import ProductDetail
from social_mall.kv import LockTimeoutError

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

INTENT_COOKIE = "sm_ref"
QR_RESEND_SECONDS = 24 * 3600
MEDIA_TTL = 2 * 24 * 3600          # temporary media lives 3 days at WeChat
NAME = "referral"


# -- QR codes ------------------------------------------------------------------------------

async def oa_qr_url(svc: Services, tenant: TenantView, d: service.DistributorView) -> str:
    """What the distributor's QR encodes: the official account's permanent parametric QR
    (scene ref_<code>), made once per official account and kept: `tenant` seen through the
    account (`tenant.account_id`, 0: the primary), whose token makes it, so following it
    follows that account; the share link when WeChat can't be reached."""
    account = tenant.account_id

    async def known() -> str:
        async with svc.uows() as uow:
            return await service.qr_url(uow, tenant.id, d.id, account=account)

    if url := await known():
        return url
    try:
        async with svc.kv.lock(f"refqr_make:{_at(tenant)}:{d.code}", ttl=30.0, wait=30.0):
            if url := await known():      # another worker made it while we waited
                return url
            qr = await svc.wechat(tenant).create_qrcode(d.scene, None)
            async with svc.uows() as uow:
                await service.set_qr_url(uow, tenant.id, d.id, qr["url"], account=account, now=svc.clock())
                await uow.commit()
            return qr["url"]
    except (WeChatAPIError, LockTimeoutError) as exc:
        log.warning("referral.qr.failed", extra={"tenant": tenant.code, "error": type(exc).__name__})
        return svc.image_url(share_path(f"/r/{tenant.code}/{d.code}", tenant.account_id))


def _at(tenant: TenantView) -> str:
    """The tenant's code, and the official account's when it is not the primary (kv keys)."""
    return f"{tenant.code}:{tenant.account_id}" if tenant.account_id else tenant.code


# -- payouts --------------------------------------------------------------------------------

Route = tuple[SandboxGateway | PayGateway | None, str | None, int, str | None]


async def payout_route(svc: Services, tenant: TenantView, member_id: int, merchant: int | None = None) -> Route:
    """The gateway, openid, merchant (0: the tenant's default) and app id a payout to the
    member goes through. An openid is valid only with its own official account's app id,
    so the transfer names that app id: the merchant of an account the member has an openid
    at whose own app id is that account's (the primary account first); else the first
    openid's account's merchant (its own, or the default for an account linked to none),
    naming the account's app id — WeChat Pay takes it when the merchant has that app id
    bound (商户号绑定AppID) and refuses it otherwise (APPID_MCHID_NOT_MATCH: the payout
    fails and the hold returns). `merchant` (chosen for this payout before): that
    merchant, the same way."""
    async with svc.uows() as uow:
        mine = await identities_on(uow, tenant.id, member_id, "mp")
    first: Route | None = None
    for account, openid in mine:
        view = await svc.channel_by_id(tenant, account)
        if merchant is not None:
            view = replace(view, merchant_id=merchant)
        gateway = svc.gateway(view)
        if gateway is None:
            continue
        route: Route = (gateway, openid, view.merchant_id, view.wechat_app_id)
        if gateway.appid == view.wechat_app_id:
            return route
        first = first or route
    if first is not None:
        return first
    view = tenant if merchant is None else replace(tenant, merchant_id=merchant)
    return svc.gateway(view), None, view.merchant_id, None


async def sweep_payouts(svc: Services, *, limit: int = 100) -> int:
    """Ask the gateway about every approved withdrawal's payout (商家转账单 by out_bill_no),
    the longest unchecked first, and apply the answer: SUCCESS → paid, FAIL / CANCELLED →
    failed with the hold returned (each exactly once: a conditional move, so several workers
    sweeping together settle it once), anything else → its state and the time are noted for
    the console. Returns how many payouts were asked about."""
    async with svc.uows() as uow:
        due = await service.payouts_in_flight(uow, limit=limit)
    asked = 0
    for tenant_id, out_bill_no in due:
        tenant = await svc.tenant_by_id(tenant_id)
        async with svc.uows() as uow:
            w = await service.withdrawal_by_bill(uow, tenant_id, out_bill_no)
        if w is not None and w.payout_merchant_id:    # asked where it was sent
            tenant = replace(tenant, merchant_id=w.payout_merchant_id)
        gateway = svc.gateway(tenant)
        if gateway is None:  # no payment method left: the payout can't be looked up (nor was sent)
            log.warning("referral.payout.no_pay_method", extra={"tenant": tenant.code, "out_bill_no": out_bill_no})
            continue
        try:
            bill = await gateway.query_transfer(out_bill_no)
        except MallError as exc:  # unreachable, refused, misconfigured: ask again next time
            log.warning("referral.payout.query_failed", extra={"tenant": tenant.code, "out_bill_no": out_bill_no,
                                                               "error": exc.code})
            continue
        asked += 1
        async with svc.uows() as uow:
            settled = await service.check_payout(uow, tenant.id, out_bill_no, state=bill.state,
                                                 amount_fen=bill.amount_fen, transfer_id=bill.transfer_id,
                                                 reason=bill.fail_reason, now=svc.clock())
            await uow.commit()
        log.info("referral.payout.checked", extra={"tenant": tenant.code, "out_bill_no": out_bill_no,
                                                   "state": bill.state, "settled": settled})
    if asked:
        svc.outbox.kick()
    return asked


def qr_png(data: str) -> bytes:
    buf = io.BytesIO()
    segno.make(data, error="m").save(buf, kind="png", scale=8, border=2)
    return buf.getvalue()


async def _approved(svc: Services, tenant_code: str, code: str) -> tuple[TenantView, service.DistributorView]:
    tenant = await svc.tenant(tenant_code)
    if tenant is None:
        raise web.HTTPNotFound(text="店铺不存在")
    if not rules.CODE_RE.fullmatch(code.lower()):
        raise web.HTTPNotFound(text="推广链接无效")
    async with svc.uows() as uow:
        d = await service.distributor_by_code(uow, tenant.id, code)
    if d is None or d.status != rules.DistributorStatus.APPROVED:
        raise web.HTTPNotFound(text="推广链接无效或已失效")
    return tenant, d


@routes.get(r"/referral/qr/{tenant}/{code}.png")
async def qr_image(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    tenant, d = await _approved(svc, request.match_info["tenant"], request.match_info["code"])
    png = qr_png(await oa_qr_url(svc, await svc.shared_at(tenant, request), d))
    return web.Response(body=png, content_type="image/png",
                        headers={"Cache-Control": "public, max-age=3600"})


@routes.get(r"/r/{tenant}/{code}")
async def landing(request: web.Request) -> web.Response:
    """A share link or product share card: remember whose link it was (cookie, for the
    H5 pages: `binding_intent`), and show the QR that binds when followed."""
    svc = request.app[SERVICES]
    tenant, d = await _approved(svc, request.match_info["tenant"], request.match_info["code"])
    product: ProductDetail | None = None
    pid = parse_id(request.query.get("p", ""))
    if pid is not None:
        try:
            async with svc.uows() as uow:
                product = await product_detail(uow, tenant.id, pid)
        except NotFoundError:
            product = None
    async with svc.uows() as uow:
        settings = await service.program(uow, tenant.id)
    html = svc.templates.get_template("h5/referral.html").render(
        tenant=tenant, code=d.code, product=product,
        image=svc.image_url(product.image) if product and product.image else "",
        qr=share_path(f"/referral/qr/{tenant.code}/{d.code}.png", (await svc.shared_at(tenant, request)).account_id),
    )
    if svc.registry.activity_sinks:  # a share opened (the visitor is anonymous here; the sharer is the code's)
        svc.track(Activity(tenant.id, 0, "h5", activity.SHARE_OPEN, svc.clock(), product.id if product else 0,
                           f"ref_{d.code}", {"what": "product" if product else "referral"}))
    resp = web.Response(text=html, content_type="text/html", charset="utf-8")
    days = settings.lifetime_days or 365
    resp.set_cookie(f"{INTENT_COOKIE}_{tenant.code}", d.code, max_age=days * 86400, httponly=True,
                    samesite="Lax", path="/")
    return resp


def binding_intent(request: web.Request, tenant_code: str) -> str | None:
    """The distributor code an H5 visitor arrived through (for H5 pages that know the
    member, e.g. after OAuth: pass it to `service.bind_member(..., source="link")`)."""
    code = request.cookies.get(f"{INTENT_COOKIE}_{tenant_code}", "").lower()
    return code if rules.CODE_RE.fullmatch(code) else None


# -- the module ------------------------------------------------------------------------------

def setup(reg: Registry) -> None:
    svc: Services = reg.services
    reg.add_routes(routes)
    from handlers.api_app_social import referral_routes

    reg.add_routes(referral_routes)  # the member JSON API's paths of this module
    reg.add_flow(referral_flow.FLOW)
    reg.add_demo(demo.seed)
    from handlers.console import pages_referral  # the module's console pages

    pages_referral.register(reg)

    async def push(d: Delivery, template: str) -> None:
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), template, d.payload)

    async def on_entered(d: Delivery) -> None:
        code = rules.scene_code(str(d.payload.get("scene", "")))
        if code is None:
            return
        async with svc.uows() as uow:
            await service.bind_member(uow, d.tenant_id, int(d.payload["member_id"]), code, source="qr",
                                      now=svc.clock())
            await uow.commit()

    async def on_paid(d: Delivery) -> None:
        async with svc.uows() as uow:
            await service.record_commissions(uow, d.tenant_id, int(d.payload["order_id"]), now=svc.clock())
            await uow.commit()

    async def on_refunded(d: Delivery) -> None:
        """Reverse against the order's refunded total as it is now (any delivery order)."""
        async with svc.uows() as uow:
            await service.reverse_for_refund(uow, d.tenant_id, int(d.payload["order_id"]), now=svc.clock())
            await uow.commit()

    async def on_team_succeeded(d: Delivery) -> None:
        """A group-buy team succeeded: its leader's reward (团长奖励), if its campaign pays one,
        goes into the ledger (once per team: unique per order)."""
        from social_mall.groupbuy.service import leader_reward

        async with svc.uows() as uow:
            reward = await leader_reward(uow, d.tenant_id, int(d.payload["team_id"]))
            if reward is None:
                return
            await service.record_leader_reward(
                uow, d.tenant_id, team_id=reward.team_id, leader_member_id=reward.leader_member_id,
                order_ids=reward.order_ids, fixed_fen=reward.fixed_fen, rate_bp=reward.rate_bp, now=svc.clock())
            await uow.commit()

    async def on_completed(d: Delivery) -> None:
        async with svc.uows() as uow:
            await service.schedule_unfreeze(uow, d.tenant_id, int(d.payload["order_id"]), completed_at=svc.clock())
            await uow.commit()

    async def on_merged(d: Delivery) -> None:
        """Two members are one person: the merged one's bindings, downline, distributor
        record, commissions and withdrawals become the kept one's (once per merge)."""
        async with svc.uows() as uow:
            await merge.absorb_member(uow, d.tenant_id, int(d.payload["kept_member_id"]),
                                      int(d.payload["merged_member_id"]), now=svc.clock())
            await uow.commit()

    async def send_qr(d: Delivery) -> None:
        async with svc.uows() as uow:
            dist = await service.distributor_by_code(uow, d.tenant_id, str(d.payload["code"]))
        # through the member's own official account (its token, its openid): the image is
        # uploaded there and the QR is that account's, so following it follows that account
        target = await svc.push_target(d.tenant_id, int(d.payload["member_id"]),
                                       account=int(d.payload.get("account_id", 0)))
        if target is None or dist is None:
            return
        tenant, openid = target
        client = svc.wechat(tenant)
        key, sent = f"refqr:{_at(tenant)}:{dist.code}", f"refqr_sent:{tenant.code}:{dist.code}"
        if not d.payload.get("explicit", True) and await svc.kv.get(sent):
            return  # 「我的推广」 shows the QR once a day; 「推广码」 always sends it
        try:
            media_id = await svc.kv.get(key)
            if not media_id:
                media_id = await client.upload_image(qr_png(await oa_qr_url(svc, tenant, dist)), f"ref_{dist.code}.png")
                await svc.kv.set(key, media_id, ttl=MEDIA_TTL)
            await client.send_image(openid, media_id)
            await svc.kv.set(sent, "1", ttl=QR_RESEND_SECONDS)
        except WeChatAPIError as exc:
            if exc.errcode == 40007:          # the cached media expired: upload again next time
                await svc.kv.delete(key)
                raise
            if exc.errcode not in UNDELIVERABLE:
                raise
            log.info("referral.qr.undeliverable", extra={"tenant": tenant.code, "errcode": exc.errcode})

    async def pay_out(d: Delivery) -> None:
        """Transfer an approved withdrawal; the gateway's answer is applied exactly once
        (a retried delivery re-sends the same out_bill_no to the same merchant, which
        dedupes it)."""
        p = d.payload
        tenant = await svc.tenant_by_id(d.tenant_id)
        async with svc.uows() as uow:
            # the withdrawal's member now, not when approved: a member merge since then
            # moved the identities (and the withdrawal) to the kept member
            w = await service.withdrawal_by_bill(uow, d.tenant_id, str(p["out_bill_no"]))
            member_id = w.member_id if w is not None else int(p["member_id"])
            chosen = w.payout_merchant_id if w is not None else None
        gateway, openid, merchant, appid = await payout_route(svc, tenant, member_id, chosen)
        if w is not None and chosen is None and gateway is not None and openid:
            async with svc.uows() as uow:   # kept before sending: a retry goes to the same merchant
                kept = await service.choose_payout_merchant(uow, d.tenant_id, w.id, merchant)
                await uow.commit()
            if kept != merchant:            # another worker chose first: send where it did
                gateway, openid, merchant, appid = await payout_route(svc, tenant, member_id, kept)
        status, transfer_id, reason = "FAIL", "", "no_openid"
        if gateway is None:               # no payment method: nothing can be paid out
            reason = "no_pay_method"
        elif openid:
            try:
                result = await gateway.transfer(
                    out_bill_no=str(p["out_bill_no"]), openid=openid, amount_fen=int(p["amount_fen"]),
                    remark="佣金提现", appid=appid)
                status, transfer_id, reason = result.status, result.transfer_id, ""
            except PayNotifyError as exc:     # refused as malformed: will never succeed
                status, reason = "FAIL", exc.code
        async with svc.uows() as uow:
            await service.apply_payout(uow, str(p["out_bill_no"]), status=status, transfer_id=transfer_id,
                                       reason=reason, now=svc.clock())
            await uow.commit()

    async def push_commission(d: Delivery) -> None:
        await push(d, "chat/referral/push/commission_earned.txt")

    async def push_decided(d: Delivery) -> None:
        if not d.payload.get("auto"):  # an instant approval was answered in the chat already
            await push(d, "chat/referral/push/distributor_decided.txt")

    async def push_settled(d: Delivery) -> None:
        await push(d, "chat/referral/push/withdrawal_settled.txt")

    async def unfreeze() -> int:
        return await service.unfreeze_due(svc.uows, now=svc.clock())

    reg.subscribe("member.entered", "referral.bind", on_entered)
    reg.subscribe("order.paid", "referral.commission", on_paid)
    reg.subscribe("order.refunded", "referral.reverse", on_refunded)
    reg.subscribe("order.completed", "referral.schedule_unfreeze", on_completed)
    reg.subscribe("groupbuy.team_succeeded", "referral.leader_reward", on_team_succeeded)
    reg.subscribe("member.merged", "referral.merge", on_merged)
    reg.subscribe("referral.qr_requested", "referral.send_qr", send_qr)
    reg.subscribe("referral.payout_due", "referral.pay_out", pay_out)
    reg.subscribe("referral.commission_earned", "referral.push_commission", push_commission)
    reg.subscribe("referral.distributor_decided", "referral.push_decided", push_decided)
    reg.subscribe("referral.withdrawal_settled", "referral.push_settled", push_settled)
    reg.add_job("referral.unfreeze", svc.settings.sweep_interval_seconds * 10, unfreeze)

    async def payout_sweep() -> int:
        return await sweep_payouts(svc)

    reg.add_job("referral.payout_sweep", svc.settings.payout_sweep_interval_seconds, payout_sweep)


MODULE = Module(NAME, setup, "Referral distribution: share links and QR codes, commissions, withdrawals")
