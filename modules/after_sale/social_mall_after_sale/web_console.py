"""The module's console pages (/console/after_sale/…): the queue with filters, a
request's page (lines, photos, timeline) with its actions (approve, reject with a reason,
receive with or without putting the goods back on sale, refund) and the timers' settings.
Every handler is guarded by `console_view` (session, CSRF on every POST, the permission,
the admin's tenant); a refused action answers 409 with a Chinese reason and changes nothing."""

from __future__ import annotations

from aiohttp import web

from handlers.console.core import (
    admin_of, console_view, error_page, form_of, int_id, page_number, redirect, render, services, tenant_of,
)
from handlers.console.registry import add_console_page, add_console_permission
from social_mall.errors import MallError, NotRefundableError, RefundLimitError, RefundTooLargeError
from social_mall.plugins import Registry
from social_mall_after_sale import rules
from social_mall_after_sale import service as S
from social_mall_after_sale.errors import AfterSaleRefusedError

routes = web.RouteTableDef()

VIEW, HANDLE, REFUND = "aftersale.view", "aftersale.handle", "aftersale.refund"
FILTERS = ("", "open", *(s.value for s in rules.St))

REFUSED_ZH = {
    "state": "售后单当前状态不能这样操作（可能已被其他人处理），请刷新后再试",
    "reject_reason": "请填写驳回原因（2–80 字）",
    "days": f"天数须为 1–{rules.MAX_DAYS} 的整数",
    "tracking": "运单号为 6–30 位字母或数字",
    "stock": "换货商品库存不足，可改为退款",
    "reply": "回复须为 1–300 字",
    "hide_reason": "请填写隐藏原因（2–80 字）",
    "words": "敏感词每个最多 40 字，最多 500 个",
}
NOTICES = {
    "approved": "已同意", "rejected": "已驳回", "received": "已收货", "refunding": "退款已提交，网关处理后状态会更新",
    "saved": "已保存", "reshipped": "换货已发出",
}


def register(reg: Registry) -> None:
    reg.add_routes(routes)
    add_console_page(reg, key="after_sale", title="售后", path="/console/after_sale", perm=VIEW, order=32,
                     module="after_sale")
    add_console_permission(reg, VIEW, ("admin", "operator", "service", "finance"))
    add_console_permission(reg, HANDLE, ("admin", "operator", "service"))
    add_console_permission(reg, REFUND, ("admin", "finance"))


def actor(request: web.Request) -> str:
    return f"admin:{admin_of(request).username}"


def _refused(request: web.Request, exc: MallError) -> web.Response:
    if isinstance(exc, AfterSaleRefusedError):
        detail = REFUSED_ZH.get(exc.reason, exc.reason)
    elif isinstance(exc, RefundTooLargeError):
        detail = f"退款金额超出订单可退金额（最多可退 ¥{exc.refundable_fen / 100:.2f}），请先核对订单的退款记录"
    elif isinstance(exc, RefundLimitError):
        detail = "已达微信支付的退款限制（每单最多 50 次，付款一年内），请线下处理"
    elif isinstance(exc, NotRefundableError):
        detail = "订单当前状态不能退款"
    else:
        detail = exc.code
    return error_page(request, 409, "无法完成", detail)


@routes.get("/console/after_sale")
@console_view(VIEW)
async def queue(request: web.Request) -> web.Response:
    status = request.query.get("status", "open")
    kind = request.query.get("kind", "")
    order_no = request.query.get("order_no", "").strip()[:32]
    if status not in FILTERS or kind not in ("", *(k.value for k in rules.Kind)):
        return error_page(request, 400, "输入有误", "筛选条件不对")
    async with services(request).uows() as uow:
        page = await S.list_requests(uow, tenant_of(request), status=status, kind=kind, order_no=order_no,
                                     page=page_number(request))
    return render(request, "console/after_sale/queue.html", page=page, status_filter=status, kind_filter=kind,
                  order_no=order_no, labels=rules.LABELS, statuses=[s.value for s in rules.St],
                  notice=NOTICES.get(request.query.get("notice", ""), ""))


@routes.get(r"/console/after_sale/{id}")
@console_view(VIEW)
async def detail(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        r = await S.get_request(uow, tenant_of(request), int_id(request))
        log = await S.timeline(uow, tenant_of(request), r.id)
        failed = await S.refund_failed(uow, tenant_of(request), r)
    return render(request, "console/after_sale/detail.html", r=r, log=log, labels=rules.LABELS, failed=failed,
                  notice=NOTICES.get(request.query.get("notice", ""), ""))


@routes.post(r"/console/after_sale/{id}/approve")
@console_view(HANDLE)
async def approve(request: web.Request) -> web.Response:
    svc, rid = services(request), int_id(request)
    try:
        async with svc.uows() as uow:
            await S.approve(uow, tenant_of(request), rid, actor=actor(request), now=svc.clock())
            await uow.commit()
    except (AfterSaleRefusedError, RefundTooLargeError, RefundLimitError, NotRefundableError) as exc:
        return _refused(request, exc)
    svc.outbox.kick()
    raise redirect(f"/console/after_sale/{rid}", notice="approved")


@routes.post(r"/console/after_sale/{id}/reject")
@console_view(HANDLE)
async def reject(request: web.Request) -> web.Response:
    svc, rid = services(request), int_id(request)
    reason = str(form_of(request).get("reason", ""))
    try:
        async with svc.uows() as uow:
            await S.reject(uow, tenant_of(request), rid, reason=reason, actor=actor(request), now=svc.clock())
            await uow.commit()
    except AfterSaleRefusedError as exc:
        return _refused(request, exc)
    svc.outbox.kick()
    raise redirect(f"/console/after_sale/{rid}", notice="rejected")


@routes.post(r"/console/after_sale/{id}/receive")
@console_view(HANDLE)
async def receive(request: web.Request) -> web.Response:
    svc, rid = services(request), int_id(request)
    resellable = str(form_of(request).get("resellable", "")) in ("1", "on", "true")
    try:
        async with svc.uows() as uow:
            await S.receive(uow, tenant_of(request), rid, resellable=resellable, actor=actor(request),
                            now=svc.clock())
            await uow.commit()
    except AfterSaleRefusedError as exc:
        return _refused(request, exc)
    svc.outbox.kick()
    raise redirect(f"/console/after_sale/{rid}", notice="received")


@routes.post(r"/console/after_sale/{id}/reship")
@console_view(HANDLE)
async def reship(request: web.Request) -> web.Response:
    svc, rid = services(request), int_id(request)
    try:
        async with svc.uows() as uow:
            await S.reship(uow, tenant_of(request), rid, tracking=str(form_of(request).get("tracking_no", "")),
                           actor=actor(request), now=svc.clock())
            await uow.commit()
    except AfterSaleRefusedError as exc:
        return _refused(request, exc)
    svc.outbox.kick()
    raise redirect(f"/console/after_sale/{rid}", notice="reshipped")


@routes.post(r"/console/after_sale/{id}/refund")
@console_view(REFUND)
async def refund(request: web.Request) -> web.Response:
    svc, rid = services(request), int_id(request)
    try:
        async with svc.uows() as uow:
            await S.refund(uow, tenant_of(request), rid, actor=actor(request), now=svc.clock())
            await uow.commit()
    except (AfterSaleRefusedError, RefundTooLargeError, RefundLimitError, NotRefundableError) as exc:
        return _refused(request, exc)
    svc.outbox.kick()
    raise redirect(f"/console/after_sale/{rid}", notice="refunding")


@routes.post(r"/console/after_sale/{id}/retry")
@console_view(REFUND)
async def retry(request: web.Request) -> web.Response:
    svc, rid = services(request), int_id(request)
    try:
        async with svc.uows() as uow:
            await S.retry_refund(uow, tenant_of(request), rid, actor=actor(request), now=svc.clock())
            await uow.commit()
    except (AfterSaleRefusedError, RefundTooLargeError, RefundLimitError, NotRefundableError) as exc:
        return _refused(request, exc)
    svc.outbox.kick()
    raise redirect(f"/console/after_sale/{rid}", notice="refunding")


@routes.get(r"/console/after_sale/photos/{id}")
@console_view(VIEW)
async def photo(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        data, ctype = await S.photo(uow, tenant_of(request), int_id(request))
    if ctype not in ("image/jpeg", "image/png", "image/gif", "image/bmp", "image/webp"):
        ctype = "application/octet-stream"
    return web.Response(body=data, content_type=ctype, headers={"Content-Disposition": "inline"})


@routes.get("/console/after_sale_settings")
@console_view(VIEW)
async def settings_page(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        s = await S.settings_of(uow, tenant_of(request))
    return render(request, "console/after_sale/settings.html", s=s, error="",
                  notice=NOTICES.get(request.query.get("notice", ""), ""))


def _days(raw: object) -> int | None:
    text = str(raw).strip()
    if not (0 < len(text) <= 3 and text.isascii() and text.isdigit()):
        return None
    return int(text)


@routes.post("/console/after_sale_settings")
@console_view(HANDLE)
async def settings_save(request: web.Request) -> web.Response:
    svc = services(request)
    form = form_of(request)
    answer, back = _days(form.get("answer_days", "")), _days(form.get("return_days", ""))
    if answer is None or back is None or not (rules.check_days(answer) and rules.check_days(back)):
        async with svc.uows() as uow:
            s = await S.settings_of(uow, tenant_of(request))
        return render(request, "console/after_sale/settings.html", status=400, s=s, error=REFUSED_ZH["days"],
                      notice="")
    async with svc.uows() as uow:
        await S.save_settings(uow, tenant_of(request), S.Settings(answer, back), actor=actor(request))
        await uow.commit()
    raise redirect("/console/after_sale_settings", notice="saved")
