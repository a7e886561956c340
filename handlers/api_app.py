"""The member JSON API of a mini-program / an own app, one implementation on two prefixes:

- `/api/app/v1/{tenant}/{account}/…`: through the tenant's mini-program channel account
  `account` (its app id and secret, the merchant it names), the explicit form;
- `/api/app/v1/{tenant}/…`: through the tenant's default mini-program (its first enabled
  `mini` channel account; the environment's MINI_APP_ID / MINI_APP_SECRET configure the demo
  tenant's, as the official account's settings do).

`POST …/session` takes a `wx.login` code, asks WeChat's /sns/jscode2session (through the
configurable API base, with the account's app id and secret) and resolves the member of the
`mini` openid (by unionid, when WeChat sends one, the official account's member: the core's
merge path `channels.service.link_unionid`). It answers an opaque session token kept only as
its SHA-256 in the key-value store (`app:sess:<sha256>` → tenant, account, openid; TTL
`app_session_ttl_seconds`); the session_key never leaves this module. Every other route takes
`Authorization: Bearer <token>`; a token of another tenant or another mini-program is a 401, an
order of another member a 404. The member is found by the openid on each request, so a merge
since the login follows the kept member. Errors look like the admin API's:
{"error": {"code", "message", "field"}}. Modules add their routes on both prefixes through
`AppRoutes` (handlers/api_app_social.py: group-buy and referral).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web

from handlers.api_v1 import error, ok
from handlers.context import SERVICES, Services
from handlers.http_utils import REFUSED_CODES_PER_MINUTE, refused_codes_key
from social_mall.catalog.service import list_categories, list_products, product_detail
from social_mall.catalog.visibility import hidden_products
from social_mall.channels.service import link_unionid
from social_mall.errors import EmptyCartError, MallError, NotFoundError
from social_mall.members.service import (
    add_address, add_to_cart, list_addresses, member_of, remove_from_cart, resolve_member, set_cart_qty, view_cart,
)
from social_mall.orders.desk import PlaceRequest, place_standing
from social_mall.orders.entrance import entered
from social_mall.orders.service import cancel_order, list_orders, load_order
from social_mall.payments.desk import OpenRequest, open_now
from social_mall.parsing import is_storable_text, parse_id, parse_openid
from social_mall.orders.rules import shipping_fee
from social_mall.pricing.rules import ALL_STEPS, PriceLine
from social_mall.pricing.service import NONE, PricingInput
from social_mall.pricing.service import quote as pricing_quote
from social_mall.pricing.unit import Wanted
from social_mall.pricing.unit import unit_prices as module_unit_prices
from social_mall.tenants import TenantView

log = logging.getLogger(__name__)
Handler = Callable[[web.Request, Services, TenantView, int], Awaitable[web.StreamResponse]]
CHANNEL = "mini"
RATE_PER_MINUTE = 120          # per session token
IDEMPOTENCY_TTL = 24 * 3600
ROOT = "/api/app/v1/{tenant}"
# An account code is never one of the API's first words (else `/{tenant}/referral/me` could
# be read as the `me` of an account named "referral", whichever module registered first).
WORDS = ("session", "categories", "products", "cart", "addresses", "checkout", "orders", "me",
         "groupbuy", "referral")
ACCOUNT = "/api/app/v1/{tenant}/{account:(?!(?:%s)/)[^{}/]+}" % "|".join(WORDS)
_OPENID = "app.openid"


class AppRoutes:
    """Routes served on both prefixes: the tenant's default mini-program and a named one."""

    def __init__(self) -> None:
        self._root = web.RouteTableDef()
        self._account = web.RouteTableDef()

    def route(self, method: str, path: str) -> Callable[[Any], Any]:
        def add(fn: Any) -> Any:
            self._root.route(method, ROOT + path)(fn)
            self._account.route(method, ACCOUNT + path)(fn)
            return fn
        return add

    def get(self, path: str) -> Callable[[Any], Any]:
        return self.route("GET", path)

    def post(self, path: str) -> Callable[[Any], Any]:
        return self.route("POST", path)

    def put(self, path: str) -> Callable[[Any], Any]:
        return self.route("PUT", path)

    def delete(self, path: str) -> Callable[[Any], Any]:
        return self.route("DELETE", path)

    def __iter__(self) -> Iterator[web.AbstractRouteDef]:
        yield from self._root
        yield from self._account


routes = AppRoutes()
document = web.RouteTableDef()  # the OpenAPI document


def jsonable(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: jsonable(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def _key(token: str) -> str:
    return "app:sess:" + hashlib.sha256(token.encode()).hexdigest()


async def body_of(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise Bad("invalid_json", "") from None
    if not isinstance(data, dict):
        raise Bad("invalid_json", "")
    return data


class Bad(Exception):
    """A 422: `problem` with the input `field`."""

    def __init__(self, problem: str, field: str) -> None:
        super().__init__(problem)
        self.problem, self.field = problem, field


def int_of(data: dict[str, Any], name: str, *, low: int = 1, high: int = 10**9) -> int:
    v = data.get(name)
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise Bad("invalid_number", name)
    return v


def str_of(data: dict[str, Any], name: str, most: int = 200) -> str:
    v = data.get(name)
    if not isinstance(v, str) or not v.strip() or len(v) > most or not is_storable_text(v):  # NUL, lone surrogate
        raise Bad("invalid_text", name)
    return v.strip()


def path_id(request: web.Request, name: str = "id") -> int:
    n = parse_id(request.match_info[name])
    if n is None:
        raise NotFoundError(name, 0)
    return n


_body, _Bad, _int, _str, _path_id = body_of, Bad, int_of, str_of, path_id


def prefix(request: web.Request, tenant: TenantView) -> str:
    """This request's API prefix (with the account when the path names it)."""
    account = request.match_info.get("account")
    return f"/api/app/v1/{tenant.code}" + (f"/{account}" if account is not None else "")


def session_openid(request: web.Request) -> str:
    """The mini-program openid of the request's session (a member_view handler only)."""
    return str(request[_OPENID])


async def _app(request: web.Request) -> tuple[Services, TenantView] | web.Response:
    """The tenant seen through the mini-program of the path: the named account, or the
    tenant's default one; an error answer when there is none."""
    svc: Services = request.app[SERVICES]
    tenant = await svc.tenant(request.match_info["tenant"])
    if tenant is None:
        return error(404, "not_found", "tenant not found")
    account = request.match_info.get("account")
    view = await svc.mini_program(tenant, account)
    if view is None:
        if account is None:
            return error(409, "not_configured", "no mini-program configured")
        return error(404, "not_found", "no such app")
    return svc, view


def member_view(fn: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @functools.wraps(fn)
    async def handler(request: web.Request) -> web.StreamResponse:
        found = await _app(request)
        if isinstance(found, web.Response):
            return found
        svc, tenant = found
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        valid = scheme.lower() == "bearer" and 0 < len(token) <= 64 and token.isascii()
        raw = await svc.kv.get(_key(token)) if valid else None
        session = json.loads(raw) if raw else None
        if not session or session.get("t") != tenant.id or session.get("a") != tenant.account_id:
            return error(401, "unauthorized", "invalid or expired session", headers={"WWW-Authenticate": "Bearer"})
        used = await svc.kv.incr("app:rate:" + _key(token)[9:] + ":" + str(int(svc.clock().timestamp() // 60)), 70)
        if used > RATE_PER_MINUTE:
            return error(429, "rate_limited", "too many requests", headers={"Retry-After": "60"})
        try:
            async with svc.uows() as uow:  # by identity each time: a merge since moves it to the kept member
                member = await member_of(uow, tenant.id, CHANNEL, str(session["o"]))
            if member is None:
                return error(401, "unauthorized", "invalid or expired session")
            request[_OPENID] = str(session["o"])
            with entered(tenant.account_id):   # any order placed here is paid at the mini-program's merchant
                return await fn(request, svc, tenant, member)
        except NotFoundError as exc:
            return error(404, "not_found", f"{exc.what} not found")
        except Bad as exc:
            return error(422, "invalid_input", exc.problem, exc.field)
        except MallError as exc:
            return error(409, exc.code, exc.code)

    return handler


async def code2session(svc: Services, tenant: TenantView, code: str) -> dict[str, Any]:
    """WeChat's answer to /sns/jscode2session for the mini-program `tenant` is seen through."""
    params = {"appid": tenant.wechat_app_id, "secret": tenant.wechat_app_secret, "js_code": code,
              "grant_type": "authorization_code"}
    async with svc.http.get(svc.settings.wechat_api_base.rstrip("/") + "/sns/jscode2session", params=params,
                            timeout=aiohttp.ClientTimeout(total=5)) as resp:
        data = json.loads(await resp.text())
    return data if isinstance(data, dict) else {}


@routes.post("/session")
async def session(request: web.Request) -> web.StreamResponse:
    found = await _app(request)
    if isinstance(found, web.Response):
        return found
    svc, tenant = found
    try:
        code = str_of(await body_of(request), "code", 128)
    except Bad as exc:
        return error(422, "invalid_input", exc.problem, exc.field)
    if not (code.isascii() and code.isalnum()):
        return error(422, "invalid_input", "invalid_text", "code")
    refused = refused_codes_key(f"{tenant.id}:{tenant.account_id}", request)
    if int(await svc.kv.get(refused) or 0) >= REFUSED_CODES_PER_MINUTE:
        return error(429, "rate_limited", "too many refused codes", headers={"Retry-After": "60"})
    try:
        answer = await code2session(svc, tenant, code)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("app.code2session.failed", extra={"tenant": tenant.code, "error": type(exc).__name__})
        return error(502, "wechat_unavailable", "WeChat did not answer")
    openid = parse_openid(answer.get("openid"))
    if answer.get("errcode") or openid is None:
        errcode = answer.get("errcode")
        log.info("app.code2session.refused", extra={"tenant": tenant.code, "errcode": errcode})
        await svc.kv.incr(refused, 60)
        return error(401, "invalid_code", f"WeChat refused the code ({errcode})")
    unionid = parse_openid(answer.get("unionid"))
    async with svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, CHANNEL, openid, unionid=unionid,
                                         entry_source=f"mini:{tenant.account_code}")
        member_id = member.id
        if unionid:
            member_id = await link_unionid(uow, tenant.id, member.id, unionid, now=svc.clock())
        await uow.commit()
    token = secrets.token_urlsafe(32)
    ttl = svc.settings.app_session_ttl_seconds
    await svc.kv.set(_key(token), json.dumps({"t": tenant.id, "a": tenant.account_id, "o": openid}), ttl=ttl)
    log.info("app.session.new", extra={"tenant": tenant.code, "member": member_id})
    return ok({"token": token, "expires_in": ttl, "member_id": member_id})


# -- catalog ------------------------------------------------------------------------------

@routes.get("/categories")
@member_view
async def categories(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    async with svc.uows() as uow:
        return ok({"items": jsonable(await list_categories(uow, tenant.id))})


@routes.get("/products")
@member_view
async def products(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    q = request.query
    page = parse_id(q.get("page", "1")) or 1
    per_page = min(parse_id(q.get("per_page", "20")) or 20, 50)
    category = parse_id(q["category_id"]) if "category_id" in q else None
    if "category_id" in q and category is None:
        raise _Bad("invalid_number", "category_id")
    keyword = (q.get("q") or "").strip()[:40].replace("\x00", "") or None
    async with svc.uows() as uow:
        found = await list_products(uow, tenant.id, category_id=category, keyword=keyword, page=page,
                                    per_page=per_page, hidden=await hidden_products(uow, tenant.id, member))
    return ok({"items": jsonable(found.items), "page": found.page, "per_page": found.per_page, "total": found.total})


@routes.get("/products/{id}")
@member_view
async def product(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    async with svc.uows() as uow:
        return ok(jsonable(await product_detail(uow, tenant.id, _path_id(request),
                                                hidden=await hidden_products(uow, tenant.id, member))))


# -- cart ---------------------------------------------------------------------------------

@routes.get("/cart")
@member_view
async def cart(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    async with svc.uows() as uow:
        # each line at the member's own price for its quantity where a module has one (as charged)
        return ok(jsonable(await view_cart(uow, tenant.id, member, svc.clock())))


@routes.post("/cart/items")
@member_view
async def cart_add(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    data = await _body(request)
    sku, qty = _int(data, "sku_id"), _int(data, "qty", high=999)
    async with svc.uows() as uow:
        view = await add_to_cart(uow, tenant.id, member, sku, qty, svc.clock())
        await uow.commit()
    return ok(jsonable(view))


@routes.put("/cart/items/{sku_id}")
@member_view
async def cart_set(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    sku = _path_id(request, "sku_id")  # an odd id is a 404 whatever the body
    qty = _int(await _body(request), "qty", low=0, high=999)
    async with svc.uows() as uow:
        view = await set_cart_qty(uow, tenant.id, member, sku, qty, svc.clock())
        await uow.commit()
    return ok(jsonable(view))


@routes.delete("/cart/items/{sku_id}")
@member_view
async def cart_remove(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    async with svc.uows() as uow:
        view = await remove_from_cart(uow, tenant.id, member, _path_id(request, "sku_id"), svc.clock())
        await uow.commit()
    return ok(jsonable(view))


# -- addresses ----------------------------------------------------------------------------

@routes.get("/addresses")
@member_view
async def addresses(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    async with svc.uows() as uow:
        return ok({"items": jsonable(await list_addresses(uow, tenant.id, member))})


@routes.post("/addresses")
@member_view
async def address_add(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    data = await _body(request)
    name, phone, detail = _str(data, "name", 40), _str(data, "phone", 20), _str(data, "detail", 200)
    async with svc.uows() as uow:
        view = await add_address(uow, tenant.id, member, name, phone, detail)
        await uow.commit()
    return ok(jsonable(view), status=201)


# -- checkout and orders ------------------------------------------------------------------

async def _items(uow: Any, tenant: int, member: int, data: dict[str, Any]) -> tuple[tuple[tuple[int, int], ...], bool]:
    """(sku id, qty) lines: `items` of the body, or the member's cart; and whether from the cart."""
    raw = data.get("items")
    if raw is None:
        return tuple((ln.sku_id, ln.qty) for ln in (await view_cart(uow, tenant, member)).lines), True
    if isinstance(raw, list) and raw and len(raw) <= 50 and all(isinstance(x, dict) for x in raw):
        return tuple((_int(x, "sku_id"), _int(x, "qty", high=999)) for x in raw), False
    raise _Bad("invalid_items", "items")


def _choice(data: dict[str, Any]) -> PricingInput:
    """The buyer's coupon (-1: the best one, 0: none) and points (-1: as many as allowed)."""
    coupon = _int(data, "coupon_id", low=-1) if "coupon_id" in data else NONE
    points = _int(data, "points", low=-1) if "points" in data else 0
    return PricingInput(coupon, points)


@routes.post("/checkout/quote")
@member_view
async def checkout_quote(request: web.Request, svc: Services, tenant: TenantView, member: int
                         ) -> web.StreamResponse:
    """What placing would cost, through the promotions pipeline the chat's checkout uses
    (level, flash prices, 满减, the coupon, points) and the express fee. Pass the answer's
    `coupon_id`, `points_used` and `total_fen` (as `expect_total_fen`) to POST /orders."""
    data = await _body(request)
    choice = _choice(data)
    async with svc.uows() as uow:
        items, _ = await _items(uow, tenant.id, member, data)
        if not items:
            raise EmptyCartError()
        wanted: dict[int, int] = {}
        for sku_id, qty in items:
            wanted[sku_id] = wanted.get(sku_id, 0) + qty
        found = {s.id: (s, p) for s, p in await uow.catalog.skus_by_ids(tenant.id, list(wanted))}
        for sku_id in wanted:
            if sku_id not in found:
                raise NotFoundError("sku", sku_id)
        asked = [Wanted(k, found[k][1].id, found[k][0].price_fen, q) for k, q in sorted(wanted.items())]
        own = await module_unit_prices(uow, tenant.id, member, asked, svc.clock()) if uow.pricers else {}
        priced = [PriceLine(k, found[k][1].id, found[k][1].category_id,
                            own[k].fen if k in own else found[k][0].price_fen, q,
                            admits=own[k].steps if k in own else ALL_STEPS) for k, q in sorted(wanted.items())]
        goods = sum(ln.unit_fen * ln.qty for ln in priced)
        ship = shipping_fee(goods)
        b = (await pricing_quote(uow, tenant.id, member, priced, ship, choice, now=svc.clock())).breakdown
    return ok({"goods_fen": goods, "shipping_fen": ship, "discount_fen": b.discount_fen, "total_fen": b.total_fen,
               "coupon_id": b.coupon_id or NONE, "points_used": b.points_used, "breakdown": jsonable(b)})


@routes.post("/orders")
@member_view
async def checkout(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    """Place the cart (or `items`: [{sku_id, qty}]) shipping to `address_id`. The header
    `Idempotency-Key` is required: the same key answers the same order (a double tap places once)."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > 80:
        raise _Bad("missing_idempotency_key", "Idempotency-Key")
    data = await _body(request)
    address = _int(data, "address_id")
    idem = f"app:idem:{tenant.id}:{member}:{hashlib.sha256(key.encode()).hexdigest()}"
    if not await svc.kv.set_nx(idem, "pending", IDEMPOTENCY_TTL):
        done = await svc.kv.get(idem)
        if done is None or done == "pending":
            return error(409, "in_progress", "the same checkout is under way")
        async with svc.uows() as uow:
            return ok(jsonable(await load_order(uow, tenant.id, int(done))))
    try:
        async with svc.uows() as uow:
            items, from_cart = await _items(uow, tenant.id, member, data)
            expect = _int(data, "expect_total_fen", low=0) if "expect_total_fen" in data else None
            # a plain order goes through the order desk under a crowd, as the chat's (orders/desk.py)
            order = await place_standing(uow, PlaceRequest(
                tenant.id, member, tuple(items), address, svc.clock(),
                timedelta(minutes=svc.settings.order_timeout_minutes), channel=CHANNEL, source="app",
                expect_total_fen=expect, pricing=_choice(data), account_id=tenant.account_id or None))
            if from_cart:
                await uow.members.remove_cart_items(tenant.id, member, sorted({k for k, _ in items}))
            await uow.commit()
    except BaseException:
        await svc.kv.delete(idem)
        raise
    await svc.kv.set(idem, str(order.id), ttl=IDEMPOTENCY_TTL)
    return ok(jsonable(order), status=201)


@routes.get("/orders")
@member_view
async def orders(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    page = parse_id(request.query.get("page", "1")) or 1
    async with svc.uows() as uow:
        found = await list_orders(uow, tenant.id, member, page=page, per_page=20)
    return ok({"items": jsonable(found.items), "page": found.page, "per_page": found.per_page, "total": found.total})


async def _own_order(uow: Any, tenant: int, member: int, order_id: int) -> Any:
    order = await load_order(uow, tenant, order_id)
    if order.member_id != member:
        raise NotFoundError("order", order_id)
    return order


@routes.get("/orders/{id}")
@member_view
async def order(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    async with svc.uows() as uow:
        return ok(jsonable(await _own_order(uow, tenant.id, member, _path_id(request))))


@routes.post("/orders/{id}/cancel")
@member_view
async def order_cancel(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    async with svc.uows() as uow:
        own = await _own_order(uow, tenant.id, member, _path_id(request))
        view = await cancel_order(uow, tenant.id, own.id, reason="buyer", now=svc.clock(), member_id=member)
        await uow.commit()
    return ok(jsonable(view))


# -- pay ----------------------------------------------------------------------------------

@routes.post("/orders/{id}/pay")
@member_view
async def order_pay(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    """The parameters of `wx.requestPayment` for an unpaid order: a JSAPI order at the order's
    merchant (the one its entrance names) with this mini-program's app id and the session's
    openid (prepay reused for 100 min). On the sandbox gateway (the embedded default) the
    answer is {"sandbox": true, "confirm": …}: POSTing `confirm` makes the sandbox platform
    send its signed notify, as WeChat Pay would."""
    from handlers.pay_h5 import CST, PREPAY_TTL, _description
    from social_mall.orders.rules import OrderStatus
    from social_mall.payments.sandbox import SandboxGateway

    async with svc.uows() as uow:
        own = await _own_order(uow, tenant.id, member, path_id(request))
    if own.status != OrderStatus.PENDING_PAYMENT:
        return error(409, "not_payable", "the order is not awaiting payment")
    gateway = svc.gateway(await svc.for_order(tenant, own.channel_account_id, own.pay_account_id))
    if gateway is None or gateway.name == "unavailable":
        return error(409, "pay_unavailable", "this shop takes no online payment")
    if isinstance(gateway, SandboxGateway):
        return ok({"sandbox": True, "confirm": f"{prefix(request, tenant)}/orders/{own.id}/sandbox-pay"})
    appid, openid = tenant.wechat_app_id, session_openid(request)
    other_app = appid != gateway.appid
    if not hasattr(gateway, "jsapi_params") or (other_app and gateway.name != "wxpay_v3"):
        return error(409, "pay_unavailable", "JSAPI pay is not available for the mini-program")
    async with svc.uows() as uow:   # in lots with the crowd's other pay taps (payments/desk.py)
        payment = await open_now(uow, OpenRequest(own, gateway.name))
    if payment.status != "created":
        return error(409, "not_payable", "the order is paid")
    cache = f"pay:mini:{tenant.code}:{payment.out_trade_no}:{openid}"
    extra = {"appid": appid} if other_app else {}
    try:
        prepay = await svc.kv.get(cache)
        if prepay is None:
            prepay = await gateway.jsapi(  # type: ignore[attr-defined]
                out_trade_no=payment.out_trade_no, description=_description(tenant, own),
                amount_fen=payment.amount_fen, openid=openid,
                time_expire=own.expires_at.astimezone(CST).isoformat(timespec="seconds"), **extra)
            await svc.kv.set(cache, prepay, ttl=PREPAY_TTL)
    except Exception as exc:  # noqa: BLE001 - the client only needs "try again"; the log has the kind
        log.warning("app.prepay.failed", extra={"tenant": tenant.code, "order_no": own.order_no,
                                                 "error": getattr(exc, "code", type(exc).__name__)})
        return error(502, "pay_unavailable", "WeChat Pay did not answer; try again")
    return ok({"params": gateway.jsapi_params(prepay, **extra)})  # type: ignore[attr-defined]


@routes.post("/orders/{id}/sandbox-pay")
@member_view
async def order_sandbox_pay(request: web.Request, svc: Services, tenant: TenantView, member: int
                            ) -> web.StreamResponse:
    """The sandbox's 确认支付 (sandbox gateway only): a signed notify to our notify endpoint."""
    import time

    from social_mall.orders.rules import OrderStatus
    from social_mall.payments.sandbox import SandboxGateway

    async with svc.uows() as uow:
        own = await _own_order(uow, tenant.id, member, path_id(request))
    gateway = svc.gateway(await svc.for_order(tenant, own.channel_account_id, own.pay_account_id))
    if not isinstance(gateway, SandboxGateway):
        return error(404, "not_found", "no sandbox")
    if own.status != OrderStatus.PENDING_PAYMENT:
        return error(409, "not_payable", "the order is not awaiting payment")
    async with svc.uows() as uow:
        payment = await open_now(uow, OpenRequest(own, "sandbox"))
    headers, body = gateway.pay_notify(out_trade_no=payment.out_trade_no, amount_fen=payment.amount_fen,
                                       payer=session_openid(request), now=time.time())
    async with svc.http.post(svc.notify_url(tenant.code), data=body,
                             headers={**headers, "Content-Type": "application/json"}) as resp:
        if resp.status not in (200, 204):
            return error(502, "notify_refused", "the notify was not accepted")
    async with svc.uows() as uow:
        return ok(jsonable(await load_order(uow, tenant.id, own.id)))


# -- member center and the document ---------------------------------------------------------

@routes.get("/me")
@member_view
async def me(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    """Member center: level (and the next one), growth, points, sign-in streak, usable coupons."""
    from social_mall.loyalty.service import account

    async with svc.uows() as uow:
        acc = await account(uow, tenant.id, member, svc.clock())
    return ok({"member_id": member, **jsonable(acc)})


@document.get("/api/app/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The document of the paths this app serves (a module switched off: its paths are not listed)."""
    from handlers.api_app_openapi import OPENAPI

    served = {r.resource.canonical for r in request.app.router.routes() if r.resource is not None}
    return ok({**OPENAPI, "paths": {p: ops for p, ops in OPENAPI["paths"].items() if p in served}})
