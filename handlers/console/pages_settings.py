"""Tenant settings (credentials write-only) and, for the platform super-admin, tenants."""

from __future__ import annotations

from aiohttp import web

from social_mall.channels.service import sync_primary

from handlers.console.core import admin_of, console_view, form_of, redirect, render, services, tenant_of
from social_mall.console.permissions import Perm
from social_mall.console.tenants import CREDENTIALS, create_tenant, list_tenants, tenant_settings, update_settings

routes = web.RouteTableDef()

LABELS = {
    "wechat_app_id": "公众号 AppID", "wechat_app_secret": "公众号 AppSecret", "wechat_token": "服务器 Token",
    "wechat_aes_key": "EncodingAESKey（43 位）", "pay_mch_id": "微信支付商户号", "pay_app_id": "支付 AppID",
    "pay_apiv3_key": "APIv3 密钥（32 位）",
}


@routes.get("/console/settings")
@console_view(Perm.SETTINGS)
async def settings_page(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        s = await tenant_settings(uow, tenant_of(request))
    return render(request, "console/settings.html", s=s, fields=[(f, LABELS[f], CREDENTIALS[f][2]) for f in CREDENTIALS])


@routes.post("/console/settings")
@console_view(Perm.SETTINGS)
async def save_settings(request: web.Request) -> web.Response:
    svc = services(request)
    form = {k: str(v) for k, v in form_of(request).items() if k != "_csrf"}
    async with svc.uows() as uow:
        changed = await update_settings(uow, tenant_of(request), admin_of(request), form)
        if changed:  # the tenant's official account is its primary channel account too
            await sync_primary(uow, tenant_of(request), svc.clock())
        await uow.commit()
    if changed:
        svc.forget_tenants()  # the 30 s tenant cache must not keep old credentials
    raise redirect("/console/settings", ok="saved")


@routes.get("/console/tenants")
@console_view(Perm.TENANTS, tenant=False)
async def tenants(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        rows = await list_tenants(uow)
    return render(request, "console/tenants.html", tenants=rows)


@routes.post("/console/tenants")
@console_view(Perm.TENANTS, tenant=False)
async def add_tenant(request: web.Request) -> web.Response:
    form = form_of(request)
    async with services(request).uows() as uow:
        await create_tenant(uow, admin_of(request), code=str(form.get("code", "")), name=str(form.get("name", "")),
                            owner_username=str(form.get("owner_username", "")),
                            owner_password=str(form.get("owner_password", "")))
        await uow.commit()
    raise redirect("/console/tenants", ok="created")
