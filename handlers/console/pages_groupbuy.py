"""Group-buy (拼团) console pages: campaigns (list, create), a campaign's teams, and the
WeCom group bot's settings (企业微信: write-only secrets, the settings permission).
Registered by the groupbuy module (handlers/groupbuy.py) through `register(reg)`."""

from __future__ import annotations

from aiohttp import web

from handlers.console.core import (
    admin_of, console_view, form_of, int_id, page_number, problem_text, redirect, render, services, tenant_of,
)
from handlers.console.registry import add_console_page
from social_mall.console import groupbuy_admin as adm
from social_mall.console.errors import InvalidInputError
from social_mall.console.permissions import Perm
from social_mall.groupbuy import service as gb_service
from social_mall.groupbuy.errors import BadTermsError, BadWecomSettingError
from social_mall.groupbuy.rules import MAX_LIFETIME_HOURS, MAX_SIZE, MIN_SIZE
from social_mall.parsing import parse_id
from social_mall.plugins import Registry

routes = web.RouteTableDef()

TERM_FIELDS_ZH = {
    "team_size": "成团人数", "lifetime_hours": "成团时限", "ends_at": "结束时间", "max_teams_per_member": "每人限团",
    "max_qty": "每单限购", "leader_discount_fen": "团长优惠", "max_extend_hours": "可延长时长", "group_prices": "拼团价",
    "leader_reward": "团长奖励",
}


def register(reg: Registry) -> None:
    reg.add_routes(routes)
    add_console_page(reg, key="groupbuy", title="拼团", path="/console/groupbuy", perm=Perm.CAMPAIGNS_VIEW,
                     order=40, module="groupbuy")
    add_console_page(reg, key="wecom", title="企业微信", path="/console/wecom", perm=Perm.SETTINGS,
                     order=86, module="groupbuy")


@routes.get("/console/groupbuy")
@console_view(Perm.CAMPAIGNS_VIEW)
async def campaigns(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        page = await adm.list_campaigns(uow, tenant_of(request), page=page_number(request))
    return render(request, "console/groupbuy_campaigns.html", page=page, now=svc.clock(), query={})


async def _form_page(request: web.Request, *, product_id: int | None, form: dict[str, str], error: str = "",
                     status: int = 200) -> web.Response:
    svc = services(request)
    tenant = tenant_of(request)
    async with svc.uows() as uow:
        products = await adm.product_choices(uow, tenant)
        product = await adm.product_choice(uow, tenant, product_id) if product_id is not None else None
    start, end = adm.default_window(svc.clock())
    values = {"team_size": "3", "lifetime_hours": "24", "starts_at": start, "ends_at": end, "max_teams_per_member": "0",
              "max_qty": "5", "leader_discount": "0", "max_extend_hours": "24", "title": product.title if product else "",
              "leader_reward_kind": "none", "leader_reward": ""}
    values.update({k: v for k, v in form.items() if k != "_csrf"})
    return render(request, "console/groupbuy_new.html", status=status, products=products, product=product,
                  v=values, error=error, min_size=MIN_SIZE, max_size=MAX_SIZE, max_hours=MAX_LIFETIME_HOURS)


@routes.get("/console/groupbuy/new")
@console_view(Perm.CAMPAIGNS_EDIT)
async def new_campaign(request: web.Request) -> web.Response:
    product_id = parse_id(request.query.get("product_id", ""))
    return await _form_page(request, product_id=product_id, form={})


@routes.post("/console/groupbuy")
@console_view(Perm.CAMPAIGNS_EDIT)
async def create_campaign(request: web.Request) -> web.Response:
    svc = services(request)
    tenant = tenant_of(request)
    form = form_of(request)
    product_id = parse_id(str(form.get("product_id", "")))
    if product_id is None:
        raise InvalidInputError("product_id", "required")
    posted = {k: str(v) for k, v in form.items()}
    try:
        async with svc.uows() as uow:
            product = await adm.product_choice(uow, tenant, product_id)
            campaign = await adm.create(uow, tenant, admin_of(request), adm.parse_campaign(form, product))
            await uow.commit()
    except InvalidInputError as exc:
        return await _form_page(request, product_id=product_id, form=posted, error=problem_text(exc), status=400)
    except BadTermsError as exc:
        bad = "、".join(TERM_FIELDS_ZH.get(f.strip(), f.strip()) for f in exc.fields.split(","))
        return await _form_page(request, product_id=product_id, form=posted, error=f"不符合规则：{bad}", status=400)
    raise redirect(f"/console/groupbuy/{campaign.id}", ok="created")


@routes.get(r"/console/groupbuy/{id}")
@console_view(Perm.CAMPAIGNS_VIEW)
async def campaign_page(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        campaign, teams = await adm.campaign_teams(uow, tenant_of(request), int_id(request),
                                                   page=page_number(request))
    return render(request, "console/groupbuy_teams.html", c=campaign, page=teams, now=svc.clock(), query={})


# -- the WeCom group bot (企业微信) -------------------------------------------------------------

WECOM_LABELS = {"token": "回调 Token", "aes_key": "EncodingAESKey", "webhook_key": "群机器人 Webhook Key",
                "bot_name": "机器人名称"}
WECOM_PROBLEMS = {
    "token_format": "须为 3–32 位字母或数字", "aes_key_format": "须为 43 位字母或数字",
    "webhook_key_format": "只填 key=… 后面的那一段（字母、数字、- 和 _，最长 64 位）",
    "bot_name_format": "1–20 个字，不含空格", "required": "首次保存时必填",
}


async def _wecom_page(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    svc = services(request)
    tenant = await svc.tenant_by_id(tenant_of(request))
    async with svc.uows() as uow:
        s, overridden = await gb_service.own_wecom_settings(uow, tenant.id)
    is_set = {"token": bool(s and s.token), "aes_key": bool(s and s.aes_key),
              "webhook_key": bool(s and s.webhook_url)}
    return render(request, "console/groupbuy_wecom.html", status=status, labels=WECOM_LABELS, is_set=is_set,
                  bot_name=s.bot_name if s else "", callback=f"{svc.public_base_url}/wechat/wecom/{tenant.code}",
                  error=error, overridden=overridden)


@routes.get("/console/wecom")
@console_view(Perm.SETTINGS)
async def wecom_page(request: web.Request) -> web.Response:
    return await _wecom_page(request)


@routes.post("/console/wecom")
@console_view(Perm.SETTINGS)
async def save_wecom(request: web.Request) -> web.Response:
    svc = services(request)
    form = form_of(request)
    changes = {name: str(form.get(name, "")) for name in WECOM_LABELS}
    try:
        async with svc.uows() as uow:
            await gb_service.update_wecom_settings(uow, tenant_of(request), changes,
                                                   webhook_base=svc.settings.wecom_api_base,
                                                   actor=admin_of(request).actor, now=svc.clock())
            await uow.commit()
    except BadWecomSettingError as exc:
        label = WECOM_LABELS.get(exc.field, exc.field)
        return await _wecom_page(request, status=400,
                                 error=f"{label}（{exc.field}）：{WECOM_PROBLEMS.get(exc.problem, exc.problem)}")
    raise redirect("/console/wecom", ok="saved")
