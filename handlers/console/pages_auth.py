"""Login and logout. The login form has its own CSRF token (double-submit cookie) since
there is no session yet; a new session id is issued at every login."""

from __future__ import annotations

import secrets

from aiohttp import web

from handlers.console.core import (
    COOKIE, LOGIN_CSRF_COOKIE, SID, SECURITY_HEADERS, console_view, render, services, set_cookie,
)
from handlers.http_utils import read_form
from social_mall.console.auth import login
from social_mall.console.sessions import close_session, open_session
from social_mall.parsing import same_secret

routes = web.RouteTableDef()

LOGIN_ERRORS = {
    "bad_credentials": "用户名或密码不对",
    "locked": "连续输错次数过多，账号已锁定 15 分钟",
    "rate_limited": "尝试太频繁，请 10 分钟后再试",
    "disabled": "账号已停用，请联系店主",
}


def _safe_next(raw: str) -> str:
    return raw if raw.startswith("/console/") and not raw.startswith("//") and "\\" not in raw else "/console/"


def _login_page(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not (20 <= len(token) <= 64 and token.isascii() and token.replace("-", "").replace("_", "").isalnum()):
        token = secrets.token_urlsafe(24)
    resp = render(request, "console/login.html", status=status, login_csrf=token, error=error,
                  next=_safe_next(request.query.get("next", "/console/")))
    set_cookie(request, resp, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return resp


@routes.get("/console/login")
async def login_form(request: web.Request) -> web.Response:
    return _login_page(request)


@routes.post("/console/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    form = await read_form(request, SECURITY_HEADERS)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    sent = str(form.get("_csrf", ""))
    # double submit: both values come from the client; the cookie is one we set (ASCII)
    if not (cookie and cookie.isascii() and same_secret(sent, cookie)):
        raise web.HTTPForbidden(text="CSRF token missing or wrong", headers=SECURITY_HEADERS)
    async with svc.uows() as uow:
        result = await login(uow, svc.kv, username=str(form.get("username", "")),
                             password=str(form.get("password", ""))[:200],
                             address=request.remote or "?", now=svc.clock())
        await uow.commit()
    if result.admin is None:
        return _login_page(request, error=LOGIN_ERRORS[result.error],
                           status=429 if result.error == "rate_limited" else 401)
    old = request.cookies.get(COOKIE, "")
    if old:
        await close_session(svc.kv, old)
    sid, _ = await open_session(svc.kv, result.admin.id, result.admin.cred_version)
    target = _safe_next(str(form.get("next", "/console/")))
    if result.admin.tenant_id is None and target == "/console/":
        target = "/console/tenants"
    resp = web.HTTPSeeOther(target)
    set_cookie(request, resp, COOKIE, sid)
    resp.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    raise resp


@routes.post("/console/logout")
@console_view(None, tenant=False)
async def logout(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    await close_session(svc.kv, request[SID])
    resp = web.HTTPSeeOther("/console/login")
    resp.del_cookie(COOKIE, path="/")
    raise resp
