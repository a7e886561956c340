"""Console pages (/console/content…: the list, new, edit with a preview of the stored,
sanitised body) and the H5 article page (/h5/article/<tenant>/<id>: a published article
with its products). Console handlers are guarded by `console_view` (session, CSRF,
permission, tenant); a bad form comes back with a Chinese problem (400), nothing saved."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handlers.console.core import (
    MULTIPART, admin_of, console_view, form_of, int_id, redirect, render, services, tenant_of,
)
from handlers.console.uploads import read_image, store_image
from handlers.console.registry import add_console_page, add_console_permission
from handlers.context import SERVICES
from handlers.h5 import render as render_h5
from social_mall.console.errors import InvalidInputError
from social_mall.errors import NotFoundError
from social_mall.parsing import parse_id
from social_mall.plugins import Registry
from social_mall_content import articles as A

routes = web.RouteTableDef()

VIEW, EDIT = "content.view", "content.edit"
PROBLEMS = {
    "title": "标题须为 1–64 字", "digest": "摘要最多 120 字", "cover": "封面须为 http(s) 地址或站内路径",
    "body": "正文太长", "products": "关联商品须为本店存在的商品 ID，最多 10 个",
}


def register(reg: Registry) -> None:
    reg.add_routes(routes)
    add_console_page(reg, key="content", title="内容", path="/console/content", perm=VIEW, order=60,
                     module="content")
    add_console_permission(reg, VIEW, ("admin", "operator"))
    add_console_permission(reg, EDIT, ("admin", "operator"))


def _values(a: A.ArticleView | None) -> dict[str, Any]:
    if a is None:
        return {"title": "", "digest": "", "cover": "", "body": "", "products": "", "published": False}
    return {"title": a.title, "digest": a.digest, "cover": a.cover, "body": a.body_html,
            "products": ",".join(str(i) for i in a.product_ids), "published": a.published}


def _input(form: Any) -> A.ArticleInput:
    ids: list[int] = []
    for part in str(form.get("products", "")).replace("，", ",").split(","):
        part = part.strip()
        if not part:
            continue
        pid = parse_id(part)
        if pid is None:
            raise A.ArticleRefusedError("products")
        ids.append(pid)
    return A.ArticleInput(str(form.get("title", "")), str(form.get("digest", "")), str(form.get("cover", "")),
                          str(form.get("body", "")), tuple(ids), str(form.get("published", "")) == "1")


@routes.get("/console/content")
@console_view(VIEW)
async def article_list(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        rows = await A.list_articles(uow, tenant_of(request))
    return render(request, "console/content/articles.html", rows=rows,
                  notice="已保存" if request.query.get("notice") == "saved" else "")


@routes.get("/console/content/new")
@console_view(EDIT)
async def article_new(request: web.Request) -> web.Response:
    return render(request, "console/content/form.html", article_id=None, v=_values(None), error="", preview="")


@routes.get(r"/console/content/{id:(?!new$|broadcasts$)[^/]+}")
@console_view(VIEW)
async def article_page(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        a = await A.get_article(uow, tenant_of(request), int_id(request))
    return render(request, "console/content/form.html", article_id=a.id, v=_values(a), error="", preview=a.body_html)


async def _save(request: web.Request, article_id: int | None) -> web.Response:
    svc = services(request)
    form = form_of(request)
    try:
        async with svc.uows() as uow:
            if article_id is not None:
                await A.get_article(uow, tenant_of(request), article_id)
            saved = await A.save_article(uow, tenant_of(request), article_id, _input(form),
                                         actor=f"admin:{admin_of(request).username}", now=svc.clock())
            await uow.commit()
    except A.ArticleRefusedError as exc:
        values: dict[str, Any] = {k: str(form.get(k, "")) for k in ("title", "digest", "cover", "body", "products")}
        values["published"] = str(form.get("published", "")) == "1"
        return render(request, "console/content/form.html", status=400, article_id=article_id, v=values,
                      error=PROBLEMS.get(exc.field, exc.field), preview="")
    raise redirect(f"/console/content/{saved}", notice="saved")


@routes.post("/console/content/new")
@console_view(EDIT)
async def article_create(request: web.Request) -> web.Response:
    return await _save(request, None)


@routes.post(r"/console/content/{id:(?!new$|broadcasts$)[^/]+}")
@console_view(EDIT)
async def article_update(request: web.Request) -> web.Response:
    return await _save(request, int_id(request))


@routes.post(r"/console/content/{id:[^/]+}/cover")
@console_view(EDIT)
async def article_cover(request: web.Request) -> web.Response:
    """Upload the cover (the console's image store: its type sniffed, its size capped): the
    article's cover becomes that picture, which a broadcast can send as a 图文 card."""
    svc, tenant, aid = services(request), tenant_of(request), int_id(request)
    async with svc.uows() as uow:
        await A.get_article(uow, tenant, aid)  # 404 before reading the file
    reader = request.get(MULTIPART)
    if reader is None:
        raise InvalidInputError("image", "file_missing")
    kind, data = await read_image(reader)
    path = store_image(request, tenant, kind, data)
    async with svc.uows() as uow:
        await A.set_cover(uow, tenant, aid, path, actor=f"admin:{admin_of(request).username}", now=svc.clock())
        await uow.commit()
    raise redirect(f"/console/content/{aid}", notice="saved")


@routes.get(r"/h5/article/{tenant}/{aid}")
async def article_h5(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    tenant = await svc.tenant(request.match_info["tenant"])
    aid = parse_id(request.match_info["aid"])
    if tenant is None or aid is None:
        raise web.HTTPNotFound(text="文章不存在")
    try:
        async with svc.uows() as uow:
            a = await A.get_article(uow, tenant.id, aid, published_only=True)
            products = await A.products_of(uow, tenant.id, a.product_ids)
    except NotFoundError:
        raise web.HTTPNotFound(text="文章不存在") from None
    return render_h5(svc, "h5/content/article.html", tenant=tenant, a=a, products=products,
                     cover=svc.image_url(a.cover) if a.cover else "")
