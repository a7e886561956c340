"""The module's console pages: 智能搜索 (/console/intelligence/search): the merchant's synonyms
(add, replace, delete; audited) and a try-out box that searches the shelf the way the chat
does; 推荐效果 (/console/intelligence/recommendations): showings, attributed orders and
revenue per recommendation source, the model's last training, and the repurchase cycles
(the nightly estimates; the merchant marks a product consumable with its cycle, durable,
or back to the estimate; audited). Guarded by the console's `console_view` (session, CSRF on every POST, permission);
a bad form gets the page again with a Chinese problem text (400) and changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from handlers.console.core import admin_of, console_view, form_of, int_id, redirect, render, services, tenant_of
from handlers.console.registry import add_console_page, add_console_permission
from social_mall.catalog.service import product_cards
from social_mall.console.errors import InvalidInputError
from social_mall.parsing import parse_id
from social_mall.plugins import Registry
from social_mall_intelligence import cycles
from social_mall_intelligence import recommendations as R
from social_mall_intelligence import synonyms as S
from social_mall_intelligence.models import ModelVersion
from social_mall_intelligence.search import IndexedSearch

routes = web.RouteTableDef()

VIEW, EDIT = "intel.view", "intel.edit"
PATH = "/console/intelligence/search"
REC_PATH = "/console/intelligence/recommendations"
READOUT_DAYS = 30
FIELDS_ZH = {"word": "搜索词", "alternatives": "也找这些词", "product": "商品编号", "kind": "类型",
             "days": "复购周期"}
PROBLEMS_ZH = {"required": "必填", "unknown": "不存在", "range": f"要在 1–{cycles.MAX_CYCLE_DAYS} 天之间",
               "too_long": f"太长（每个词最多 {S.MAX_WORD} 字）",
               "one_word": "只能是一个词（不含空格、逗号、=）", "too_many": "太多了"}


def problem_zh(exc: InvalidInputError) -> str:
    return f"{FIELDS_ZH.get(exc.field, exc.field)}：{PROBLEMS_ZH.get(exc.problem, exc.problem)}"


def register(reg: Registry, provider: IndexedSearch) -> None:
    global _provider
    _provider = provider
    reg.add_routes(routes)
    add_console_page(reg, key="intelligence", title="智能搜索", path=PATH, perm=VIEW, order=46, module="intelligence")
    add_console_page(reg, key="intelligence_rec", title="推荐效果", path=REC_PATH, perm=VIEW, order=47,
                     module="intelligence")
    add_console_permission(reg, VIEW, ("admin", "operator", "service", "finance"))
    add_console_permission(reg, EDIT, ("admin", "operator"))


_provider: IndexedSearch | None = None


def actor(request: web.Request) -> str:
    return f"admin:{admin_of(request).username}"


async def _page(request: web.Request, *, values: dict[str, str] | None = None, problem: str = "",
                status: int = 200) -> web.Response:
    tenant = tenant_of(request)
    q = request.query.get("q", "").strip()[:20]
    tried: Any = None
    async with services(request).uows() as uow:
        rows = await S.list_synonyms(uow, tenant)
        if q and _provider is not None:
            hits = await _provider.search(uow, tenant, q, offset=0, limit=10)
            tried = {"total": hits.total, "items": await product_cards(uow, tenant, hits.ids or hits.suggested),
                     "suggested": not hits.total, "categories": hits.categories}
    return render(request, "console/intel/search.html", status=status, rows=rows, q=q, tried=tried,
                  values=values or {"word": "", "alternatives": ""}, problem=problem)


@routes.get(PATH)
@console_view(VIEW)
async def search_page(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post(f"{PATH}/synonyms")
@console_view(EDIT)
async def synonym_save(request: web.Request) -> web.Response:
    form = form_of(request)
    values = {"word": str(form.get("word", ""))[:100], "alternatives": str(form.get("alternatives", ""))[:400]}
    try:
        async with services(request).uows() as uow:
            await S.save_synonym(uow, tenant_of(request), actor(request), form.get("word"), form.get("alternatives"))
            await uow.commit()
    except InvalidInputError as exc:
        return await _page(request, values=values, problem=problem_zh(exc), status=400)
    raise redirect(PATH, ok="saved")


@routes.post(r"/console/intelligence/search/synonyms/{id}/delete")
@console_view(EDIT)
async def synonym_delete(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        await S.delete_synonym(uow, tenant_of(request), actor(request), int_id(request))
        await uow.commit()
    raise redirect(PATH, ok="deleted")


@routes.get(REC_PATH)
@console_view(VIEW)
async def recommendations_page(request: web.Request) -> web.Response:
    """推荐效果: what recommendations showed and sold over the last 30 days, the model, and
    the repurchase cycles."""
    return await _rec_page(request)


async def _rec_page(request: web.Request, *, values: dict[str, str] | None = None, problem: str = "",
                    status: int = 200) -> web.Response:
    tenant = tenant_of(request)
    svc = services(request)
    async with svc.uows() as uow:
        rows = await R.readout(uow, tenant, svc.clock() - timedelta(days=READOUT_DAYS))
        model = await uow.session.get(ModelVersion, tenant)
        rows_cycles = await cycles.cycle_rows(uow, tenant)
    return render(request, "console/intel/recommendations.html", status=status, rows=rows, model=model,
                  days=READOUT_DAYS, sources={R.FOR_ME: "猜你喜欢", R.RELATED: "买了它的人还买了", R.PAID: "支付后推荐"},
                  cycles=rows_cycles,
                  values=values or {"product": "", "kind": "consumable", "days": ""}, problem=problem)


@routes.post(f"{REC_PATH}/cycles")
@console_view(EDIT)
async def cycle_mark(request: web.Request) -> web.Response:
    """Mark a product consumable (with its cycle), durable, or back to the estimate."""
    form = form_of(request)
    values = {k: str(form.get(k, ""))[:20] for k in ("product", "kind", "days")}
    try:
        product = parse_id(values["product"].strip())
        if product is None:
            raise InvalidInputError("product", "unknown")
        days = parse_id(values["days"].strip()) if values["days"].strip() else 0
        if days is None:
            raise InvalidInputError("days", "range")
        svc = services(request)
        async with svc.uows() as uow:
            await cycles.set_mark(uow, tenant_of(request), actor(request), product, values["kind"], days,
                                  svc.clock())
            await uow.commit()
    except InvalidInputError as exc:
        return await _rec_page(request, values=values, problem=problem_zh(exc), status=400)
    raise redirect(REC_PATH, ok="saved")
