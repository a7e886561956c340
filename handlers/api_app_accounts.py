"""The mini-program / app JSON API per channel account (/api/app/v1/{tenant}/{account}/…): for a
tenant with several mini-programs (channel accounts), each paid through its linked merchant.

`POST …/login {"code": <wx.login code>}` → code2session at WeChat with the mini-program
account's app id and secret → the member behind the `mini` openid (one person with the
official accounts' member when WeChat gives a unionid: `channels.service.link_unionid`, the
core's merge path) → a session token (random, 7 days, only its SHA-256 kept in the
key-value store). `GET …/me` answers who that is, `GET …/orders` their orders (every
channel's, since the member is one). Errors look like the console API's
({"error": {"code", "message"}}). The tenant's full member API (catalog, cart, addresses,
orders, member center) is handlers/api_app.py at /api/app/v1/{tenant}/…; these paths are
listed in its OpenAPI document (`ACCOUNT_PATHS`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets

import aiohttp
from aiohttp import web

from handlers.api_v1 import error, ok, order_json
from handlers.context import SERVICES, Services
from handlers.http_utils import REFUSED_CODES_PER_MINUTE, refused_codes_key
from social_mall.channels.service import link_unionid
from social_mall.members.service import member_of, resolve_member
from social_mall.orders.service import list_orders
from social_mall.parsing import is_storable_text, parse_openid
from social_mall.tenants import TenantView

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
CHANNEL = "mini"
SESSION_TTL = 7 * 24 * 3600
MAX_BODY = 4 * 1024


async def _account(request: web.Request) -> tuple[Services, TenantView]:
    svc = request.app[SERVICES]
    tenant = await svc.channel(request.match_info["tenant"], request.match_info["account"])
    if tenant is None or tenant.account_kind != CHANNEL:
        raise web.HTTPNotFound(text=json.dumps({"error": {"code": "not_found", "message": "no such app"}}),
                               content_type="application/json")
    return svc, tenant


def _session_key(tenant: TenantView, token: str) -> str:
    return f"appsess:{tenant.id}:{tenant.account_id}:{hashlib.sha256(token.encode()).hexdigest()}"


async def code2session(svc: Services, tenant: TenantView, code: str) -> dict[str, object]:
    url = f"{svc.settings.wechat_api_base.rstrip('/')}/sns/jscode2session"
    params = {"appid": tenant.wechat_app_id, "secret": tenant.wechat_app_secret, "js_code": code,
              "grant_type": "authorization_code"}
    async with svc.http.get(url, params=params, timeout=aiohttp.ClientTimeout(total=5)) as resp:
        data = await resp.json(content_type=None)
    return data if isinstance(data, dict) else {}


@routes.post("/api/app/v1/{tenant}/{account}/login")
async def login(request: web.Request) -> web.Response:
    svc, tenant = await _account(request)
    if request.content_length is not None and request.content_length > MAX_BODY:
        return error(413, "too_large", "body too large")
    try:
        body = json.loads(await request.read())
    except ValueError:
        return error(400, "invalid_json", "body is not JSON")
    code = body.get("code") if isinstance(body, dict) else None
    if not (isinstance(code, str) and 0 < len(code) <= 128 and code.isascii() and code.isalnum()):
        return error(422, "invalid_input", "code", "code")
    refused = refused_codes_key(f"{tenant.id}:{tenant.account_id}", request)
    if int(await svc.kv.get(refused) or 0) >= REFUSED_CODES_PER_MINUTE:
        return error(429, "rate_limited", "too many refused codes", headers={"Retry-After": "60"})
    try:
        data = await code2session(svc, tenant, code)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return error(502, "wechat_unavailable", "WeChat could not be reached")
    openid = parse_openid(data.get("openid"))
    if openid is None:
        log.info("app.login.refused", extra={"tenant": tenant.code, "errcode": data.get("errcode")})
        await svc.kv.incr(refused, 60)
        return error(401, "invalid_code", "wx.login code refused by WeChat")
    unionid = parse_openid(data.get("unionid"))
    async with svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, CHANNEL, openid, unionid=unionid,
                                         entry_source=f"mini:{tenant.account_code}")
        member_id = member.id
        if unionid:
            member_id = await link_unionid(uow, tenant.id, member.id, unionid, now=svc.clock())
        await uow.commit()
    token = secrets.token_urlsafe(32)
    await svc.kv.set(_session_key(tenant, token), openid, ttl=SESSION_TTL)
    return ok({"token": token, "expires_in": SESSION_TTL, "member_id": member_id})


async def _member(request: web.Request) -> tuple[Services, TenantView, int] | web.Response:
    svc, tenant = await _account(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not (0 < len(token) <= 64 and token.isascii()):
        return error(401, "unauthorized", "missing session token", headers={"WWW-Authenticate": "Bearer"})
    openid = await svc.kv.get(_session_key(tenant, token.strip()))
    if openid is None:
        return error(401, "unauthorized", "invalid or expired session", headers={"WWW-Authenticate": "Bearer"})
    async with svc.uows() as uow:  # by identity each time: a merge since moves it to the kept member
        member_id = await member_of(uow, tenant.id, CHANNEL, str(openid))
    if member_id is None:
        return error(401, "unauthorized", "invalid or expired session")
    return svc, tenant, member_id


@routes.get("/api/app/v1/{tenant}/{account}/me")
async def me(request: web.Request) -> web.Response:
    found = await _member(request)
    if isinstance(found, web.Response):
        return found
    _, tenant, member_id = found
    return ok({"member_id": member_id, "shop": tenant.name})


@routes.get("/api/app/v1/{tenant}/{account}/orders")
async def orders(request: web.Request) -> web.Response:
    found = await _member(request)
    if isinstance(found, web.Response):
        return found
    svc, tenant, member_id = found
    async with svc.uows() as uow:
        page = await list_orders(uow, tenant.id, member_id, page=1, per_page=20)
    return ok({"items": [order_json(o) for o in page.items], "total": page.total})


@routes.post("/api/app/v1/{tenant}/{account}/checkout")
async def checkout(request: web.Request) -> web.Response:
    """{"items": [[sku_id, qty], …], "address": {"name", "phone", "detail"}} → the order,
    priced by the same pipeline as chat checkout (best coupon), placed through this account
    (so paid through the merchant it names)."""
    from datetime import timedelta

    from social_mall.errors import MallError
    from social_mall.members.service import add_address
    from social_mall.orders.service import place_order
    from social_mall.pricing.service import PricingInput

    found = await _member(request)
    if isinstance(found, web.Response):
        return found
    svc, tenant, member_id = found
    try:
        body = json.loads(await request.read())
        items = [(s, q) for s, q in body["items"]]
        addr = body["address"]
        name, phone, detail = addr["name"], addr["phone"], addr["detail"]
    except (ValueError, KeyError, TypeError):
        return error(422, "invalid_input", "items/address", "items")
    # JSON integers only (not 1e400, "²" or true) and text both backends can store (no NUL, no lone surrogate)
    if not 0 < len(items) <= 20 or any(isinstance(v, bool) or not isinstance(v, int) for pair in items for v in pair) \
            or any(not (0 < s < 2**63 and 0 < q <= 999) for s, q in items):
        return error(422, "invalid_input", "items", "items")
    if any(not isinstance(v, str) or not is_storable_text(v) for v in (name, phone, detail)):
        return error(422, "invalid_input", "address", "address")
    try:
        async with svc.uows() as uow:
            address = await add_address(uow, tenant.id, member_id, name, phone, detail)
            order = await place_order(uow, tenant.id, member_id, items, address_id=address.id, now=svc.clock(),
                                      timeout=timedelta(minutes=svc.settings.order_timeout_minutes),
                                      channel=CHANNEL, source="app", pricing=PricingInput(),
                                      account_id=tenant.account_id or None)
            await uow.commit()
    except MallError as exc:
        return error(409, exc.code, exc.code)
    svc.outbox.kick()
    return ok(order_json(order), status=201)


@routes.post("/api/app/v1/{tenant}/{account}/orders/{order_no}/pay")
async def pay(request: web.Request) -> web.Response:
    """JSAPI parameters for `wx.requestPayment` (the mini-program's openid, the order's merchant)."""
    from social_mall.errors import NotFoundError
    from social_mall.orders.rules import OrderStatus
    from social_mall.orders.service import find_order
    from social_mall.payments.service import open_payment

    found = await _member(request)
    if isinstance(found, web.Response):
        return found
    svc, tenant, member_id = found
    order_no = request.match_info["order_no"]
    if not (0 < len(order_no) <= 32 and order_no.isascii() and order_no.isdigit()):
        return error(404, "not_found", "order not found")
    try:
        async with svc.uows() as uow:
            order = await find_order(uow, tenant.id, order_no)
    except NotFoundError:
        return error(404, "not_found", "order not found")
    if order.member_id != member_id:
        return error(404, "not_found", "order not found")
    if order.status != OrderStatus.PENDING_PAYMENT:
        return error(409, "not_payable", "order is not awaiting payment")
    view = await svc.for_order(tenant, order.channel_account_id, order.pay_account_id)
    gateway = svc.gateway(view)
    if gateway is None or not hasattr(gateway, "jsapi") or gateway.name == "unavailable":
        return error(409, "no_pay_method", "no WeChat Pay merchant for this app")
    openid = await svc.kv.get(_session_key(tenant, request.headers["Authorization"].partition(" ")[2].strip()))
    async with svc.uows() as uow:
        payment = await open_payment(uow, order, gateway=gateway.name)
        await uow.commit()
    cache = f"pay:mini:{tenant.code}:{payment.out_trade_no}:{openid}"
    prepay = await svc.kv.get(cache)
    if prepay is None:
        try:
            prepay = await gateway.jsapi(out_trade_no=payment.out_trade_no, description=f"{tenant.name}-订单",
                                         amount_fen=payment.amount_fen, openid=str(openid))
        except Exception as exc:  # noqa: BLE001 - the app only needs "try again"; the log has the kind
            log.warning("app.prepay.failed", extra={"tenant": tenant.code, "error": getattr(exc, "code", type(exc).__name__)})
            return error(502, "pay_unavailable", "WeChat Pay unavailable, try again")
        await svc.kv.set(cache, prepay, ttl=100 * 60)
    return ok({"params": gateway.jsapi_params(str(prepay))})


ACCOUNT_PATHS: dict[str, object] = {
        "/api/app/v1/{tenant}/{account}/login": {"post": {
            "summary": "wx.login code → session token (code2session; the member by unionid when WeChat gives one)",
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}}}}},
            "responses": {"200": {"description": "{token, expires_in, member_id}"},
                          "401": {"description": "code refused by WeChat"}, "404": {"description": "no such app"}}}},
        "/api/app/v1/{tenant}/{account}/me": {"get": {
            "security": [{"bearer": []}], "summary": "who the session is",
            "responses": {"200": {"description": "{member_id, shop}"}, "401": {"description": "no session"}}}},
        "/api/app/v1/{tenant}/{account}/orders": {"get": {
            "security": [{"bearer": []}], "summary": "the member's orders (every channel's)",
            "responses": {"200": {"description": "{items, total}"}}}},
        "/api/app/v1/{tenant}/{account}/checkout": {"post": {
            "security": [{"bearer": []}], "summary": "place an order (chat checkout's pricing, best coupon)",
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "required": ["items", "address"],
                "properties": {"items": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
                               "address": {"type": "object", "properties": {
                                   "name": {"type": "string"}, "phone": {"type": "string"},
                                   "detail": {"type": "string"}}}}}}}},
            "responses": {"201": {"description": "the order"}, "409": {"description": "{error: {code}}"}}}},
        "/api/app/v1/{tenant}/{account}/orders/{order_no}/pay": {"post": {
            "security": [{"bearer": []}], "summary": "wx.requestPayment parameters (the order's merchant)",
            "responses": {"200": {"description": "{params}"}, "409": {"description": "not payable"}}}},
}
