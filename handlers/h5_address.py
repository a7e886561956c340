"""WeChat's own address picker on the pay page (JS-SDK `wx.openAddress`): an address in one
tap for an order not paid yet.

Inside WeChat, when the page knows the payer (the snsapi_base OAuth cookie, handlers/oauth.py)
and the payer is the buyer, the page carries a `wx.config` signed with the tenant's
jsapi_ticket (adapters/wechat_client.py) over the page's own URL. The picked address is
POSTed here:

    POST /h5/pay/{tenant}/{order_no}/address?t=…   (same-origin fetch, X-Requested-With)
    {"userName", "telNumber", "provinceName", "cityName", "countryName", "detailInfo"}

It is saved to the buyer's address book (as the default) and copied onto the order while
the order is unpaid (social_mall.orders.service.ship_unpaid_order_to). The total stays: an
address that the shop's express pricing would charge otherwise (or doesn't serve), or an
order not sent by express, is refused and nothing changes. Only the buyer may do it: the pay link's token proves
the link, the payer cookie proves who holds it.
"""

from __future__ import annotations

import json
import logging
import secrets
import time

from aiohttp import web

from handlers.context import Services
from handlers.http_utils import read_capped
from handlers.oauth import payer_openid
from adapters.wechat_client import WeChatAPIError, jsapi_signature
from social_mall.errors import AddressLockedError, InvalidAddressError, NotFoundError, ShippingChangedError
from social_mall.fulfilment import EXPRESS, EXPRESS_METHOD
from social_mall.members.address_parse import from_picker
from social_mall.members.service import member_of
from social_mall.orders.rules import OrderStatus
from social_mall.orders.service import ship_unpaid_order_to
from social_mall.tenants import TenantView
from social_mall.views import OrderView

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_BODY = 4096
FIELDS_ZH = {"name": "收货人姓名", "phone": "11 位手机号", "detail": "详细地址"}


def _json(status: int, **body: object) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _yuan(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


def _shipping_refusal(exc: ShippingChangedError) -> str:
    if exc.why == "not_express":
        return "这个订单不是快递配送，不能修改收货地址。"
    if exc.quoted_fen is not None:
        return (f"寄到这个地址运费是 {_yuan(exc.quoted_fen)}（下单时 {_yuan(exc.shipping_fen)}），地址没有修改。"
                "请回到聊天里用新地址重新下单。")
    return "这个地址暂不在配送范围内，地址没有修改，请选择其他地址。"


async def _buyer(request: web.Request, svc: Services, tenant: TenantView, order: OrderView) -> bool | None:
    """True when the payer cookie names the order's buyer, False for someone else, None
    when the page doesn't know who is there."""
    openid = payer_openid(request, svc, tenant)
    if openid is None:
        return None
    async with svc.uows() as uow:
        member = await member_of(uow, tenant.id, "mp", openid)
    return member == order.member_id


async def address_picker(request: web.Request, svc: Services, tenant: TenantView,
                         order: OrderView) -> dict[str, object] | None:
    """The signed `wx.config` for the pay page, when WeChat's address picker can be
    offered: inside WeChat, to the buyer, for an unpaid order. None otherwise, and when
    WeChat can't give a ticket now (the page then works as before)."""
    if "MicroMessenger" not in request.headers.get("User-Agent", "") or order.status != OrderStatus.PENDING_PAYMENT:
        return None
    if not (tenant.wechat_app_id and tenant.wechat_app_secret) or not await _buyer(request, svc, tenant, order):
        return None
    try:
        ticket = await svc.wechat(tenant).jsapi_ticket()
    except WeChatAPIError as exc:
        log.warning("h5.jsapi_ticket.failed", extra={"tenant": tenant.code, "errcode": exc.errcode})
        return None
    url = f"{svc.public_base_url}{request.raw_path}"   # the page as the browser has it
    nonce, ts = secrets.token_urlsafe(12), int(time.time())
    return {
        "appId": tenant.wechat_app_id, "timestamp": ts, "nonceStr": nonce,
        "signature": jsapi_signature(ticket, nonce, ts, url),
        "post": f"/h5/pay/{tenant.code}/{order.order_no}/address?t={request.query.get('t', '')}",
    }


@routes.post("/h5/pay/{tenant}/{order_no}/address")
async def pick_address(request: web.Request) -> web.Response:
    from handlers.h5 import _order_for

    if request.headers.get("X-Requested-With") != "social_mall":
        return _json(403, message="请求无效")
    svc, tenant, order = await _order_for(request)     # 403 on a forged link, 404 unknown
    buyer = await _buyer(request, svc, tenant, order)
    if buyer is None:
        return _json(401, message="请在微信中重新打开支付链接。")
    if not buyer:
        return _json(403, message="只有下单的微信用户可以修改收货地址。")
    try:
        doc = json.loads((await read_capped(request, MAX_BODY)).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _json(400, message="地址格式不对，请重新选择。")
    if not isinstance(doc, dict):
        return _json(400, message="地址格式不对，请重新选择。")
    picked = from_picker(doc)
    if picked.missing:
        missing = "、".join(FIELDS_ZH[f] for f in picked.missing)
        return _json(400, message=f"这个地址缺少{missing}，请在微信地址里补全后重新选择。")
    try:
        async with svc.uows() as uow:
            updated = await ship_unpaid_order_to(uow, tenant.id, order.member_id, order.order_no, picked.name,
                                                 picked.phone, picked.detail, actor=f"member:{order.member_id}",
                                                 now=svc.clock(), express=svc.registry.fulfilments.get(EXPRESS, EXPRESS_METHOD))
            await uow.commit()
    except AddressLockedError:
        return _json(409, message="订单已付款或已关闭，不能再修改收货地址。")
    except ShippingChangedError as exc:
        return _json(409, message=_shipping_refusal(exc))
    except InvalidAddressError as exc:
        return _json(400, message=f"这个地址的{FIELDS_ZH.get(exc.field, '内容')}不对，请重新选择。")
    except NotFoundError:
        return _json(404, message="订单不存在")
    log.info("h5.order.ship_to", extra={"tenant": tenant.code, "order_no": order.order_no})
    return _json(200, ship=f"{updated.ship_name}，{updated.ship_address}", total=_yuan(updated.total_fen),
                 message="收货地址已更新，运费和应付金额不变。")
