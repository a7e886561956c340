"""POST /pay/refund-notify/{tenant}: WeChat Pay APIv3 refund notifies (REFUND.SUCCESS |
REFUND.ABNORMAL | REFUND.CLOSED).

Verified like pay notifies (platform signature, timestamp within 5 minutes, AES-256-GCM),
then checked against our refund: merchant, tenant, out_trade_no and amount. The refund is
looked up within the tenant of the URL only (whose account verified the notify). Applied once by
`settle_refund` (a repeat finds the refund already settled and is acknowledged). Answers
204 on success, 4xx + {"code":"FAIL","message":"失败"} otherwise; every notify leaves a
row in pay_notifications.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from handlers.context import SERVICES, merchant_of
from handlers.http_utils import read_capped
from handlers.pay_notify import fail
from social_mall.errors import MallError
from social_mall.payments.service import record_refund_notice, record_rejected, settle_refund
from social_mall.payments.wxpay_v3 import PayNotifyError, PaySignatureError, PayStaleError

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.post("/pay/refund-notify/{tenant}/{merchant}")
@routes.post("/pay/refund-notify/{tenant}")
async def refund_notify(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    tenant = await merchant_of(request)
    if tenant is None:
        return fail(404)
    try:
        body = await read_capped(request, svc.settings.max_body_bytes)
    except web.HTTPRequestEntityTooLarge:
        return fail(413)
    gateway = svc.gateway(tenant)
    parse = getattr(gateway, "parse_refund_notify", None)
    if parse is None:
        return fail(404)
    reason = ""
    try:
        notice = parse(request.headers, body, time.time())
    except PayNotifyError as exc:
        log.warning("pay.refund_notify.refused", extra={"tenant": tenant.code, "reason": exc.code})
        async with svc.uows() as uow:
            await record_rejected(uow, gateway=gateway.name, tenant=tenant.id, out_trade_no="",
                                  reason="refund:" + exc.code)
            await uow.commit()
        return fail(401 if isinstance(exc, PaySignatureError | PayStaleError) else 400)
    try:
        async with svc.uows() as uow:
            # only this tenant's refund can be found, and only this tenant's account may name it
            refund = await uow.payments.refund_by_no(tenant.id, notice.out_refund_no)
            order = await uow.orders.get(tenant.id, refund.order_id) if refund is not None else None
            if notice.mchid != gateway.mchid:
                reason = "refund:mchid"
            elif refund is None or order is None:
                reason = "refund:unknown"
            elif order.order_no != notice.out_trade_no:
                reason = "refund:out_trade_no"
            elif await uow.payments.merchant_mchid(tenant.id, order.id) not in (None, notice.mchid):
                reason = "refund:merchant"  # another merchant of the tenant never settles this one's refund
            elif notice.refund_fen != refund.amount_fen:
                reason = "refund:amount"
            if reason:
                raise LookupError(reason)
            applied = await settle_refund(uow, notice.out_refund_no, tenant=tenant.id,
                                          status=notice.refund_status, now=svc.clock())
            record_refund_notice(uow, gateway=gateway.name, tenant=tenant.id, event_id=notice.event_id,
                                 out_trade_no=notice.out_trade_no, refund_fen=notice.refund_fen,
                                 status=notice.refund_status, applied=applied)
            await uow.commit()
    except (LookupError, MallError) as exc:
        reason = reason or f"refund:{getattr(exc, 'code', 'error')}"
        log.warning("pay.refund_notify.mismatch", extra={"tenant": tenant.code, "reason": reason})
        async with svc.uows() as uow:
            await record_rejected(uow, gateway=gateway.name, tenant=tenant.id, out_trade_no=notice.out_trade_no,
                                  reason=reason, amount_fen=notice.refund_fen, event_id=notice.event_id)
            await uow.commit()
        return fail(400)
    svc.outbox.kick()
    log.info("pay.refund_notify.ok", extra={"tenant": tenant.code, "status": notice.refund_status})
    return web.Response(status=204)
