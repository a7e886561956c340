"""Console plumbing: sessions (cookie ↔ KV), CSRF on every non-GET, permissions on every
route, tenant scope, rendering inside the layout, error pages, CSV streaming."""

from __future__ import annotations

import csv
import functools
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from handlers.console.registry import console_pages, extra_permissions
from handlers.context import SERVICES, Services
from handlers.http_utils import MALFORMED_FORM, bad_form, read_form
from social_mall.console.auth import AdminView, session_admin
from social_mall.console.errors import ConflictError, CredentialsChangedError, InvalidInputError
from social_mall.console.permissions import ROLE_ZH, Perm, permits
from social_mall.console.rules import MAX_STOCK
from social_mall.console.sessions import ConsoleSession, close_session, load_session
from social_mall.errors import MallError, NotFoundError
from social_mall.parsing import parse_id, same_secret, is_storable_text
from social_mall.admins import Role

log = logging.getLogger(__name__)

COOKIE = "sm_console"

_Key: Any = getattr(web, "RequestKey", None)


def _key(name: str, kind: Any) -> Any:
    return _Key(name, kind) if _Key is not None else name  # typed request keys (aiohttp >= 3.12)


ADMIN = _key("console_admin", AdminView)
SESSION = _key("console_session", ConsoleSession)
SID = _key("console_sid", str)
FORM = _key("console_form", object)
MULTIPART = _key("console_multipart", object)
TENANT_NAME = _key("console_tenant_name", str)
LOGIN_CSRF_COOKIE = "sm_console_login"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data: http: https:; style-src 'self'; "
                                "script-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

#: Built-in navigation: (key, title, path, permission, order). Modules add theirs with
#: handlers.console.registry.add_console_page.
NAV: tuple[tuple[str, str, str, str, int], ...] = (
    ("dashboard", "概览", "/console/", Perm.DASHBOARD, 10),
    ("products", "商品", "/console/products", Perm.CATALOG_VIEW, 20),
    ("categories", "分类", "/console/categories", Perm.CATALOG_VIEW, 25),
    ("orders", "订单", "/console/orders", Perm.ORDERS_VIEW, 30),
    ("members", "会员", "/console/members", Perm.MEMBERS_VIEW, 50),
    ("tags", "会员标签", "/console/tags", Perm.MEMBERS_VIEW, 51),
    ("audit", "操作日志", "/console/audit", Perm.AUDIT_VIEW, 80),
    ("settings", "店铺设置", "/console/settings", Perm.SETTINGS, 85),
    ("channels", "渠道与商户", "/console/channels", Perm.SETTINGS, 86),
    ("admins", "管理员", "/console/admins", Perm.ADMINS, 90),
    ("tokens", "API 令牌", "/console/tokens", Perm.TOKENS, 95),
    ("tenants", "租户", "/console/tenants", Perm.TENANTS, 5),
)

MESSAGES = {
    "saved": "已保存", "created": "已创建", "shipped": "已发货，买家会收到发货通知", "deleted": "已删除",
    "refund_requested": "退款已提交，网关处理后订单状态会更新", "uploaded": "图片已上传",
    "token_revoked": "令牌已作废", "on_shelf": "已上架", "off_shelf": "已下架",
}

PROBLEMS_ZH = {
    "required": "必填", "too_long": "太长", "too_short": "太短", "text": "格式不对", "integer": "须为整数",
    "range": "超出范围", "price_format": "价格格式如 39.90", "price_range": "价格须大于 0",
    "tracking_format": "运单号为 4–64 位字母数字", "unknown_category": "分类不存在", "date_format": "日期格式如 2025-01-31",
    "weak_password": "密码至少 10 位", "username_format": "用户名 3–64 位字母数字", "code_format": "代码为小写字母开头",
    "credential_format": "长度或字符不对", "stock_below_zero": "库存不能小于 0",
    "stock_above_max": f"库存不能超过 {MAX_STOCK}", "invalid_text": "含有无法保存的字符",
    "multipart": "表单格式不对", "unknown_status": "状态不对",
    "unknown_refund_filter": "退款筛选不对",
    "own_role": "不能修改自己的角色", "own_account": "不能停用自己的账号", "role": "角色不对", "control_chars": "含有控制字符", "too_many": "太多",
    "super_only": "仅平台管理员", "file_type": "只支持 PNG/JPEG/GIF/WebP 图片", "file_size": "图片不能超过 2 MB",
    "file_missing": "请选择图片", "image_dimensions": "图片尺寸过大",
    "birthday_format": "生日格式如 05-01 或 1990-05-01（留空为清除）",
    "tag_name": "标签名 1–30 个字，不含控制字符", "tags_full": "标签太多（最多 200 个），请先删掉不用的",
    "tag_taken": "已有同名标签",
}


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def is_secure(request: web.Request) -> bool:
    svc = services(request)
    return request.secure or svc.public_base_url.startswith("https://")


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, httponly=True, samesite="Strict", secure=is_secure(request), path="/",
                        max_age=max_age)


def admin_of(request: web.Request) -> AdminView:
    admin = request[ADMIN]
    assert isinstance(admin, AdminView)
    return admin


def tenant_of(request: web.Request) -> int:
    tenant = admin_of(request).tenant_id
    assert tenant is not None
    return tenant


def can(request: web.Request, perm: str) -> bool:
    return permits(admin_of(request).role, perm, extra_permissions(services(request).registry))


def redirect(location: str, **params: str) -> web.HTTPSeeOther:
    if params:
        location += ("&" if "?" in location else "?") + urlencode(params)
    return web.HTTPSeeOther(location)


def render(request: web.Request, template: str, status: int = 200, **ctx: Any) -> web.Response:
    svc = services(request)
    admin: AdminView | None = request.get(ADMIN)
    nav: list[dict[str, str]] = []
    if admin is not None:
        entries = [(k, t, p, perm, o) for k, t, p, perm, o in NAV]
        entries += [(p.key, p.title, p.path, p.perm, p.order) for p in console_pages(svc.registry)]
        nav = [{"key": k, "title": t, "path": p} for k, t, p, perm, o in sorted(entries, key=lambda e: e[4])
               if can(request, perm) and (admin.tenant_id is not None or perm in (Perm.TENANTS, Perm.TOKENS))]
    session: ConsoleSession | None = request.get(SESSION)
    html = svc.templates.get_template(template).render(
        admin=admin, role_zh=ROLE_ZH.get(Role(admin.role), admin.role) if admin else "", nav=nav,
        csrf=session.csrf if session else "", path=request.path,
        message=MESSAGES.get(request.query.get("ok", ""), ""), can=lambda perm: can(request, perm),
        tenant_name=request.get(TENANT_NAME, ""), **ctx,
    )
    resp = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    resp.headers.update(SECURITY_HEADERS)
    return resp


def problem_text(exc: InvalidInputError) -> str:
    return f"{exc.field}：{PROBLEMS_ZH.get(exc.problem, exc.problem)}"


def error_page(request: web.Request, status: int, title: str, detail: str = "") -> web.Response:
    return render(request, "console/error.html", status=status, title=title, detail=detail)


async def _check_csrf(request: web.Request, session: ConsoleSession) -> None:
    """Every state-changing request carries the session's token: a form field `_csrf`
    (first part of a multipart form) or an X-CSRF-Token header."""
    sent = request.headers.get("X-CSRF-Token", "")
    if request.content_type == "multipart/form-data":
        try:
            reader = await request.multipart()
            part = await reader.next()
            if part is not None and getattr(part, "name", None) == "_csrf" and not sent:
                sent = (await part.read(decode=True))[:200].decode("utf-8", "replace")  # type: ignore[union-attr]
        except MALFORMED_FORM:
            raise bad_form(request, "multipart", SECURITY_HEADERS) from None
        request[MULTIPART] = reader
    else:
        form = await read_form(request, SECURITY_HEADERS)
        request[FORM] = form
        sent = sent or str(form.get("_csrf", ""))
    if not sent or not same_secret(sent, session.csrf):
        log.warning("console.csrf_rejected", extra={"path": request.path})
        raise web.HTTPForbidden(text="CSRF token missing or wrong", headers=SECURITY_HEADERS)


def _to_login(request: web.Request) -> web.HTTPSeeOther:
    target = request.path_qs if request.method == "GET" else "/console/"
    return web.HTTPSeeOther("/console/login?next=" + quote(target, safe=""))


#: path variables that name a row: checked for every console route (modules' included)
PATH_IDS = ("id", "sku_id", "tag_id")


def console_view(perm: str | None, *, tenant: bool = True) -> Callable[[Handler], Handler]:
    """Guard a console handler: a live session (else to the login page), CSRF on every
    non-GET, the permission (else 403), and a tenant (super-admins are sent to tenants)."""

    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def handler(request: web.Request) -> web.StreamResponse:
            svc = services(request)
            sid = request.cookies.get(COOKIE, "")
            session = await load_session(svc.kv, sid) if sid else None
            admin = None
            if session is not None:
                async with svc.uows() as uow:
                    admin = await session_admin(uow, session.admin_id, session.cred_version)
                if admin is None:  # disabled, or credentials changed since login: the session has ended
                    await close_session(svc.kv, sid)
            if session is None or admin is None:
                raise _to_login(request)
            request[ADMIN], request[SESSION], request[SID] = admin, session, sid
            if admin.tenant_id is not None:
                t = await svc.tenant_by_id(admin.tenant_id)
                request[TENANT_NAME] = t.name
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                await _check_csrf(request, session)
            if not all(is_storable_text(k) and is_storable_text(v) for k, v in request.query.items()):
                return error_page(request, 400, "输入有误", "查询条件含有无法保存的字符。")
            if perm is not None and not can(request, perm):
                return error_page(request, 403, "没有权限", "你的角色不能使用这个功能。")
            if tenant and admin.tenant_id is None:
                raise web.HTTPSeeOther("/console/tenants")
            if any(parse_id(request.match_info[k]) is None for k in PATH_IDS if k in request.match_info):
                # an odd id in the path is a 404 before the handler reads anything (its form included)
                return error_page(request, 404, "不存在", "没有找到这条记录。")
            try:
                response = await fn(request)
            except CredentialsChangedError:  # changed while this request ran
                await close_session(svc.kv, sid)
                raise _to_login(request) from None
            except NotFoundError:
                return error_page(request, 404, "不存在", "没有找到这条记录。")
            except InvalidInputError as exc:
                return error_page(request, 400, "输入有误", problem_text(exc))
            except ConflictError as exc:
                return error_page(request, 409, "冲突", f"{exc.what}：{exc.key}")
            except MallError as exc:
                return error_page(request, 409, "无法完成", exc.code)
            response.headers.update({k: v for k, v in SECURITY_HEADERS.items() if k not in response.headers})
            return response

        return handler

    return wrap


def form_of(request: web.Request) -> Any:
    return request.get(FORM) or {}


def page_number(request: web.Request) -> int:
    n = parse_id(request.query.get("page", "1"))
    return n if n is not None and n < 100_000 else 1


def int_id(request: web.Request, name: str = "id") -> int:
    """An id from the path (social_mall.parsing.parse_id); anything else is the 404 page."""
    raw = request.match_info[name]
    n = parse_id(raw)
    if n is None:
        raise NotFoundError(name, raw[:20])
    return n


async def stream_csv(request: web.Request, filename: str, rows: AsyncIterator[list[str]]) -> web.StreamResponse:
    """Stream a CSV (UTF-8 with BOM, so spreadsheets read Chinese) row batch by batch."""
    resp = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"',
        **SECURITY_HEADERS,
    })
    await resp.prepare(request)
    await resp.write("\ufeff".encode())
    buf = io.StringIO()
    writer = csv.writer(buf)
    n = 0
    async for row in rows:
        writer.writerow(row)
        n += 1
        if n % 200 == 0:
            await resp.write(buf.getvalue().encode())
            buf.seek(0)
            buf.truncate()
    await resp.write(buf.getvalue().encode())
    await resp.write_eof()
    return resp
