"""Web OAuth (`snsapi_base`) for the pay page: who is paying (their official-account openid).

    GET /h5/oauth/{tenant}?next=/h5/pay/…        → 302 to open.weixin.qq.com/connect/oauth2/authorize
    GET /h5/oauth/{tenant}/callback?code&state   → exchange the code, set the payer cookie, 302 to next

CSRF: `state` is random, single use, stored in the KV store for 10 minutes together with a
random browser-session id that is also set as an HttpOnly cookie; the callback only accepts
a state whose session id matches the cookie of the browser that started. `next` must be one
of the tenant's own pay pages or its bind page (handlers/wecom_bind.py): no open redirect. The payer's openid then lives in an
HMAC-signed, HttpOnly, SameSite=Lax cookie scoped to /h5/ for two hours.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from urllib.parse import quote

import aiohttp
from aiohttp import web

from handlers.context import Services, shop_of
from social_mall.parsing import parse_id, same_secret, is_storable_text
from social_mall.tenants import TenantView

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

SESSION_COOKIE = "sm_oauth"
STATE_TTL = 600
PAYER_TTL = 7200


def _secure(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"


def _payer_cookie_name(tenant: TenantView) -> str:
    return f"sm_payer_{tenant.code}"


def _mac(svc: Services, tenant: TenantView, openid: str, exp: int) -> str:
    key = svc.settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"payer:{tenant.code}:{openid}:{exp}".encode(), hashlib.sha256).hexdigest()[:32]


def payer_openid(request: web.Request, svc: Services, tenant: TenantView) -> str | None:
    """The payer's openid from the signed cookie, if present, intact and unexpired."""
    raw = request.cookies.get(_payer_cookie_name(tenant), "")
    parts = raw.split("|")
    if len(parts) != 3:
        return None
    openid, exp_s, mac = parts
    exp = parse_id(exp_s)  # ASCII digits only ("²" passes isdigit(), int() raises)
    if exp is None or exp < time.time() or not openid or not is_storable_text(openid):
        return None
    if not same_secret(mac, _mac(svc, tenant, openid, exp)):
        return None
    return openid


def allowed_next(tenant: TenantView, nxt: str) -> bool:
    own = nxt.startswith(f"/h5/pay/{tenant.code}/") or nxt.startswith(f"/h5/bind/{tenant.code}?")
    return own and "//" not in nxt and "\\" not in nxt


def authorize_url(svc: Services, tenant: TenantView, state: str) -> str:
    redirect = f"{svc.public_base_url}/h5/oauth/{tenant.code}/callback"
    return (
        f"{svc.settings.wechat_oauth_base.rstrip('/')}/connect/oauth2/authorize"
        f"?appid={quote(tenant.wechat_app_id)}&redirect_uri={quote(redirect, safe='')}"
        f"&response_type=code&scope=snsapi_base&state={state}#wechat_redirect"
    )


@routes.get("/h5/oauth/{tenant}")
async def start(request: web.Request) -> web.Response:
    svc, tenant = await shop_of(request)
    nxt = request.query.get("next", "")
    if not allowed_next(tenant, nxt):
        raise web.HTTPBadRequest(text="链接无效")
    sid = request.cookies.get(SESSION_COOKIE, "")
    if not (20 <= len(sid) <= 64 and sid.isascii() and sid.replace("-", "").replace("_", "").isalnum()):
        sid = secrets.token_urlsafe(24)
    state = secrets.token_urlsafe(24)
    await svc.kv.set(f"oauth:{tenant.code}:{state}", json.dumps({"sid": sid, "next": nxt}), ttl=STATE_TTL)
    resp = web.HTTPFound(authorize_url(svc, tenant, state))
    resp.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Lax", path="/h5/",
                    secure=_secure(request), max_age=STATE_TTL)
    raise resp


async def exchange_code(svc: Services, tenant: TenantView, code: str) -> str | None:
    """The openid for an OAuth code, or None when WeChat refuses it (used, expired…)."""
    url = f"{svc.settings.wechat_api_base.rstrip('/')}/sns/oauth2/access_token"
    params = {"appid": tenant.wechat_app_id, "secret": tenant.wechat_app_secret, "code": code,
              "grant_type": "authorization_code"}
    try:
        async with svc.http.get(url, params=params, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            data = json.loads(await resp.read())
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("oauth.exchange.failed", extra={"tenant": tenant.code, "error": type(exc).__name__})
        return None
    if not isinstance(data, dict) or data.get("errcode") or not isinstance(data.get("openid"), str):
        log.warning("oauth.exchange.refused", extra={"tenant": tenant.code,
                                                      "errcode": data.get("errcode") if isinstance(data, dict) else None})
        return None
    return str(data["openid"])


@routes.get("/h5/oauth/{tenant}/callback")
async def callback(request: web.Request) -> web.Response:
    svc, tenant = await shop_of(request)
    state, code = request.query.get("state", ""), request.query.get("code", "")
    key = f"oauth:{tenant.code}:{state}"
    raw = await svc.kv.get(key) if state else None
    # single use: only the first callback that swaps the value wins
    if not raw or not await svc.kv.cas(key, raw, "", ttl=1):
        raise web.HTTPForbidden(text="授权已失效，请返回公众号重新打开支付链接")
    saved = json.loads(raw)
    if not same_secret(request.cookies.get(SESSION_COOKIE, ""), str(saved.get("sid", ""))):
        log.warning("oauth.state.session_mismatch", extra={"tenant": tenant.code})
        raise web.HTTPForbidden(text="授权已失效，请返回公众号重新打开支付链接")
    if not code:
        raise web.HTTPForbidden(text="未授权，无法支付")
    openid = await exchange_code(svc, tenant, code)
    if openid is None:
        raise web.HTTPForbidden(text="授权失败，请返回公众号重新打开支付链接")
    exp = int(time.time()) + PAYER_TTL
    resp = web.HTTPFound(str(saved["next"]))
    resp.set_cookie(_payer_cookie_name(tenant), f"{openid}|{exp}|{_mac(svc, tenant, openid, exp)}",
                    httponly=True, samesite="Lax", path="/h5/", secure=_secure(request), max_age=PAYER_TTL)
    resp.del_cookie(SESSION_COOKIE, path="/h5/")
    raise resp
