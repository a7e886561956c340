"""The mini-program / app JSON API (/api/app/v1/{tenant}/{account}/…): first slice.

`POST …/login {"code": <wx.login code>}` → code2session at WeChat with the mini-program
account's app id and secret → the member behind the `mini` openid (one person with the
official accounts' member when WeChat gives a unionid: `channels.service.link_unionid`, the
core's merge path) → a session token (random, 7 days, only its SHA-256 kept in the
key-value store). `GET …/me` answers who that is, `GET …/orders` their orders (every
channel's, since the member is one). Errors look like the console API's
({"error": {"code", "message"}}). The rest of issue 25's app API is not built yet.
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
from social_mall.channels.service import link_unionid
from social_mall.members.service import member_of, resolve_member
from social_mall.orders.service import list_orders
from social_mall.parsing import parse_openid
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
    try:
        data = await code2session(svc, tenant, code)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return error(502, "wechat_unavailable", "WeChat could not be reached")
    openid = parse_openid(data.get("openid"))
    if openid is None:
        log.info("app.login.refused", extra={"tenant": tenant.code, "errcode": data.get("errcode")})
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
