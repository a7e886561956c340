"""Products, SKUs, stock, shelf state, pictures, categories."""

from __future__ import annotations

from aiohttp import web

from handlers.console.uploads import read_image, store_image
from handlers.console.core import (
    MULTIPART, admin_of, console_view, form_of, int_id, page_number, problem_text, redirect, render, services, tenant_of,
)
from social_mall.console import catalog as cat
from social_mall.console import rules
from social_mall.console.errors import InvalidInputError
from social_mall.console.permissions import Perm, sees_cost
from social_mall.parsing import parse_id

routes = web.RouteTableDef()


async def _categories(request: web.Request) -> list[cat.CategoryRow]:
    async with services(request).uows() as uow:
        return await cat.list_categories(uow, tenant_of(request))


@routes.get("/console/products")
@console_view(Perm.CATALOG_VIEW)
async def products(request: web.Request) -> web.Response:
    q = request.query.get("q", "")[:40]
    cid = request.query.get("category_id", "")
    shelf = request.query.get("shelf", "")
    async with services(request).uows() as uow:
        page = await cat.list_products(
            uow, tenant_of(request), keyword=q, category_id=parse_id(cid),
            on_shelf={"on": True, "off": False}.get(shelf), page=page_number(request), per_page=20)
    return render(request, "console/products.html", page=page, q=q, category_id=cid, shelf=shelf,
                  categories=await _categories(request))


@routes.get("/console/products/new")
@console_view(Perm.CATALOG_EDIT)
async def new_product(request: web.Request) -> web.Response:
    return render(request, "console/product_new.html", categories=await _categories(request), values={},
                  error="")


@routes.post("/console/products")
@console_view(Perm.CATALOG_EDIT)
async def create_product(request: web.Request) -> web.Response:
    form = form_of(request)
    svc = services(request)
    try:
        data = cat.product_input(form)
        sku = cat.sku_input(form, prefix="sku_")
        async with svc.uows() as uow:
            pid = await cat.create_product(uow, tenant_of(request), admin_of(request), data, [sku],
                                           on_shelf=form.get("on_shelf") == "1")
            await uow.commit()
    except InvalidInputError as exc:
        return render(request, "console/product_new.html", status=400, categories=await _categories(request),
                      values=dict(form), error=problem_text(exc))
    raise redirect(f"/console/products/{pid}", ok="created")


@routes.get(r"/console/products/{id}")
@console_view(Perm.CATALOG_VIEW)
async def product_page(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        product = await cat.get_product(uow, tenant_of(request), int_id(request))
    return render(request, "console/product.html", p=product, categories=await _categories(request),
                  image_url=services(request).image_url, costs=sees_cost(admin_of(request).role))


@routes.post(r"/console/products/{id}")
@console_view(Perm.CATALOG_EDIT)
async def update_product(request: web.Request) -> web.Response:
    pid = int_id(request)
    async with services(request).uows() as uow:
        await cat.update_product(uow, tenant_of(request), admin_of(request), pid, cat.product_input(form_of(request)))
        await uow.commit()
    raise redirect(f"/console/products/{pid}", ok="saved")


@routes.post(r"/console/products/{id}/shelf")
@console_view(Perm.CATALOG_EDIT)
async def product_shelf(request: web.Request) -> web.Response:
    pid = int_id(request)
    on = form_of(request).get("on") == "1"
    async with services(request).uows() as uow:
        await cat.set_product_shelf(uow, tenant_of(request), admin_of(request), pid, on)
        await uow.commit()
    raise redirect(f"/console/products/{pid}", ok="on_shelf" if on else "off_shelf")


@routes.post(r"/console/products/{id}/image")
@console_view(Perm.CATALOG_EDIT)
async def product_image(request: web.Request) -> web.Response:
    pid = int_id(request)
    tenant = tenant_of(request)
    async with services(request).uows() as uow:
        await cat.get_product(uow, tenant, pid)  # 404 before reading the file
    reader = request.get(MULTIPART)
    if reader is None:
        raise InvalidInputError("image", "file_missing")
    kind, data = await read_image(reader)
    path = store_image(request, tenant, kind, data)
    async with services(request).uows() as uow:
        await cat.set_product_image(uow, tenant, admin_of(request), pid, path)
        await uow.commit()
    raise redirect(f"/console/products/{pid}", ok="uploaded")


@routes.post(r"/console/products/{id}/skus")
@console_view(Perm.CATALOG_EDIT)
async def add_sku(request: web.Request) -> web.Response:
    pid = int_id(request)
    async with services(request).uows() as uow:
        await cat.add_sku(uow, tenant_of(request), admin_of(request), pid, cat.sku_input(form_of(request)))
        await uow.commit()
    raise redirect(f"/console/products/{pid}", ok="created")


@routes.post(r"/console/products/{id}/skus/{sku_id}")
@console_view(Perm.CATALOG_EDIT)
async def update_sku(request: web.Request) -> web.Response:
    pid, sku_id = int_id(request), int_id(request, "sku_id")
    form = form_of(request)
    stock = rules.parse_int(form.get("stock", ""), "stock", lo=0, hi=rules.MAX_STOCK)
    was = rules.parse_int(form.get("stock_was", ""), "stock_was", lo=0, hi=rules.MAX_STOCK)
    async with services(request).uows() as uow:
        await cat.update_sku(uow, tenant_of(request), admin_of(request), sku_id, product_id=pid,
                             spec=str(form.get("spec", "")), price_fen=rules.parse_price(str(form.get("price", ""))),
                             stock_delta=stock - was, on_shelf=form.get("on_shelf") == "1",
                             cost_fen=cat.cost_input(form) if "cost" in form else "keep")
        await uow.commit()
    raise redirect(f"/console/products/{pid}", ok="saved")


@routes.get("/console/categories")
@console_view(Perm.CATALOG_VIEW)
async def categories(request: web.Request) -> web.Response:
    return render(request, "console/categories.html", categories=await _categories(request))


@routes.post("/console/categories")
@console_view(Perm.CATALOG_EDIT)
async def create_category(request: web.Request) -> web.Response:
    form = form_of(request)
    async with services(request).uows() as uow:
        await cat.create_category(uow, tenant_of(request), admin_of(request), str(form.get("name", "")),
                                  form.get("sort", 0))
        await uow.commit()
    raise redirect("/console/categories", ok="created")


@routes.post(r"/console/categories/{id}")
@console_view(Perm.CATALOG_EDIT)
async def update_category(request: web.Request) -> web.Response:
    form = form_of(request)
    async with services(request).uows() as uow:
        await cat.update_category(uow, tenant_of(request), admin_of(request), int_id(request),
                                  str(form.get("name", "")), form.get("sort", 0))
        await uow.commit()
    raise redirect("/console/categories", ok="saved")


@routes.post(r"/console/categories/{id}/delete")
@console_view(Perm.CATALOG_EDIT)
async def delete_category(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        await cat.delete_category(uow, tenant_of(request), admin_of(request), int_id(request))
        await uow.commit()
    raise redirect("/console/categories", ok="deleted")
