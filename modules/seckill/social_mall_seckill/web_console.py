"""The module's console page (/console/seckill), through the console's extension point
(`console_view`: session, CSRF on every POST, the permission, the admin's tenant): the
sessions with their items (秒杀价, 库存, 已售 = paid, 待支付 = ordered not paid yet, 剩余,
and what the admission step holds in memory), a form to create a session, per session a
form to edit it and one to add an item, per item a form to edit it, and the anti-abuse
settings. A bad form answers with the page again and a Chinese problem (400), never a 500.
Every change is audited."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from aiohttp import web

from handlers.console.core import admin_of, console_view, form_of, int_id, redirect, render, services, tenant_of
from handlers.console.registry import add_console_page, add_console_permission
from social_mall.parsing import parse_id
from social_mall.plugins import Registry
from social_mall_seckill import service
from social_mall_seckill.flow import HOLDER
from social_mall_seckill.errors import InvalidSessionError, SeckillError
from social_mall_seckill.rules import pool

routes = web.RouteTableDef()

VIEW, EDIT = "seckill.view", "seckill.edit"
SHANGHAI = timezone(timedelta(hours=8))
YUAN = re.compile(r"^(\d{1,7})(?:\.(\d{1,2}))?$")


def register(reg: Registry) -> None:
    reg.add_routes(routes)
    add_console_page(reg, key="seckill", title="秒杀", path="/console/seckill", perm=VIEW, order=48, module="seckill")
    add_console_permission(reg, VIEW, ("admin", "operator", "service", "finance"))
    add_console_permission(reg, EDIT, ("admin", "operator"))


def _actor(request: web.Request) -> str:
    return f"admin:{admin_of(request).username}"


def _text(form: Mapping[str, object], name: str, max_len: int) -> str:
    value = " ".join(unicodedata.normalize("NFKC", str(form.get(name, "") or "")).split())
    if len(value) > max_len or not value.isprintable():
        raise InvalidSessionError("名称过长或含有不可见字符")
    return value


def _int(form: Mapping[str, object], name: str, what: str) -> int:
    raw = str(form.get(name, "") or "").strip()
    if not (0 < len(raw) <= 7 and raw.isascii() and raw.isdigit()):
        raise InvalidSessionError(f"{what}须为整数")
    return int(raw)


def _fen(form: Mapping[str, object], name: str) -> int:
    m = YUAN.match(str(form.get(name, "") or "").strip())
    if m is None:
        raise InvalidSessionError("价格格式如 9.90")
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))


def _when(form: Mapping[str, object], name: str) -> datetime:
    raw = str(form.get(name, "") or "").strip()
    try:
        at = datetime.strptime(raw, "%Y-%m-%dT%H:%M")
    except ValueError:
        raise InvalidSessionError("时间格式如 2030-01-01T20:00（北京时间）") from None
    return at.replace(tzinfo=SHANGHAI).astimezone(timezone.utc)


async def _page(request: web.Request, status: int = 200, error: str = "") -> web.Response:
    svc = services(request)
    tenant = tenant_of(request)
    async with svc.uows() as uow:
        found = await service.sessions(uow, tenant)
        counted = await service.counts(uow, tenant, [it.id for s in found for it in s.items])
        settings = await service.settings(uow, tenant)
    memory = {}
    for s in found:
        for it in s.items:
            st = await svc.admission.state(tenant, pool(it.id))
            memory[it.id] = st
    return render(request, "console/seckill/sessions.html", status, sessions=found, counted=counted,
                  memory=memory, settings=settings, error=error, now=svc.clock(), ok=request.query.get("ok", ""),
                  shanghai_input=lambda at: at.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M"))


@routes.get("/console/seckill")
@console_view(VIEW)
async def sessions_page(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/console/seckill/sessions")
@console_view(EDIT)
async def session_create(request: web.Request) -> web.Response:
    svc = services(request)
    form = form_of(request)
    try:
        title = _text(form, "title", 40)
        starts, ends = _when(form, "starts_at"), _when(form, "ends_at")
        minutes = _int(form, "pay_minutes", "支付时限")
        async with svc.uows() as uow:
            sid = await service.create_session(uow, tenant_of(request), title, starts, ends, minutes, svc.clock())
            uow.audit(tenant_of(request), _actor(request), "seckill.session_create", f"seckill_session:{sid}",
                      after={"title": title, "starts_at": starts.isoformat(), "ends_at": ends.isoformat(),
                             "pay_minutes": minutes})
            await uow.commit()
    except SeckillError as exc:
        return await _page(request, 400, str(exc.facts().get("problem", exc.code)))
    raise redirect("/console/seckill", ok="saved")


@routes.post(r"/console/seckill/sessions/{id}")
@console_view(EDIT)
async def session_edit(request: web.Request) -> web.Response:
    svc = services(request)
    form = form_of(request)
    sid = int_id(request)
    try:
        title = _text(form, "title", 40)
        starts, ends = _when(form, "starts_at"), _when(form, "ends_at")
        minutes = _int(form, "pay_minutes", "支付时限")
        enabled = str(form.get("enabled", "")) == "1"
        async with svc.uows() as uow:
            await service.edit_session(uow, tenant_of(request), sid, title, starts, ends, minutes, enabled)
            uow.audit(tenant_of(request), _actor(request), "seckill.session_edit", f"seckill_session:{sid}",
                      after={"title": title, "starts_at": starts.isoformat(), "ends_at": ends.isoformat(),
                             "pay_minutes": minutes, "enabled": enabled})
            await uow.commit()
    except SeckillError as exc:
        return await _page(request, 400, str(exc.facts().get("problem", exc.code)))
    HOLDER.desk.forget(tenant_of(request))
    raise redirect("/console/seckill", ok="saved")


@routes.post(r"/console/seckill/sessions/{id}/items")
@console_view(EDIT)
async def item_add(request: web.Request) -> web.Response:
    svc = services(request)
    form = form_of(request)
    sid = int_id(request)
    try:
        sku = parse_id(str(form.get("sku_id", "") or "").strip())
        if sku is None:
            raise InvalidSessionError("请填写规格编号")
        price, stock, limit = _fen(form, "price"), _int(form, "stock", "库存"), _int(form, "limit", "限购")
        async with svc.uows() as uow:
            item_id = await service.add_item(uow, tenant_of(request), sid, sku, price, stock, limit)
            uow.audit(tenant_of(request), _actor(request), "seckill.item_add", f"seckill_item:{item_id}",
                      after={"session": sid, "sku": sku, "price_fen": price, "stock": stock, "limit": limit})
            await uow.commit()
    except SeckillError as exc:
        return await _page(request, 400, str(exc.facts().get("problem", exc.code)))
    raise redirect("/console/seckill", ok="saved")


@routes.post(r"/console/seckill/items/{id}")
@console_view(EDIT)
async def item_edit(request: web.Request) -> web.Response:
    svc = services(request)
    form = form_of(request)
    item_id = int_id(request)
    tenant = tenant_of(request)
    try:
        price, stock, limit = _fen(form, "price"), _int(form, "stock", "库存"), _int(form, "limit", "限购")
        async with svc.uows() as uow:
            await service.edit_item(uow, tenant, item_id, price, stock, limit)
            uow.audit(tenant, _actor(request), "seckill.item_edit", f"seckill_item:{item_id}",
                      after={"price_fen": price, "stock": stock, "limit": limit})
            await uow.commit()
    except SeckillError as exc:
        return await _page(request, 400, str(exc.facts().get("problem", exc.code)))
    # memory follows the database: rebuilt from it at the next attempt
    await svc.admission.drop(tenant, pool(item_id))
    HOLDER.desk.forget(tenant)
    raise redirect("/console/seckill", ok="saved")


@routes.post("/console/seckill/settings")
@console_view(EDIT)
async def settings_save(request: web.Request) -> web.Response:
    svc = services(request)
    form = form_of(request)
    tenant = tenant_of(request)
    try:
        s = service.Settings(new_member_minutes=_int(form, "new_member_minutes", "新用户限制"),
                             attempts_per_minute=_int(form, "attempts_per_minute", "每分钟次数"),
                             announce=str(form.get("announce", "")) == "1")
        async with svc.uows() as uow:
            await service.save_settings(uow, tenant, s)
            uow.audit(tenant, _actor(request), "seckill.settings", f"seckill_settings:{tenant}",
                      after={"new_member_minutes": s.new_member_minutes,
                             "attempts_per_minute": s.attempts_per_minute, "announce": s.announce})
            await uow.commit()
    except SeckillError as exc:
        return await _page(request, 400, str(exc.facts().get("problem", exc.code)))
    HOLDER.desk.forget(tenant)
    raise redirect("/console/seckill", ok="saved")
