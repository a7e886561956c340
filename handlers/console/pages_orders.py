"""Orders: filter, detail, ship (the buyer gets a push), refund (with a confirmation
step), CSV export (streamed)."""

from __future__ import annotations

from aiohttp import web

from handlers.console.core import (
    admin_of, can, console_view, form_of, int_id, page_number, render, redirect, services, stream_csv, tenant_of,
)
from social_mall.console import orders as adm
from social_mall.console import rules
from social_mall.console.permissions import Perm
from social_mall.orders.rules import OrderStatus

routes = web.RouteTableDef()


@routes.get("/console/orders")
@console_view(Perm.ORDERS_VIEW)
async def orders(request: web.Request) -> web.Response:
    f = adm.order_filter(request.query)
    async with services(request).uows() as uow:
        page = await adm.list_orders(uow, tenant_of(request), f, page=page_number(request), per_page=20)
    query = {k: v for k, v in request.query.items() if k != "page"}
    return render(request, "console/orders.html", page=page, f=f, query=query,
                  statuses=[s.value for s in OrderStatus])


@routes.get("/console/orders/export.csv")
@console_view(Perm.ORDERS_EXPORT)
async def export_orders(request: web.Request) -> web.StreamResponse:
    f = adm.order_filter(request.query)
    svc = services(request)
    tenant = tenant_of(request)
    async with svc.uows() as uow:
        uow.audit(tenant, admin_of(request).actor, "orders.export", "orders",
                  after={"status": f.status, "since": str(f.since or ""), "until": str(f.until or "")})
        await uow.commit()
        return await stream_csv(request, f"orders-{svc.clock():%Y%m%d}.csv", adm.export_rows(uow, tenant, f))


@routes.get(r"/console/orders/{id}")
@console_view(Perm.ORDERS_VIEW)
async def order_page(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        detail = await adm.order_detail(uow, tenant_of(request), int_id(request))
    return render(request, "console/order.html", d=detail, o=detail.order, error="")


@routes.post(r"/console/orders/{id}/ship")
@console_view(Perm.ORDERS_SHIP)
async def ship(request: web.Request) -> web.Response:
    svc = services(request)
    oid = int_id(request)
    async with svc.uows() as uow:
        await adm.ship(uow, tenant_of(request), admin_of(request), oid, form_of(request).get("tracking_no", ""),
                       svc.clock())
        await uow.commit()
    svc.outbox.kick()  # the order.shipped push goes out now, not at the next scheduled run
    raise redirect(f"/console/orders/{oid}", ok="shipped")


@routes.post(r"/console/orders/{id}/refund")
@console_view(Perm.ORDERS_REFUND)
async def refund(request: web.Request) -> web.Response:
    """First post: a confirmation page repeating amount and reason. Second post (with
    confirm=1): the refund request, which the outbox sends to the gateway."""
    svc = services(request)
    oid = int_id(request)
    form = form_of(request)
    amount = adm.refund_amount(str(form.get("amount", "")))
    reason = rules.text(form.get("reason", ""), "reason", max_len=80, min_len=2)
    tenant = tenant_of(request)
    if form.get("confirm") != "1":
        async with svc.uows() as uow:
            detail = await adm.order_detail(uow, tenant, oid)
        shown = amount if amount is not None else detail.refundable_fen
        return render(request, "console/refund_confirm.html", o=detail.order, d=detail, amount_fen=shown,
                      amount_text=str(form.get("amount", "")), reason=reason,
                      too_large=shown > detail.refundable_fen)
    async with svc.uows() as uow:
        await adm.refund(uow, tenant, admin_of(request), oid, amount_fen=amount, reason=reason, now=svc.clock())
        await uow.commit()
    svc.outbox.kick()
    raise redirect(f"/console/orders/{oid}", ok="refund_requested")


__all__ = ["routes", "can"]
