"""The one-time bind link of a WeCom group member (module `groupbuy`): it ties their WeCom
identity to their official-account member, so they pay, see the order and get the pushes
there (WeCom gives no unionid for many group members).

    GET  /h5/bind/{tenant}?c=<link>   the link from the group (flows/groupbuy_group.py). Unknown,
                                      used or expired → an error page, nothing changes. Inside
                                      WeChat without the signed payer cookie → snsapi_base OAuth
                                      (handlers/oauth.py, the pay module) and back here; then a
                                      confirmation page naming the WeCom member the link is for.
    POST /h5/bind/{tenant}            「确认绑定」: spends the link and links the openid (merging the
                                      two members when both exist: social_mall/members/linking.py),
                                      then says it's done and what next: the pay link of their
                                      pending team order(s), or 「回到群里继续参团」.

The link is posted in the group, so anyone there could open it: the confirmation page says
whose it is, it lives 10 minutes and works once. The form carries an HMAC of (link, openid)
and the POST needs the payer cookie (HttpOnly, SameSite=Lax: never sent by a cross-site POST).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from urllib.parse import quote

from aiohttp import web

from handlers.context import Services, shop_of
from handlers.http_utils import read_form
from handlers.oauth import payer_openid
from handlers.pay_h5 import in_wechat
from social_mall.errors import MallError
from social_mall.groupbuy import service as groupbuy
from social_mall.loyalty.merge import merge_members
from social_mall.members import linking
from social_mall.parsing import same_secret
from social_mall.tenants import TenantView

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

LINKED_CHANNEL = "mp"

ERRORS: dict[str, tuple[int, str, str]] = {
    "link_unknown": (404, "链接无效", "这个绑定链接不存在。请在群里发送「绑定」获取新的链接。"),
    "link_used": (410, "链接已使用", "这个绑定链接已经用过了，每个链接只能用一次。"
                                   "如果还没绑定成功，请在群里发送「绑定」获取新的链接。"),
    "link_expired": (410, "链接已过期", "这个绑定链接已过期（10 分钟内有效）。请在群里发送「绑定」获取新的链接。"),
    "link_conflict": (409, "无法绑定", "这个企业微信身份或当前微信号已经关联了其他账号，无法再绑定。如有疑问请联系团长或客服。"),
    "merge_refused": (409, "无法绑定", "这两个账号已经合并过，无法再次绑定。"),
}


def render(svc: Services, status: int = 200, **ctx: object) -> web.Response:
    html = svc.templates.get_template("h5/bind.html").render(**ctx)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def error_page(svc: Services, tenant: TenantView, exc: MallError) -> web.Response:
    status, title, text = next((ERRORS[c] for c in (getattr(k, "code", "") for k in type(exc).__mro__)
                                if c in ERRORS), (400, "无法绑定", "绑定没有完成，请稍后再试。"))
    return render(svc, status, tenant=tenant, mode="error", title=title, text=text)


def form_mac(svc: Services, tenant: TenantView, token: str, openid: str) -> str:
    key = svc.settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"bind:{tenant.code}:{token}:{openid}".encode(), hashlib.sha256).hexdigest()[:32]


@routes.get("/h5/bind/{tenant}")
async def bind_page(request: web.Request) -> web.Response:
    svc, tenant = await shop_of(request)
    token = request.query.get("c", "")
    try:
        async with svc.uows() as uow:
            link = await linking.peek_link(uow, tenant.id, token, svc.clock())
    except linking.LinkError as exc:
        return error_page(svc, tenant, exc)
    openid = payer_openid(request, svc, tenant)
    if openid is None:
        if not in_wechat(request):
            return render(svc, tenant=tenant, mode="wechat_only")
        raise web.HTTPFound(f"/h5/oauth/{tenant.code}?next={quote(request.rel_url.raw_path_qs, safe='')}")
    return render(svc, tenant=tenant, mode="confirm", who=link.external_id, token=token,
                  mac=form_mac(svc, tenant, token, openid), minutes=int(linking.LINK_TTL.total_seconds() // 60))


@routes.post("/h5/bind/{tenant}")
async def bind_confirm(request: web.Request) -> web.Response:
    svc, tenant = await shop_of(request)
    form = await read_form(request)
    token, mac = str(form.get("c", "")), str(form.get("f", ""))
    openid = payer_openid(request, svc, tenant)
    if openid is None or not same_secret(mac, form_mac(svc, tenant, token, openid)):
        return render(svc, 403, tenant=tenant, mode="error", title="请重新打开链接",
                      text="页面已失效，请回到群里重新打开绑定链接。")
    now = svc.clock()
    try:
        async with svc.uows() as uow:
            try:
                result = await linking.redeem_link(uow, tenant.id, token, channel=LINKED_CHANNEL,
                                                   external_id=openid, now=now, merge=merge_members)
                pending = await groupbuy.unpaid_orders(uow, tenant.id, result.member_id)
                await uow.commit()
            except MallError:
                await uow.rollback()
                raise
    except MallError as exc:
        log.info("bind.refused", extra={"tenant": tenant.code, "code": getattr(exc, "code", "")})
        return error_page(svc, tenant, exc)
    svc.outbox.kick()
    log.info("bind.done", extra={"tenant": tenant.code, "outcome": result.outcome.value,
                                 "member_id": result.member_id})
    pays = [(team_id, order, await svc.pay_link(tenant.code, order.order_no)) for team_id, order in pending]
    return render(svc, tenant=tenant, mode="done", outcome=result.outcome.value, pays=pays)
