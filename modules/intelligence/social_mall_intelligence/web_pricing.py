"""The console page 动态定价 (/console/intelligence/pricing): the merchant's rules per SKU
(cost, minimum margin, ceiling, step and day caps; stock clearance, expiry, evening
discount, demand), the audited price changes with 回滚, the A/B test of the rules with its
readout, and each rule's preview over the last 30 days. Guarded by `console_view`
(session, CSRF, permission); a bad form gets the page again with a Chinese problem (400)
and changes nothing."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handlers.console.core import admin_of, console_view, form_of, int_id, redirect, render, services, tenant_of
from handlers.console.registry import add_console_page
from social_mall.console.errors import InvalidInputError
from social_mall.console.permissions import sees_cost
from social_mall.parsing import parse_id
from social_mall.plugins import Registry
from social_mall_intelligence import pricing as P
from social_mall_intelligence.pricing_repos import PricingRepo
from social_mall_intelligence.web_console import EDIT, VIEW

routes = web.RouteTableDef()

PATH = "/console/intelligence/pricing"
FIELDS_ZH = {
    "sku": "SKU 编号", "cost": "成本价", "ceiling": "最高价", "min_margin_pct": "最低毛利率", "max_step_pct": "单次最大调幅",
    "max_day_pct": "每日最大调幅", "kinds": "定价信号", "expires_on": "到期日", "slow_days": "滞销天数",
    "clear_off_pct": "清仓折扣", "expiry_days": "临期天数", "expiry_off_pct": "临期折扣", "evening_hour": "晚间开始",
    "evening_off_pct": "晚间折扣", "demand_hours": "需求窗口", "demand_ratio_pct": "需求倍数",
    "demand_min_events": "最少事件数", "demand_up_pct": "需求上调", "name": "实验名称", "share_pct": "实验比例", "unit": "分组方式",
    "change": "这次调价", "product": "商品编号",
}
PROBLEMS_ZH = {
    "required": "必填", "price_format": "格式不对（如 12.50）", "price_range": "超出范围", "integer": "要填整数",
    "range": "超出范围", "date_format": "日期格式是 2026-12-31", "below_floor": "低于保底价（成本 ×（1 + 最低毛利率））",
    "too_many": "太多了", "test_running": "已有进行中的实验，先结束它", "too_long": "太长",
    "one_of": "SKU 编号和商品编号填一个", "no_cost": "必填（商品里还没填这个规格的成本）", "rolled_back": "已经回滚过了", "price_moved": "价格之后又变过（新的调价或手工改价），请先回滚更近的那次",
    "in_promotion": "回滚会涨价，而这个 SKU 有未付款订单或正在活动中（限时折扣、拼团、秒杀、砍价），活动结束后再回滚",
}
DONE_ZH = {"saved": "定价规则已保存", "enabled": "规则已启用", "paused": "规则已暂停", "rolled_back": "已回滚，规则已暂停",
           "test_started": "实验已开始", "test_stopped": "实验已结束"}
REASONS_ZH = {"stock": "滞销清仓", "expiry": "临期", "evening": "晚间折扣", "demand": "需求旺", "base": "回到基准价",
              "floor": "抬到保底价", "ceiling": "降到最高价",
              "control": "实验对照日"}


def problem_zh(exc: InvalidInputError) -> str:
    return f"{FIELDS_ZH.get(exc.field, exc.field)}：{PROBLEMS_ZH.get(exc.problem, exc.problem)}"


def reason_zh(reason: str) -> str:
    if reason.startswith("rollback:"):
        return f"回滚 #{reason.split(':', 1)[1]}"
    return "＋".join(REASONS_ZH.get(r, r) for r in reason.split("+"))


def register(reg: Registry) -> None:
    reg.add_routes(routes)
    add_console_page(reg, key="intelligence_pricing", title="动态定价", path=PATH, perm=VIEW, order=48,
                     module="intelligence")


def actor(request: web.Request) -> str:
    return f"admin:{admin_of(request).username}"


async def _page(request: web.Request, *, values: dict[str, str] | None = None, problem: str = "",
                status: int = 200) -> web.Response:
    tenant = tenant_of(request)
    svc = services(request)
    now = svc.clock()
    async with svc.uows() as uow:
        rules = await P.list_rules(uow, tenant)
        changes = await P.list_changes(uow, tenant)
        tests = await P.tests(uow, tenant, now)
    return render(request, "console/intel/pricing.html", status=status, rules=rules, changes=changes, tests=tests,
                  values=values or {}, problem=problem, reason_zh=reason_zh, step_minutes=P.STEP_SECONDS // 60,
                  done=DONE_ZH.get(request.query.get("ok", ""), ""), costs=sees_cost(admin_of(request).role))


@routes.get(PATH)
@console_view(VIEW)
async def pricing_page(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post(f"{PATH}/rules")
@console_view(EDIT)
async def rule_save(request: web.Request) -> web.Response:
    form = form_of(request)
    values: dict[str, str] = {k: str(form.get(k, ""))[:40] for k in form if k != "_csrf"}
    sku_id = parse_id(str(form.get("sku_id", "")))
    product_id = parse_id(str(form.get("product_id", "")))
    svc = services(request)
    try:
        if (sku_id is None) == (product_id is None):      # one of the two
            raise InvalidInputError("sku", "one_of")
        async with svc.uows() as uow:
            if product_id is not None:                      # 整件商品: every on-shelf SKU of it
                await P.save_product_rules(uow, tenant_of(request), actor(request), product_id, dict(form),
                                           svc.clock())
            else:
                assert sku_id is not None
                if await PricingRepo(uow.session).sku(tenant_of(request), sku_id) is None:
                    raise InvalidInputError("sku", "range")
                await P.save_rule(uow, tenant_of(request), actor(request), sku_id, dict(form), svc.clock())
            await uow.commit()
    except InvalidInputError as exc:
        return await _page(request, values=values, problem=problem_zh(exc), status=400)
    raise redirect(PATH, ok="saved")


@routes.post(PATH + "/rules/{id}/toggle")
@console_view(EDIT)
async def rule_toggle(request: web.Request) -> web.Response:
    svc = services(request)
    on = str(form_of(request).get("enabled", "")) == "1"
    async with svc.uows() as uow:
        await P.set_rule_enabled(uow, tenant_of(request), actor(request), int_id(request), on, svc.clock())
        await uow.commit()
    raise redirect(PATH, ok="enabled" if on else "paused")


@routes.get(PATH + "/rules/{id}/preview")
@console_view(VIEW)
async def rule_preview(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        view: Any = await P.preview(uow, tenant_of(request), int_id(request), svc.clock())
    return render(request, "console/intel/pricing_preview.html", v=view, days=P.HISTORY_DAYS)


@routes.post(PATH + "/changes/{id}/rollback")
@console_view(EDIT)
async def change_rollback(request: web.Request) -> web.Response:
    svc = services(request)
    try:
        async with svc.uows() as uow:
            await P.rollback(uow, tenant_of(request), actor(request), int_id(request), svc.clock(),
                             svc.registry.price_holds)
            await uow.commit()
    except InvalidInputError as exc:
        return await _page(request, problem=problem_zh(exc), status=400)
    raise redirect(PATH, ok="rolled_back")


@routes.post(f"{PATH}/tests")
@console_view(EDIT)
async def test_start(request: web.Request) -> web.Response:
    form = form_of(request)
    svc = services(request)
    try:
        async with svc.uows() as uow:
            await P.start_test(uow, tenant_of(request), actor(request), form.get("name"), form.get("share_pct", ""),
                               svc.clock(), form.get("unit", "sku"))
            await uow.commit()
    except InvalidInputError as exc:
        return await _page(request, values={"name": str(form.get("name", ""))[:40]}, problem=problem_zh(exc),
                           status=400)
    raise redirect(PATH, ok="test_started")


@routes.post(PATH + "/tests/{id}/stop")
@console_view(EDIT)
async def test_stop(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        await P.stop_test(uow, tenant_of(request), actor(request), int_id(request), svc.clock())
        await uow.commit()
    raise redirect(PATH, ok="test_stopped")
