"""The real WeChat Pay page (tenants with a pay account; the sandbox page stays in h5.py).

Inside WeChat (MicroMessenger user agent) the page needs the payer's openid: without the
payer cookie it sends the browser through snsapi_base OAuth first (handlers/oauth.py).
Clicking pay POSTs to `/jsapi`, which creates (or reuses) the JSAPI order and answers the
signed parameters for `WeixinJSBridge.invoke("getBrandWCPayRequest", …)`. Outside WeChat
the page offers Native pay: `/native` answers a QR code of the order's code_url.
The order is paid only by a verified notify (or the sweeper's query), never by the page.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta, timezone
from urllib.parse import quote

import segno
from aiohttp import web

from handlers.context import Services
from handlers.oauth import payer_openid
from social_mall.orders.rules import OrderStatus
from social_mall.payments.desk import OpenRequest, open_now
from social_mall.tenants import TenantView
from social_mall.views import OrderView

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

CST = timezone(timedelta(hours=8))
PREPAY_TTL = 100 * 60  # prepay_id lives 2 h at WeChat; reuse it well inside that


def in_wechat(request: web.Request) -> bool:
    return "MicroMessenger" in request.headers.get("User-Agent", "")


def _render(svc: Services, status: int = 200, **ctx: object) -> web.Response:
    html = svc.templates.get_template("h5/pay_wechat.html").render(**ctx)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


async def real_pay_page(request: web.Request, svc: Services, tenant: TenantView, order: OrderView,
                        notes: tuple[str, ...] = ()) -> web.Response:
    payable = order.status == OrderStatus.PENDING_PAYMENT
    mode = "jsapi" if in_wechat(request) else "native"
    if payable and mode == "jsapi" and payer_openid(request, svc, tenant) is None:
        raise web.HTTPFound(f"/h5/oauth/{tenant.code}?next={quote(request.rel_url.raw_path_qs, safe='')}")
    from handlers.h5_address import address_picker

    picker = await address_picker(request, svc, tenant, order) if mode == "jsapi" else None
    return _render(svc, tenant=tenant, order=order, token=request.query.get("t", ""), payable=payable, mode=mode,
                   picker=picker, order_notes=notes)


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _description(tenant: TenantView, order: OrderView) -> str:
    first = order.lines[0].title if order.lines else "商品"
    more = f"等{len(order.lines)}件" if len(order.lines) > 1 else ""
    return f"{tenant.name}-{first}{more}"


async def create_prepay(request: web.Request, svc: Services, tenant: TenantView, order: OrderView,
                        mode: str) -> web.Response:
    """POST …/jsapi | …/native from the pay page (same-origin fetch with a custom header)."""
    if request.headers.get("X-Requested-With") != "social_mall":
        return _json_error(403, "请求无效")
    if order.status != OrderStatus.PENDING_PAYMENT:
        return _json_error(409, "订单已关闭，无法支付。")
    gateway = svc.gateway(tenant)
    openid, extra = "", {}
    if mode == "jsapi":
        openid = payer_openid(request, svc, tenant) or ""
        if not openid:
            return _json_error(401, "请在微信中重新打开支付链接。")
        # the payer's openid is of the app OAuth ran under (the shop's own official account,
        # /h5/oauth/{tenant}); a merchant registered under another app id is told which
        payer_app = (await svc.tenant(tenant.code) or tenant).wechat_app_id
        if payer_app != gateway.appid:
            extra = {"appid": payer_app}
    async with svc.uows() as uow:  # a flash of pay pages opens its payments in lots (payments/desk.py)
        payment = await open_now(uow, OpenRequest(order, gateway.name))
    if payment.status != "created":
        return _json_error(409, "订单已支付。")
    expire = order.expires_at.astimezone(CST).isoformat(timespec="seconds")
    cache = f"pay:{mode}:{tenant.code}:{payment.out_trade_no}:{openid}"
    try:
        value = await svc.kv.get(cache)
        if value is None:
            if mode == "jsapi":
                value = await gateway.jsapi(  # type: ignore[union-attr]
                    out_trade_no=payment.out_trade_no, description=_description(tenant, order),
                    amount_fen=payment.amount_fen, openid=openid, time_expire=expire, **extra)
            else:
                value = await gateway.native(  # type: ignore[union-attr]
                    out_trade_no=payment.out_trade_no, description=_description(tenant, order),
                    amount_fen=payment.amount_fen, time_expire=expire)
            await svc.kv.set(cache, value, ttl=PREPAY_TTL)
    except Exception as exc:  # noqa: BLE001 - the page only needs "try again"; the log has the kind
        log.warning("pay.prepay.failed", extra={"tenant": tenant.code, "order_no": order.order_no,
                                                 "error": getattr(exc, "code", type(exc).__name__)})
        return _json_error(502, "支付暂时不可用，请稍后再试。")
    log.info("pay.prepay.ok", extra={"tenant": tenant.code, "order_no": order.order_no, "mode": mode})
    if mode == "jsapi":
        return web.json_response({"params": gateway.jsapi_params(value, **extra)})  # type: ignore[union-attr]
    svg = segno.make(value, error="m").svg_inline(scale=5)
    return web.json_response({"code_url": value, "qr_svg": svg})


async def _prepay(request: web.Request, mode: str) -> web.Response:
    from handlers.h5 import _order_for
    from social_mall.payments.sandbox import SandboxGateway

    svc, tenant, order = await _order_for(request)
    gateway = svc.gateway(tenant)
    if gateway is None:
        return _json_error(409, "本店暂未开通在线支付，暂时无法付款。")
    if isinstance(gateway, SandboxGateway):
        return _json_error(404, "该店铺使用沙箱支付")
    return await create_prepay(request, svc, tenant, order, mode)


@routes.post("/h5/pay/{tenant}/{order_no}/jsapi")
async def jsapi(request: web.Request) -> web.Response:
    return await _prepay(request, "jsapi")


@routes.post("/h5/pay/{tenant}/{order_no}/native")
async def native(request: web.Request) -> web.Response:
    return await _prepay(request, "native")
