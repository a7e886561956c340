"""Console pages for reviews (/console/after_sale_reviews…): the list (all, shown,
hidden) with photos, the merchant's reply, hide (with a reason) and show again, and the
sensitive-word list. Guarded by `console_view` (session, CSRF, permission, tenant);
a refused action answers 409 with a Chinese reason and changes nothing."""

from __future__ import annotations

from aiohttp import web

from handlers.console.core import (
    admin_of, console_view, error_page, form_of, int_id, page_number, redirect, render, services, tenant_of,
)
from handlers.console.registry import add_console_page, add_console_permission
from social_mall.plugins import Registry
from social_mall_after_sale import reviews as V
from social_mall_after_sale.errors import AfterSaleRefusedError
from social_mall_after_sale.web_console import REFUSED_ZH

routes = web.RouteTableDef()

VIEW, MODERATE = "reviews.view", "reviews.moderate"
NOTICES = {"replied": "已回复", "hidden": "已隐藏", "shown": "已恢复显示", "saved": "已保存"}


def register(reg: Registry) -> None:
    reg.add_routes(routes)
    add_console_page(reg, key="reviews", title="评价", path="/console/after_sale_reviews", perm=VIEW, order=33,
                     module="after_sale")
    add_console_permission(reg, VIEW, ("admin", "operator", "service"))
    add_console_permission(reg, MODERATE, ("admin", "operator", "service"))


def actor(request: web.Request) -> str:
    return f"admin:{admin_of(request).username}"


def _refused(request: web.Request, exc: AfterSaleRefusedError) -> web.Response:
    return error_page(request, 409, "无法完成", REFUSED_ZH.get(exc.reason, exc.reason))


@routes.get("/console/after_sale_reviews")
@console_view(VIEW)
async def review_list(request: web.Request) -> web.Response:
    hidden = request.query.get("hidden", "")
    if hidden not in ("", "0", "1"):
        return error_page(request, 400, "输入有误", "筛选条件不对")
    async with services(request).uows() as uow:
        page = await V.list_reviews(uow, tenant_of(request), hidden=hidden, page=page_number(request))
    return render(request, "console/after_sale/reviews.html", page=page, hidden_filter=hidden,
                  notice=NOTICES.get(request.query.get("notice", ""), ""))


@routes.post(r"/console/after_sale_reviews/{id}/reply")
@console_view(MODERATE)
async def review_reply(request: web.Request) -> web.Response:
    svc = services(request)
    try:
        async with svc.uows() as uow:
            await V.reply(uow, tenant_of(request), int_id(request), str(form_of(request).get("reply", "")),
                          actor=actor(request), now=svc.clock())
            await uow.commit()
    except AfterSaleRefusedError as exc:
        return _refused(request, exc)
    raise redirect("/console/after_sale_reviews", notice="replied")


@routes.post(r"/console/after_sale_reviews/{id}/hide")
@console_view(MODERATE)
async def review_hide(request: web.Request) -> web.Response:
    return await _set_hidden(request, True)


@routes.post(r"/console/after_sale_reviews/{id}/show")
@console_view(MODERATE)
async def review_show(request: web.Request) -> web.Response:
    return await _set_hidden(request, False)


async def _set_hidden(request: web.Request, hidden: bool) -> web.Response:
    svc = services(request)
    try:
        async with svc.uows() as uow:
            await V.set_hidden(uow, tenant_of(request), int_id(request), hidden,
                               reason=str(form_of(request).get("reason", "")), actor=actor(request))
            await uow.commit()
    except AfterSaleRefusedError as exc:
        return _refused(request, exc)
    raise redirect("/console/after_sale_reviews", notice="hidden" if hidden else "shown")


@routes.get(r"/console/after_sale_reviews/photos/{id}")
@console_view(VIEW)
async def review_photo(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        data, ctype = await V.review_photo(uow, tenant_of(request), int_id(request))
    if ctype not in ("image/jpeg", "image/png", "image/gif", "image/bmp", "image/webp"):
        ctype = "application/octet-stream"
    return web.Response(body=data, content_type=ctype, headers={"Content-Disposition": "inline"})


@routes.get("/console/after_sale_words")
@console_view(VIEW)
async def words_page(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        words = await V.sensitive_words(uow, tenant_of(request))
    return render(request, "console/after_sale/words.html", words="\n".join(words), error="",
                  notice=NOTICES.get(request.query.get("notice", ""), ""))


@routes.post("/console/after_sale_words")
@console_view(MODERATE)
async def words_save(request: web.Request) -> web.Response:
    svc = services(request)
    raw = str(form_of(request).get("words", ""))
    try:
        async with svc.uows() as uow:
            await V.save_words(uow, tenant_of(request), raw, actor=actor(request))
            await uow.commit()
    except AfterSaleRefusedError as exc:
        return render(request, "console/after_sale/words.html", status=400, words=raw[:5000],
                      error=REFUSED_ZH.get(exc.reason, exc.reason), notice="")
    raise redirect("/console/after_sale_words", notice="saved")
