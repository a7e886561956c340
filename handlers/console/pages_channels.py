"""渠道与商户 (console): a tenant's channel accounts (official accounts, mini-programs, WeCom
apps and group robots) and WeChat Pay merchants — list, add, edit, disable, one default
merchant, an account linked to a merchant, 「测试连接」 against WeChat, and an official
account's menu edited and published (menu/create).

Secrets are write-only (a blank field keeps the stored one, the page shows only 已设置);
every change is audited by the core services with before/after (secrets "***"); bad input
is a 400 naming the field, with nothing changed. Needs the settings permission.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from handlers.console.channel_checks import WECHAT_ERRORS_ZH, Verdict, check_account, check_merchant
from handlers.console.core import (
    admin_of, console_view, form_of, int_id, redirect, render, services, tenant_of,
)
from handlers.context import Services
from adapters.wechat_client import WeChatAPIError
from social_mall.channels import merchants as merchant_svc
from social_mall.channels import service as channels
from social_mall.channels.service import KIND_LABELS, AccountView, ChannelInputError
from social_mall.console.permissions import Perm
from social_mall.tenants import with_account

routes = web.RouteTableDef()

FIELD_ZH = {
    "name": "名称", "code": "代码", "kind": "类型", "subtype": "公众号类型", "app_id": "AppID",
    "app_secret": "AppSecret", "token": "服务器 Token", "aes_key": "EncodingAESKey", "agent_id": "AgentID",
    "webhook_key": "群机器人 Webhook Key", "pay_account_id": "收款商户", "enabled": "启用", "menu": "菜单",
    "mch_id": "商户号", "api_version": "API 版本", "apiv3_key": "APIv3 密钥", "apiv2_key": "APIv2 密钥",
    "v2_sign_type": "APIv2 签名方式", "serial_no": "商户证书序列号", "platform_mode": "平台验签方式",
    "platform_key_id": "平台公钥 ID / 证书序列号", "private_key": "商户私钥（apiclient_key.pem）",
    "platform_key": "平台公钥或平台证书（PEM）", "is_default": "默认商户",
}
PROBLEM_ZH = {
    "format": "格式不对", "length": "太长", "unknown": "不存在或不可选", "taken": "已被其他账号使用",
    "fixed": "不能修改", "required": "必填", "pem": "不是可用的 PEM 密钥或证书",
    "default": "默认商户不能停用，请先把其他商户设为默认", "disabled": "已停用的商户不能设为默认",
    "json": "格式不对", "buttons": "一级菜单须为 1–3 个", "sub_button": "子菜单须为 1–5 个",
    "name": "菜单名称必填", "name_length": "菜单名称太长（一级菜单最多 16 字节，约 5 个汉字；子菜单最多 60 字节）",
    "button": "菜单类型或内容不全（关键词 / 网址 / 小程序 AppID、页面和备用网址）",
    "key_length": "关键词太长（最多 128 字节）", "url": "网址须以 http:// 或 https:// 开头",
    "url_length": "网址太长（最多 1024 字节）", "miniprogram": "小程序 AppID 或页面路径格式不对",
    "kind": "只有公众号有菜单",
}
#: the fields each kind of account shows (secrets marked)
KIND_FIELDS: dict[str, tuple[tuple[str, bool], ...]] = {
    "mp": (("app_id", False), ("app_secret", True), ("token", True), ("aes_key", True)),
    "mini": (("app_id", False), ("app_secret", True)),
    "wecom_app": (("app_id", False), ("agent_id", False), ("app_secret", True), ("token", True), ("aes_key", True)),
    "wecom_bot": (("token", True), ("aes_key", True), ("webhook_key", True)),
}
KIND_FIELD_ZH = {"wecom_app": {"app_id": "CorpID（企业 ID）", "app_secret": "应用 Secret"},
                 "wecom_bot": {"token": "回调 Token", "aes_key": "回调 EncodingAESKey"}}
MERCHANT_FIELDS = (("name", False), ("mch_id", False), ("app_id", False), ("serial_no", False),
                   ("platform_key_id", False), ("apiv3_key", True), ("apiv2_key", True))
MENU_TYPES = {"": "（无）", "click": "发送关键词", "view": "打开网址", "miniprogram": "打开小程序"}


def _problem(exc: ChannelInputError) -> str:
    return f"{FIELD_ZH.get(exc.field, exc.field)}：{PROBLEM_ZH.get(exc.problem, exc.problem)}"


def _form(request: web.Request) -> dict[str, str]:
    return {k: str(v) for k, v in form_of(request).items() if k != "_csrf" and isinstance(v, str)}


def _refresh(svc: Services) -> None:
    svc.forget_tenants()  # the 30 s tenant cache and the pay resolver must see the change


# -- the list -----------------------------------------------------------------------------

async def _list(request: web.Request, *, verdict: Verdict | None = None, subject: str = "",
                status: int = 200) -> web.Response:
    svc = services(request)
    tenant = await svc.tenant_by_id(tenant_of(request))
    async with svc.uows() as uow:
        accounts = await channels.accounts(uow, tenant.id)
        merchants = await merchant_svc.merchants(uow, tenant.id)
    names = {m.id: m.name or m.mch_id for m in merchants}
    base = svc.public_base_url
    urls = {a.id: (f"{base}/wechat/mp/{tenant.code}" if a.is_primary else f"{base}/wechat/mp/{tenant.code}/{a.code}")
            if a.kind == "mp" else (f"{base}/wechat/wecom/{tenant.code}" if a.kind.startswith("wecom") else "")
            for a in accounts}
    return render(request, "console/channels.html", status=status, accounts=accounts, merchants=merchants,
                  merchant_names=names, urls=urls, kinds=KIND_LABELS, verdict=verdict, subject=subject)


@routes.get("/console/channels")
@console_view(Perm.SETTINGS)
async def channels_page(request: web.Request) -> web.Response:
    return await _list(request)


# -- accounts -------------------------------------------------------------------------------

async def _account_form(request: web.Request, *, kind: str, account: AccountView | None = None,
                        error: str = "", status: int = 200, values: dict[str, str] | None = None) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        merchants = await merchant_svc.merchants(uow, tenant_of(request))
    labels = {**FIELD_ZH, **KIND_FIELD_ZH.get(kind, {})}
    return render(request, "console/channel_form.html", status=status, kind=kind, kind_label=KIND_LABELS[kind],
                  a=account, fields=KIND_FIELDS[kind], labels=labels, merchants=merchants, error=error,
                  values=values or {})


@routes.get("/console/channels/new")
@console_view(Perm.SETTINGS)
async def new_account_page(request: web.Request) -> web.Response:
    kind = request.query.get("kind", "mp")
    if kind not in KIND_FIELDS:
        raise redirect("/console/channels")
    return await _account_form(request, kind=kind)


def _merchant_choice(form: dict[str, str]) -> int | None:
    raw = form.get("pay_account_id", "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19):
        raise ChannelInputError("pay_account_id", "unknown")
    return int(raw)


def _account_values(kind: str, form: dict[str, str]) -> dict[str, str]:
    names = ["name"] + [f for f, _ in KIND_FIELDS[kind]] + (["subtype"] if kind == "mp" else [])
    return {k: form.get(k, "").strip() for k in names}


@routes.post("/console/channels/new")
@console_view(Perm.SETTINGS)
async def create_account(request: web.Request) -> web.Response:
    svc = services(request)
    form = _form(request)
    kind = form.get("kind", "")
    if kind not in KIND_FIELDS:
        return await _list(request, status=400, verdict=Verdict(False, "类型不对"))
    try:
        async with svc.uows() as uow:
            await channels.save_account(uow, tenant_of(request), None, kind=kind, code=form.get("code", "").strip(),
                                        values=_account_values(kind, form), pay_account_id=_merchant_choice(form),
                                        enabled=True, actor=admin_of(request).actor, now=svc.clock())
            await uow.commit()
    except ChannelInputError as exc:
        return await _account_form(request, kind=kind, error=_problem(exc), status=400,
                                   values={k: v for k, v in form.items() if k in ("name", "code", "app_id", "agent_id")})
    _refresh(svc)
    raise redirect("/console/channels", ok="created")


@routes.get("/console/channels/{id}")
@console_view(Perm.SETTINGS)
async def account_page(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        a = await channels.account(uow, tenant_of(request), int_id(request))
    return await _account_form(request, kind=a.kind, account=a)


@routes.post("/console/channels/{id}")
@console_view(Perm.SETTINGS)
async def save_account(request: web.Request) -> web.Response:
    svc = services(request)
    form = _form(request)
    async with svc.uows() as uow:
        a = await channels.account(uow, tenant_of(request), int_id(request))
    try:
        async with svc.uows() as uow:
            await channels.save_account(uow, tenant_of(request), a.id, kind=a.kind, code=a.code,
                                        values=_account_values(a.kind, form), pay_account_id=_merchant_choice(form),
                                        enabled=form.get("enabled") == "1", actor=admin_of(request).actor,
                                        now=svc.clock())
            await uow.commit()
    except ChannelInputError as exc:
        return await _account_form(request, kind=a.kind, account=a, error=_problem(exc), status=400)
    _refresh(svc)
    raise redirect("/console/channels", ok="saved")


@routes.post("/console/channels/{id}/test")
@console_view(Perm.SETTINGS)
async def test_account(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        a = await channels.account(uow, tenant_of(request), int_id(request))
    verdict = await check_account(svc, a)
    return await _list(request, verdict=verdict, subject=f"{a.kind_label}「{a.name or a.code}」")


# -- the official account's menu ------------------------------------------------------------

async def _mp_account(request: web.Request) -> AccountView:
    async with services(request).uows() as uow:
        a = await channels.account(uow, tenant_of(request), int_id(request))
    if a.kind != "mp":
        raise ChannelInputError("menu", "kind")
    return a


async def _menu_page(request: web.Request, a: AccountView, *, error: str = "", status: int = 200,
                     rows: list[dict[str, object]] | None = None, verdict: Verdict | None = None) -> web.Response:
    return render(request, "console/channel_menu.html", status=status, a=a,
                  rows=rows if rows is not None else channels.menu_rows(a.menu), types=MENU_TYPES, error=error,
                  verdict=verdict, menu_json=a.menu)


@routes.get("/console/channels/{id}/menu")
@console_view(Perm.SETTINGS)
async def menu_page(request: web.Request) -> web.Response:
    try:
        a = await _mp_account(request)
    except ChannelInputError as exc:
        return await _list(request, status=400, verdict=Verdict(False, _problem(exc)))
    return await _menu_page(request, a)


def _rows_from_form(form: dict[str, str]) -> list[dict[str, object]]:
    keys = ("name", "type", "key", "url", "appid", "pagepath")
    return [{**{k: form.get(f"b{i}_{k}", "") for k in keys},
             "subs": [{k: form.get(f"b{i}_s{j}_{k}", "") for k in keys} for j in range(channels.MENU_SUB_MAX)]}
            for i in range(channels.MENU_TOP_MAX)]


@routes.post("/console/channels/{id}/menu")
@console_view(Perm.SETTINGS)
async def save_menu(request: web.Request) -> web.Response:
    svc = services(request)
    form = _form(request)
    try:
        a = await _mp_account(request)
    except ChannelInputError as exc:
        return await _list(request, status=400, verdict=Verdict(False, _problem(exc)))
    try:
        menu = channels.menu_from_form(form)
        async with svc.uows() as uow:
            await channels.save_menu(uow, tenant_of(request), a.id, menu, actor=admin_of(request).actor,
                                     now=svc.clock())
            await uow.commit()
    except ChannelInputError as exc:
        return await _menu_page(request, a, error=_problem(exc), status=400, rows=_rows_from_form(form))
    raise redirect(f"/console/channels/{a.id}/menu", ok="saved")


@routes.post("/console/channels/{id}/menu/publish")
@console_view(Perm.SETTINGS)
async def publish_menu(request: web.Request) -> web.Response:
    """menu/create with the saved menu, through the account's own credentials; the JSON sent
    and WeChat's answer are audited whatever it says."""
    svc = services(request)
    try:
        a = await _mp_account(request)
    except ChannelInputError as exc:
        return await _list(request, status=400, verdict=Verdict(False, _problem(exc)))
    if not a.menu:
        return await _menu_page(request, a, status=400, error="请先保存菜单再发布")
    tenant = await svc.tenant_by_id(tenant_of(request))
    menu: Any = json.loads(a.menu)
    errcode, errmsg = 0, "ok"
    try:
        view = with_account(tenant, a)  # this account's credentials, enabled or not (never another's)
        await svc.wechat(view).call("POST", "/cgi-bin/menu/create", json=menu)
    except WeChatAPIError as exc:
        errcode, errmsg = exc.errcode, exc.errmsg
    async with svc.uows() as uow:
        await channels.menu_published(uow, tenant.id, a.id, menu=a.menu, errcode=errcode, errmsg=errmsg,
                                      actor=admin_of(request).actor, now=svc.clock())
        await uow.commit()
        a = await channels.account(uow, tenant.id, a.id)
    if errcode == 0:
        return await _menu_page(request, a, verdict=Verdict(True, "菜单已发布（微信客户端约 5 分钟内更新）"))
    zh = WECHAT_ERRORS_ZH.get(errcode, "未知错误")
    return await _menu_page(request, a, status=502,
                            verdict=Verdict(False, f"微信拒绝：{zh}（errcode {errcode}：{errmsg[:120]}）"))


# -- pay merchants ----------------------------------------------------------------------------

async def _merchant_form(request: web.Request, *, m: merchant_svc.MerchantView | None = None, error: str = "",
                         status: int = 200, values: dict[str, str] | None = None) -> web.Response:
    return render(request, "console/merchant_form.html", status=status, m=m, fields=MERCHANT_FIELDS,
                  labels=FIELD_ZH, error=error, values=values or {})


@routes.get("/console/merchants/new")
@console_view(Perm.SETTINGS)
async def new_merchant_page(request: web.Request) -> web.Response:
    return await _merchant_form(request)


def _merchant_values(form: dict[str, str]) -> dict[str, str]:
    names = [f for f, _ in MERCHANT_FIELDS] + ["api_version", "v2_sign_type", "platform_mode", *merchant_svc.FILES]
    return {k: form.get(k, "") for k in names}


@routes.post("/console/merchants/new")
@console_view(Perm.SETTINGS)
async def create_merchant(request: web.Request) -> web.Response:
    svc = services(request)
    form = _form(request)
    try:
        async with svc.uows() as uow:
            await merchant_svc.save_merchant(
                uow, tenant_of(request), None, _merchant_values(form), enabled=True,
                keys_dir=svc.settings.data_dir / "pay_keys", base_url=svc.settings.pay_api_base,
                actor=admin_of(request).actor, now=svc.clock())
            await uow.commit()
    except ChannelInputError as exc:
        plain = {k: form.get(k, "") for k in ("name", "mch_id", "app_id", "serial_no", "platform_key_id")}
        return await _merchant_form(request, error=_problem(exc), status=400, values=plain)
    _refresh(svc)
    raise redirect("/console/channels", ok="created")


@routes.get("/console/merchants/{id}")
@console_view(Perm.SETTINGS)
async def merchant_page(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        m = await merchant_svc.merchant(uow, tenant_of(request), int_id(request))
    return await _merchant_form(request, m=m)


@routes.post("/console/merchants/{id}")
@console_view(Perm.SETTINGS)
async def save_merchant(request: web.Request) -> web.Response:
    svc = services(request)
    form = _form(request)
    async with svc.uows() as uow:
        m = await merchant_svc.merchant(uow, tenant_of(request), int_id(request))
    try:
        async with svc.uows() as uow:
            await merchant_svc.save_merchant(
                uow, tenant_of(request), m.id, _merchant_values(form), enabled=form.get("enabled") == "1",
                keys_dir=svc.settings.data_dir / "pay_keys", base_url=svc.settings.pay_api_base,
                actor=admin_of(request).actor, now=svc.clock())
            await uow.commit()
    except ChannelInputError as exc:
        return await _merchant_form(request, m=m, error=_problem(exc), status=400)
    async with svc.uows() as uow:   # saved: a replaced key's file goes
        await merchant_svc.prune_keys(uow, tenant_of(request), m.id, svc.settings.data_dir / "pay_keys")
    _refresh(svc)
    raise redirect("/console/channels", ok="saved")


@routes.post("/console/merchants/{id}/default")
@console_view(Perm.SETTINGS)
async def default_merchant(request: web.Request) -> web.Response:
    svc = services(request)
    try:
        async with svc.uows() as uow:
            await merchant_svc.make_default(uow, tenant_of(request), int_id(request), actor=admin_of(request).actor)
            await uow.commit()
    except ChannelInputError as exc:
        return await _list(request, status=400, verdict=Verdict(False, _problem(exc)))
    _refresh(svc)
    raise redirect("/console/channels", ok="saved")


@routes.post("/console/merchants/{id}/test")
@console_view(Perm.SETTINGS)
async def test_merchant(request: web.Request) -> web.Response:
    svc = services(request)
    tenant = await svc.tenant_by_id(tenant_of(request))
    async with svc.uows() as uow:
        m = await merchant_svc.merchant(uow, tenant.id, int_id(request))
    verdict = await check_merchant(svc, tenant, m.id)
    return await _list(request, verdict=verdict, subject=f"商户「{m.name or m.mch_id}」")
