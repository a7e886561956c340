"""The module's pages.

Console (/console/bargain…, guarded by `console_view`: session, CSRF, permission, tenant):
the campaigns (title, SKU, floor price, helps needed, minimum cut, validity in hours,
stock, helps a friend may give a day, the helper's minimum follow age, window, on/off),
a new campaign, one campaign's form with its bargains. A bad form answers with the page
again and a Chinese problem (400), nothing saved.

H5: /bk/<tenant>/<code> (the share page: progress and the QR code to follow and help) and
/bargain/qr/<tenant>/<code>.png (the official account's parametric QR, scene bk_<code>,
through the core's handlers.scene_qr)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from handlers.console.core import admin_of, console_view, form_of, int_id, redirect, render, services, tenant_of
from handlers.console.registry import add_console_page, add_console_permission
from handlers.context import SERVICES
from handlers.h5 import render as render_h5
from handlers.scene_qr import qr_png, scene_qr_url
from social_mall.errors import NotFoundError
from social_mall.parsing import parse_id
from social_mall.plugins import Registry
from social_mall.sharing import share_path
from social_mall_bargain import rules, service
from social_mall_bargain.errors import InvalidTermsError

routes = web.RouteTableDef()

VIEW, EDIT = "bargain.view", "bargain.edit"
SHANGHAI = timezone(timedelta(hours=8))
PROBLEMS = {
    "title": "活动名称须为 1–80 字", "sku": "SKU 须为本店存在的 SKU ID", "floor": "最低价须大于 0 且低于原价",
    "helps": "帮砍人数须为 1–100", "min_cut": "每刀最少金额须 ≥ 0.01 元，且（原价 − 最低价）够分给每位帮砍好友",
    "hours": "有效期须为 1–168 小时", "stock": "库存须为 0–1000000", "daily": "每人每天帮砍次数须为 1–100",
    "age": "帮砍者关注时长须为 0–8760 小时", "window": "结束时间须晚于开始时间", "form": "请检查填写的内容",
}
FIELDS = ("title", "sku", "floor", "helps", "min_cut", "hours", "stock", "daily", "age", "starts", "ends")


def register(reg: Registry) -> None:
    reg.add_routes(routes)
    add_console_page(reg, key="bargain", title="砍价", path="/console/bargain", perm=VIEW, order=56,
                     module="bargain")
    add_console_permission(reg, VIEW, ("admin", "operator", "service"))
    add_console_permission(reg, EDIT, ("admin", "operator"))


class _Bad(Exception):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def _yuan(raw: str, field: str) -> int:
    text = unicodedata.normalize("NFKC", raw).strip()
    whole, _, frac = text.partition(".")
    if not (whole.isascii() and whole.isdigit() and len(whole) <= 9 and (frac == "" or (
            frac.isascii() and frac.isdigit() and len(frac) <= 2))):
        raise _Bad(field)
    return int(whole) * 100 + int((frac + "00")[:2])


def _int(raw: str, field: str) -> int:
    text = unicodedata.normalize("NFKC", raw).strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise _Bad(field)
    return int(text)


def _when(raw: str, field: str) -> datetime:
    try:
        at = datetime.fromisoformat(unicodedata.normalize("NFKC", raw).strip())
    except ValueError:
        raise _Bad(field) from None
    if at.tzinfo is not None:
        raise _Bad(field)
    return at.replace(tzinfo=SHANGHAI).astimezone(timezone.utc)


def _read(form: Mapping[str, Any]) -> tuple[str, int, rules.Terms, bool]:
    v = {k: str(form.get(k, "") or "") for k in FIELDS}
    title = " ".join(unicodedata.normalize("NFKC", v["title"]).split())
    if not 1 <= len(title) <= 80 or not title.isprintable():
        raise _Bad("title")
    sku = parse_id(v["sku"].strip())
    if sku is None:
        raise _Bad("sku")
    try:
        starts, ends = _when(v["starts"], "window"), _when(v["ends"], "window")
    except _Bad:
        raise _Bad("window") from None
    terms = rules.Terms(_yuan(v["floor"], "floor"), _int(v["helps"], "helps"), _yuan(v["min_cut"], "min_cut"),
                        _int(v["hours"], "hours"), _int(v["stock"], "stock"), _int(v["daily"], "daily"),
                        _int(v["age"], "age"), starts, ends)
    return title, sku, terms, str(form.get("active", "")) == "1"


def _local(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def _values(c: service.CampaignView | None, now: datetime) -> dict[str, Any]:
    if c is None:
        return {"title": "", "sku": "", "floor": "", "helps": "5", "min_cut": "0.01", "hours": "24", "stock": "100",
                "daily": "3", "age": "24", "starts": _local(now), "ends": _local(now + timedelta(days=30)),
                "active": True}
    return {"title": c.title, "sku": str(c.sku_id), "floor": f"{c.floor_fen / 100:.2f}", "helps": str(c.helps_needed),
            "min_cut": f"{c.min_cut_fen / 100:.2f}", "hours": str(c.hours), "stock": str(c.stock),
            "daily": str(c.daily_helps), "age": str(c.helper_min_age_hours), "starts": _local(c.starts_at),
            "ends": _local(c.ends_at), "active": c.active}


def _actor(request: web.Request) -> str:
    return f"admin:{admin_of(request).username}"


@routes.get("/console/bargain")
@console_view(VIEW)
async def campaign_list(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        rows = await service.list_campaigns(uow, tenant_of(request))
    return render(request, "console/bargain/campaigns.html", rows=rows,
                  notice="已保存" if request.query.get("notice") == "saved" else "")


@routes.get("/console/bargain/new")
@console_view(EDIT)
async def campaign_new(request: web.Request) -> web.Response:
    return render(request, "console/bargain/form.html", campaign=None, v=_values(None, services(request).clock()),
                  error="", bargains=[], campaign_id=None)


@routes.get(r"/console/bargain/{id:(?!new$)[^/]+}")
@console_view(VIEW)
async def campaign_page(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        c = await service.get_campaign(uow, tenant_of(request), int_id(request))
        bargains = await service.campaign_bargains(uow, tenant_of(request), c.id)
    return render(request, "console/bargain/form.html", campaign=c, v=_values(c, services(request).clock()),
                  error="", bargains=bargains, campaign_id=c.id)


async def _save(request: web.Request, campaign_id: int | None) -> web.Response:
    svc = services(request)
    form = form_of(request)
    tenant = tenant_of(request)
    try:
        async with svc.uows() as uow:
            if campaign_id is not None:
                await service.get_campaign(uow, tenant, campaign_id)
            title, sku, terms, active = _read(form)
            if campaign_id is None:
                saved = await service.create_campaign(uow, tenant, sku_id=sku, title=title, terms=terms,
                                                      actor=_actor(request))
            else:
                saved = await service.update_campaign(uow, tenant, campaign_id, title=title, terms=terms,
                                                      active=active, actor=_actor(request))
            await uow.commit()
    except (_Bad, InvalidTermsError, NotFoundError) as exc:
        if isinstance(exc, NotFoundError) and campaign_id is not None and exc.what == "bargain_campaign":
            raise
        field = exc.field if isinstance(exc, _Bad) else (exc.fields[0] if isinstance(exc, InvalidTermsError)
                                                         else "sku")
        values: dict[str, Any] = {k: str(form.get(k, "") or "") for k in FIELDS}
        values["active"] = str(form.get("active", "")) == "1"
        return render(request, "console/bargain/form.html", status=400, campaign=None, v=values,
                      error=PROBLEMS.get(field, PROBLEMS["form"]), bargains=[], campaign_id=campaign_id)
    raise redirect(f"/console/bargain/{saved.id}", notice="saved")


@routes.post("/console/bargain/new")
@console_view(EDIT)
async def campaign_create(request: web.Request) -> web.Response:
    return await _save(request, None)


@routes.post(r"/console/bargain/{id:(?!new$)[^/]+}")
@console_view(EDIT)
async def campaign_update(request: web.Request) -> web.Response:
    return await _save(request, int_id(request))


# -- H5 ----------------------------------------------------------------------------------------

async def _bargain(request: web.Request) -> tuple[Any, Any, service.BargainView]:
    svc = request.app[SERVICES]
    tenant = await svc.tenant(request.match_info["tenant"])
    code = rules.parse_code(request.match_info["code"])
    if tenant is None or code is None:
        raise web.HTTPNotFound(text="砍价不存在")
    try:
        async with svc.uows() as uow:
            b = await service.bargain_by_code(uow, tenant.id, code)
    except NotFoundError:
        raise web.HTTPNotFound(text="砍价不存在") from None
    return svc, tenant, b


@routes.get(r"/bargain/qr/{tenant}/{code}.png")
async def qr_image(request: web.Request) -> web.Response:
    svc, tenant, b = await _bargain(request)
    at = await svc.shared_at(tenant, request)     # the sharer's official account: the QR is made there
    url = await scene_qr_url(svc, at, rules.scene_for(b.code),
                             svc.page_url(share_path(f"/bk/{tenant.code}/{b.code}", at.account_id)))
    return web.Response(body=qr_png(url), content_type="image/png", headers={"Cache-Control": "public, max-age=3600"})


@routes.get(r"/bk/{tenant}/{code}")
async def share_page(request: web.Request) -> web.Response:
    svc, tenant, b = await _bargain(request)
    return render_h5(svc, "h5/bargain/share.html", tenant=tenant, b=b, now=svc.clock(),
                     qr=share_path(f"/bargain/qr/{tenant.code}/{b.code}.png", (await svc.shared_at(tenant, request)).account_id))
