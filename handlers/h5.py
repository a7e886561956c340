"""H5 pages opened from chat links: the pay page (sandbox: a 确认支付 button that makes
the sandbox platform send a real signed notify) and a product page."""

from __future__ import annotations

import json
import logging
import time

import jinja2
from aiohttp import web

from handlers.context import SERVICES, Services
from social_mall import activity
from social_mall.activity import Activity
from social_mall.catalog.service import product_detail
from social_mall.catalog.visibility import hidden_products
from social_mall.errors import NotFoundError
from social_mall.members.service import channel_identity
from social_mall.orders.notes import order_notes
from social_mall.orders.rules import SHANGHAI, OrderStatus
from social_mall.orders.service import find_order
from social_mall.parsing import parse_id, same_secret
from social_mall.payments.desk import OpenRequest, open_now
from social_mall.payments.sandbox import SandboxGateway
from social_mall.tenants import TenantView
from social_mall.views import OrderView

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def render(svc: Services, name: str, status: int = 200, **ctx: object) -> web.Response:
    html = svc.templates.get_template(name).render(**ctx)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


async def _order_for(request: web.Request) -> tuple[Services, TenantView, OrderView]:
    svc = request.app[SERVICES]
    tenant = await svc.tenant(request.match_info["tenant"])
    order_no = request.match_info["order_no"]
    if tenant is None:
        raise web.HTTPNotFound(text="店铺不存在")
    token = request.query.get("t", "")
    if not same_secret(token, svc.pay_token(tenant.code, order_no)):
        raise web.HTTPForbidden(text="链接无效")
    try:
        async with svc.uows() as uow:
            order = await find_order(uow, tenant.id, order_no)
    except NotFoundError:
        raise web.HTTPNotFound(text="订单不存在") from None
    # the account it was placed through (its app id for OAuth) and the merchant it is paid to
    return svc, await svc.for_order(tenant, order.channel_account_id, order.pay_account_id), order


async def notes_for(svc: Services, tenant: TenantView, order: OrderView) -> tuple[str, ...]:
    """The modules' lines under this order (social_mall/orders/notes.py; none registered: no query)."""
    if not svc.registry.order_notes:
        return ()
    async with svc.uows() as uow:
        return await order_notes(uow, tenant.id, order)


def unavailable_page(svc: Services, tenant: TenantView, order: OrderView, status: int = 200,
                     notes: tuple[str, ...] = ()) -> web.Response:
    """The tenant has no payment method: say so (and what happens to the order) instead of
    offering a way to pay."""
    return render(svc, "h5/pay.html", status=status, tenant=tenant, order=order, token="", payable=False,
                  unavailable=order.status == OrderStatus.PENDING_PAYMENT, error="", order_notes=notes)


@routes.get("/h5/pay/{tenant}/{order_no}")
async def pay_page(request: web.Request) -> web.Response:
    svc, tenant, order = await _order_for(request)
    notes = await notes_for(svc, tenant, order)
    gateway = svc.gateway(tenant)
    if gateway is None or gateway.name == "unavailable":
        return unavailable_page(svc, tenant, order, notes=notes)
    if not isinstance(gateway, SandboxGateway):  # a real WeChat Pay account
        from handlers.pay_h5 import real_pay_page

        return await real_pay_page(request, svc, tenant, order, notes=notes)
    from handlers.h5_address import address_picker

    return render(
        svc, "h5/pay.html", tenant=tenant, order=order, token=request.query["t"],
        payable=order.status == OrderStatus.PENDING_PAYMENT, unavailable=False,
        error=request.query.get("error", ""), picker=await address_picker(request, svc, tenant, order),
        order_notes=notes,
    )


@routes.post("/h5/pay/{tenant}/{order_no}/confirm")
async def sandbox_confirm(request: web.Request) -> web.Response:
    """The sandbox's 确认支付: the platform side signs and encrypts a notify and POSTs it
    to our own notify endpoint over HTTP, exactly as WeChat Pay would."""
    svc, tenant, order = await _order_for(request)
    back = f"/h5/pay/{tenant.code}/{order.order_no}?t={request.query['t']}"
    gateway = svc.gateway(tenant)
    if not isinstance(gateway, SandboxGateway):  # no payment method, or a real one: nothing to confirm here
        log.warning("sandbox.confirm.refused", extra={"tenant": tenant.code, "gateway": getattr(gateway, "name", "")})
        if gateway is None or gateway.name == "unavailable":
            return unavailable_page(svc, tenant, order, status=403)
        raise web.HTTPForbidden(text="该店铺使用微信支付")
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise web.HTTPSeeOther(back)
    async with svc.uows() as uow:
        payment = await open_now(uow, OpenRequest(order, "sandbox"))   # in lots, as the real pay page
        payer = await channel_identity(uow, tenant.id, order.member_id, "mp") or f"sandbox-{order.member_id}"
        await uow.commit()
    headers, body = gateway.pay_notify(
        out_trade_no=payment.out_trade_no, amount_fen=payment.amount_fen, payer=payer, now=time.time()
    )
    async with svc.http.post(
        svc.notify_url(tenant.code), data=body, headers={**headers, "Content-Type": "application/json"}
    ) as resp:
        ok = resp.status in (200, 204)
        if not ok:
            log.warning("sandbox.notify.refused", extra={"status": resp.status})
    raise web.HTTPSeeOther(back if ok else back + "&error=1")


@routes.get(r"/h5/product/{tenant}/{pid:\d+}")
async def product_page(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    tenant = await svc.tenant(request.match_info["tenant"])
    if tenant is None:
        raise web.HTTPNotFound(text="店铺不存在")
    pid = parse_id(request.match_info["pid"])
    if pid is None:
        raise web.HTTPNotFound(text="商品不存在")
    try:
        async with svc.uows() as uow:
            # the page knows no member: products kept from some members are not shown (a visitor's view)
            product = await product_detail(uow, tenant.id, pid, hidden=await hidden_products(uow, tenant.id, None))
            notes = [n for n in [await note(uow, tenant.id, pid) for note in svc.registry.card_notes] if n]
    except NotFoundError:
        raise web.HTTPNotFound(text="商品不存在") from None
    if svc.registry.activity_sinks:  # an anonymous view (the page knows no member)
        src = request.query.get("src", "")[:64]
        svc.track(Activity(tenant.id, 0, "h5", activity.PRODUCT_VIEW, svc.clock(), pid,
                           src if src.isascii() and src.isprintable() else ""))
    return render(svc, "h5/product.html", tenant=tenant, product=product, image=svc.image_url(product.image),
                  notes=[n.splitlines() for n in notes])  # the modules' card notes (reviews…), as on the chat card


@routes.get("/h5/order-status/{tenant}/{order_no}")
async def order_status(request: web.Request) -> web.Response:
    """Polled by the pay page after paying (JSON)."""
    _, _, order = await _order_for(request)
    return web.Response(text=json.dumps({"status": order.status}), content_type="application/json")


STATUS_ZH = {
    "pending_payment": "待付款", "paid": "已付款", "shipped": "已发货", "completed": "已完成",
    "cancelled": "已取消", "refund_requested": "退款中", "refunded": "已退款",
}


def install_filters(env: jinja2.Environment) -> None:
    """Filters the H5 pages use (the chat environment may already define some)."""
    env.filters.setdefault("yuan", lambda fen: f"¥{int(fen) // 100}.{int(fen) % 100:02d}")
    env.filters.setdefault("cst", lambda dt: dt.astimezone(SHANGHAI).strftime("%m-%d %H:%M"))
    env.filters.setdefault("status_zh", lambda s: STATUS_ZH.get(str(s), str(s)))
