"""The WeChat Pay APIv2 XML pay notify: POST /pay/notify-v2/{tenant}[/{merchant}] (the gateway,
its signatures and XML: adapters/wechatpay_v2.py)."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from adapters.wechatpay_v2 import WeChatPayV2Gateway
from handlers.context import SERVICES, merchant_of
from handlers.http_utils import read_capped
from social_mall.errors import MallError
from social_mall.payments.service import apply_transaction, record_rejected
from social_mall.payments.wxpay_v3 import PayNotifyError

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


SUCCESS_XML = "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"


def _xml_reply(ok: bool, msg: str = "OK", status: int = 200) -> web.Response:
    text = SUCCESS_XML if ok else (
        f"<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[{msg}]]></return_msg></xml>")
    return web.Response(text=text, status=status, content_type="text/xml", charset="utf-8")


@routes.post("/pay/notify-v2/{tenant}/{merchant}")
@routes.post("/pay/notify-v2/{tenant}")
async def notify_v2(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    tenant = await merchant_of(request)
    if tenant is None:
        return _xml_reply(False, "unknown", 404)
    try:
        body = await read_capped(request, svc.settings.max_body_bytes)
    except web.HTTPRequestEntityTooLarge:
        return _xml_reply(False, "too large", 413)
    gateway = svc.gateway(tenant)
    if not isinstance(gateway, WeChatPayV2Gateway):
        return _xml_reply(False, "not an APIv2 merchant", 404)
    try:
        tx = gateway.parse_notify(request.headers, body, time.time())
    except PayNotifyError as exc:
        log.warning("pay.v2.notify.refused", extra={"tenant": tenant.code, "reason": exc.code})
        async with svc.uows() as uow:
            await record_rejected(uow, gateway=gateway.name, tenant=tenant.id, out_trade_no="", reason=exc.code)
            await uow.commit()
        return _xml_reply(False, "签名失败", 400)
    try:
        async with svc.uows() as uow:
            outcome = await apply_transaction(uow, tx, tenant=tenant.id, gateway=gateway.name, mchid=gateway.mchid,
                                              appid=gateway.appid, now=svc.clock())
            await uow.commit()
    except MallError as exc:
        log.warning("pay.v2.notify.mismatch", extra={"tenant": tenant.code, "reason": exc.code})
        async with svc.uows() as uow:
            await record_rejected(uow, gateway=gateway.name, tenant=tenant.id, out_trade_no=tx.out_trade_no,
                                  reason=exc.code, amount_fen=tx.amount_fen, event_id=tx.event_id)
            await uow.commit()
        return _xml_reply(False, "参数错误", 400)
    svc.outbox.kick()
    log.info("pay.v2.notify.ok", extra={"tenant": tenant.code, "outcome": outcome.value})
    return _xml_reply(True)
