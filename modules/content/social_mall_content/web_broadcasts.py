"""Console 群发 (/console/content/broadcasts): the list with each send's outcome, a form (an
article, a product and/or a text, a segment, now or a time), 预览 to the admin's own bound openid, and
the code that binds it (「预览绑定 K7Q2M-9XD3F」 in chat). Each form carries a one-time key: a
double click or a resubmission finds the broadcast it made and sends nothing again. Refused
input answers 400 with the Chinese reason and saves nothing."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from aiohttp import web
from handlers.console.core import admin_of, console_view, form_of, redirect, render, services, tenant_of
from handlers.console.registry import add_console_permission
from adapters.wechat_client import WeChatAPIError
from social_mall.catalog.service import list_categories, list_products
from social_mall.channels.service import accounts as channel_accounts
from social_mall.loyalty.service import levels as member_levels
from social_mall.members.tags import list_tags
from social_mall.parsing import parse_id
from social_mall.plugins import Registry
from social_mall_content import articles as A
from social_mall_content import broadcasts as B
from social_mall_content import sender

routes = web.RouteTableDef()

SEND = "content.broadcast"
FIELDS = ("article", "product", "text", "segment", "schedule")
PROBLEMS = {
    "text": "请填写群发内容（最多 600 字），或选择一篇图文",
    "article": "图文须为本店已发布的图文",
    "product": "商品须为本店在售且有库存的商品",
    "segment": "请选择发送对象",
    "schedule": "定时须为将来的时间（格式 2026-12-05 09:30）",
    "quota": "本月群发次数已用完：服务号每位粉丝每月最多收到 4 次群发，该人群 {skipped} 人均已收满",
    "too_few": "该人群可接收的粉丝不足 2 人（{count} 人），微信群发至少需要 2 位接收者",
    "previewer": "请先绑定预览微信号：点「获取绑定码」，在公众号里发送「预览绑定 绑定码」",
    "state": "表单已过期，请刷新页面后重试",
    "tag_not_synced": "订阅号只能按微信标签群发：请先在「会员标签」页把这个标签「同步到微信」",
}
STATUS = {"scheduled": "待发送", "sending": "发送中", "sent": "已提交", "finished": "已完成", "failed": "失败"}
REASONS = {"quota": "本月群发次数已用完", "too_few": "可接收的粉丝不足 2 人", "article": "图文已删除或未发布",
           "segment": "发送对象无效", "product": "商品已下架或售罄", "tag_not_synced": "标签未同步到微信（订阅号）"}
NOTICES = {"sent": "已提交微信群发", "scheduled": "已定时", "repeat": "这条群发已提交过，未重复发送",
           "previewed": "预览已发到你绑定的微信", "failed": "群发失败，见列表中的原因",
           "retrying": "已提交微信群发；有公众号微信暂未答复，稍后自动重试（不会重复发送）"}


def register(reg: Registry) -> None:
    reg.add_routes(routes)
    add_console_permission(reg, SEND, ("admin",))


def problem(exc: B.BroadcastRefusedError) -> str:
    return PROBLEMS.get(exc.field, exc.field).format(**exc.details)


def parse_schedule(raw: str) -> datetime | None:
    s = raw.strip().replace("T", " ")
    if not s:
        return None
    try:
        local = datetime.strptime(s, "%Y-%m-%d %H:%M")
    except ValueError:
        raise B.BroadcastRefusedError("schedule") from None
    return local.replace(tzinfo=B.SHANGHAI)


def _input(form: Any) -> B.BroadcastInput:
    raw_article = str(form.get("article", "")).strip()
    article = parse_id(raw_article) if raw_article else None
    if raw_article and article is None:
        raise B.BroadcastRefusedError("article")
    raw_product = str(form.get("product", "")).strip()
    product = parse_id(raw_product) if raw_product else None
    if raw_product and product is None:
        raise B.BroadcastRefusedError("product")
    return B.BroadcastInput(str(form.get("key", "")), article, str(form.get("text", "")),
                            str(form.get("segment", "")), parse_schedule(str(form.get("schedule", ""))), product)


async def _page(request: web.Request, *, status: int = 200, error: str = "", code: str = "",
                values: dict[str, str] | None = None) -> web.Response:
    svc, tenant = services(request), tenant_of(request)
    async with svc.uows() as uow:
        rows = await B.list_broadcasts(uow, tenant)
        published = [a for a in await A.list_articles(uow, tenant, limit=100) if a.published]
        products = [(p.id, p.title) for p in (await list_products(uow, tenant, per_page=200)).items]
        levels = [lv.name for lv in await member_levels(uow, tenant)]
        cats = [(c.id, c.name) for c in await list_categories(uow, tenant)]
        bound, _at = await B.previewer(uow, tenant, admin_of(request).id)
        sends = await B.sends_of(uow, tenant, [b.id for b in rows])
        accounts = {a.id: a.name for a in await channel_accounts(uow, tenant) if a.kind == "mp"}
        tagged = [(t.id, t.name, t.members) for t in await list_tags(uow, tenant)]
    segments = [("all", "全部粉丝")] + [(f"level:{n}", f"会员等级：{n}") for n in levels] + \
        [(f"category:{i}", f"买过「{n}」类商品") for i, n in cats] + \
        [(f"tag:{i}", f"标签：{n}（{c} 人）") for i, n, c in tagged]
    return render(request, "console/content/broadcasts.html", status=status, rows=rows, articles=published,
                  segments=segments, products=products, status_names=STATUS, sends=sends,
                  account_names={B.PRIMARY: "主公众号", **accounts}, reasons=REASONS, error=error, code=code, bound=bool(bound),
                  key=secrets.token_hex(8), v=values or dict.fromkeys(FIELDS, ""),
                  quota=B.MONTHLY_QUOTA,
                  notice=NOTICES.get(request.query.get("notice", ""), ""))


@routes.get("/console/content/broadcasts")
@console_view(SEND)
async def broadcast_list(request: web.Request) -> web.Response:
    return await _page(request)


def _values(form: Any) -> dict[str, str]:
    return {k: str(form.get(k, "")) for k in FIELDS}


@routes.post("/console/content/broadcasts")
@console_view(SEND)
async def broadcast_create(request: web.Request) -> web.Response:
    svc, tenant, form = services(request), tenant_of(request), form_of(request)
    actor = f"admin:{admin_of(request).username}"
    now = svc.clock()
    try:
        async with svc.uows() as uow:
            bid, made = await B.create(uow, tenant, _input(form), actor=actor, now=now)
            await uow.commit()
    except B.BroadcastRefusedError as exc:
        return await _page(request, status=400, error=problem(exc), values=_values(form))
    if not made:
        raise redirect("/console/content/broadcasts", notice="repeat")
    if str(form.get("schedule", "")).strip():
        raise redirect("/console/content/broadcasts", notice="scheduled")
    ok = await sender.dispatch(svc, tenant, bid, actor=actor, now=now)
    if not ok:
        async with svc.uows() as uow:
            pending = (await B.get_broadcast(uow, tenant, bid)).status == "sending"   # an account to try again
        raise redirect("/console/content/broadcasts", notice="retrying" if pending else "failed")
    raise redirect("/console/content/broadcasts", notice="sent")


@routes.post("/console/content/broadcasts/preview")
@console_view(SEND)
async def broadcast_preview(request: web.Request) -> web.Response:
    svc, tenant, form = services(request), tenant_of(request), form_of(request)
    try:
        clean = _input(form)
        async with svc.uows() as uow:
            openid, account = await B.previewer(uow, tenant, admin_of(request).id)
            checked = await B.check(uow, tenant, B.BroadcastInput(secrets.token_hex(8), clean.article_id, clean.text,
                                                                  clean.segment or "all", None, clean.product_id),
                                    svc.clock())
        if not openid:
            raise B.BroadcastRefusedError("previewer")
        await sender.preview(svc, tenant, openid, checked.article_id, checked.text, checked.product_id, account)
    except B.BroadcastRefusedError as exc:
        return await _page(request, status=400, error=problem(exc), values=_values(form))
    except WeChatAPIError as exc:
        return await _page(request, status=502, error=f"微信拒绝了预览（{exc.errcode}）", values=_values(form))
    async with svc.uows() as uow:
        uow.audit(tenant, f"admin:{admin_of(request).username}", "broadcast.preview", "previewer",
                  after={"article": checked.article_id, "product": checked.product_id, "text": checked.text[:60]})
        await uow.commit()
    raise redirect("/console/content/broadcasts", notice="previewed")


@routes.post("/console/content/broadcasts/bind")
@console_view(SEND)
async def broadcast_bind(request: web.Request) -> web.Response:
    svc, tenant = services(request), tenant_of(request)
    async with svc.uows() as uow:
        code = await B.bind_code(uow, tenant, admin_of(request).id, svc.clock())
        await uow.commit()
    return await _page(request, code=code)
