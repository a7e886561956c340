"""POST /pay/notify/{tenant}: WeChat Pay APIv3 pay notifies (sandbox or real).

Verify the platform signature and timestamp, decrypt, check merchant, app id and
amount against our order, apply once (through the payments desk: social_mall/payments/desk.py,
the same checks, rows and events as apply_transaction, a crowd in few transactions), and answer the way the gateway expects:
204 on success (also for a duplicate), 4xx + {"code":"FAIL","message":"失败"} otherwise.
Every notify, accepted or refused, leaves a row in pay_notifications.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from handlers.context import SERVICES, merchant_of
from handlers.http_utils import read_capped
from social_mall.errors import MallError
from handlers.metrics import PAY_NOTIFIES
from social_mall.payments.desk import ApplyRequest, apply_now
from social_mall.payments.service import record_rejected
from social_mall.payments.wxpay_v3 import PayNotifyError, PaySignatureError, PayStaleError

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

FAIL = {"code": "FAIL", "message": "失败"}


def fail(status: int) -> web.Response:
    return web.json_response(FAIL, status=status)


@routes.post("/pay/notify/{tenant}/{merchant}")
@routes.post("/pay/notify/{tenant}")
async def pay_notify(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    tenant = await merchant_of(request)  # the merchant whose keys check this notify
    if tenant is None:
        return fail(404)
    try:  # the untouched raw body: the signature covers it
        body = await read_capped(request, svc.settings.max_body_bytes)
    except web.HTTPRequestEntityTooLarge:
        return fail(413)
    gateway = svc.gateway(tenant)
    if gateway is None:  # no payment method: nothing can have been paid here
        log.warning("pay.notify.refused", extra={"tenant": tenant.code, "reason": "no_pay_method"})
        return fail(404)
    try:
        tx = gateway.parse_notify(request.headers, body, time.time())
    except PayNotifyError as exc:
        log.warning("pay.notify.refused", extra={"tenant": tenant.code, "reason": exc.code})
        async with svc.uows() as uow:
            await record_rejected(uow, gateway=gateway.name, tenant=tenant.id, out_trade_no="", reason=exc.code)
            await uow.commit()
        PAY_NOTIFIES.labels("rejected").inc()
        return fail(401 if isinstance(exc, PaySignatureError | PayStaleError) else 400)
    try:
        async with svc.uows() as uow:   # through the payments desk: a crowd of notifies, few transactions
            outcome = await apply_now(uow, ApplyRequest(
                tx, tenant.id, gateway.name, gateway.mchid, gateway.appid, svc.clock(),
                also_appids=tuple(svc.bound_appids())))
            await uow.commit()
    except MallError as exc:
        log.warning("pay.notify.mismatch", extra={"tenant": tenant.code, "reason": exc.code})
        async with svc.uows() as uow:
            await record_rejected(
                uow, gateway=gateway.name, tenant=tenant.id, out_trade_no=tx.out_trade_no,
                reason=exc.code, amount_fen=tx.amount_fen, event_id=tx.event_id,
            )
            await uow.commit()
        PAY_NOTIFIES.labels("rejected").inc()
        return fail(400)
    PAY_NOTIFIES.labels(outcome.value).inc()
    svc.outbox.kick()
    log.info("pay.notify.ok", extra={"tenant": tenant.code, "outcome": outcome.value})
    return web.Response(status=204)
