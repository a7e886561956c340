"""Catalog administration: categories, products, SKUs, stock, shelf state, pictures.
Every change is validated here and written to the audit log with before/after."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from social_mall.console import rules
from social_mall.console.auth import AdminView
from social_mall.console.errors import ConflictError, InvalidInputError
from social_mall.errors import NotFoundError
from social_mall.views import Page
from storage.console_repos import ConsoleRepo
from storage.models import Category, Product, Sku
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class SkuInput:
    spec: str
    price_fen: int
    stock: int
    cost_fen: int | None = None     # 成本价; None: not entered


@dataclass(frozen=True)
class ProductInput:
    title: str
    subtitle: str
    description: str
    category_id: int
    sort: int = 0


@dataclass(frozen=True)
class CategoryRow:
    id: int
    name: str
    sort: int
    products: int


@dataclass(frozen=True)
class SkuRow:
    id: int
    spec: str
    price_fen: int
    stock: int
    on_shelf: bool
    cost_fen: int | None = None


@dataclass(frozen=True)
class ProductRow:
    id: int
    title: str
    subtitle: str
    description: str
    image: str
    category_id: int
    on_shelf: bool
    sort: int
    min_price_fen: int
    max_price_fen: int
    stock: int
    skus: tuple[SkuRow, ...] = ()


def product_input(data: Mapping[str, object]) -> ProductInput:
    return ProductInput(
        title=rules.text(data.get("title", ""), "title", max_len=80, min_len=1),
        subtitle=rules.text(data.get("subtitle", "") or "", "subtitle", max_len=120),
        description=rules.text(data.get("description", "") or "", "description", max_len=2000),
        category_id=rules.parse_int(data.get("category_id", ""), "category_id", lo=1, hi=2**62),
        sort=rules.parse_int(data.get("sort", 0) or 0, "sort", lo=-1_000_000, hi=1_000_000),
    )


def sku_input(data: Mapping[str, object], *, prefix: str = "") -> SkuInput:
    """From a form (price as "39.90") or JSON (price_fen as an integer)."""
    if f"{prefix}price_fen" in data:
        price = rules.check_price_fen(data[f"{prefix}price_fen"], f"{prefix}price_fen")
    else:
        price = rules.parse_price(str(data.get(f"{prefix}price", "")), f"{prefix}price")
    return SkuInput(
        spec=rules.text(data.get(f"{prefix}spec", "") or "", f"{prefix}spec", max_len=80),
        price_fen=price,
        stock=rules.parse_int(data.get(f"{prefix}stock", 0) or 0, f"{prefix}stock", lo=0, hi=rules.MAX_STOCK),
        cost_fen=cost_input(data, prefix=prefix),
    )


def cost_input(data: Mapping[str, object], *, prefix: str = "") -> int | None:
    """A SKU's cost from a form ("cost": "12.50", empty: none) or JSON ("cost_fen": a
    positive integer or null)."""
    if f"{prefix}cost_fen" in data:
        raw = data[f"{prefix}cost_fen"]
        return None if raw is None else rules.check_price_fen(raw, f"{prefix}cost_fen")
    text = str(data.get(f"{prefix}cost", "") or "").strip()
    return None if not text else rules.parse_price(text, f"{prefix}cost")


def _sku_row(s: Sku) -> SkuRow:
    return SkuRow(s.id, s.spec, s.price_fen, s.stock, s.on_shelf, s.cost_fen)


def _product_row(p: Product, skus: Sequence[Sku] = (), summary: tuple[int, int, int] | None = None) -> ProductRow:
    if summary is None:
        prices = [s.price_fen for s in skus] or [0]
        summary = (min(prices), max(prices), sum(s.stock for s in skus))
    return ProductRow(p.id, p.title, p.subtitle, p.description, p.image, p.category_id, p.on_shelf, p.sort,
                      summary[0], summary[1], summary[2], tuple(_sku_row(s) for s in skus))


def _snapshot(p: Product) -> dict[str, object]:
    return {"title": p.title, "subtitle": p.subtitle, "description": p.description[:200],
            "category_id": p.category_id, "on_shelf": p.on_shelf, "sort": p.sort, "image": p.image}


# -- categories ---------------------------------------------------------------------------

async def list_categories(uow: UnitOfWork, tenant: int) -> list[CategoryRow]:
    counts = await ConsoleRepo(uow.session).category_counts(tenant)
    return [CategoryRow(c.id, c.name, c.sort, counts.get(c.id, 0)) for c in await uow.catalog.categories(tenant)]


async def create_category(uow: UnitOfWork, tenant: int, actor: AdminView, name: str, sort: object = 0) -> int:
    clean = rules.text(name, "name", max_len=40, min_len=1)
    order = rules.parse_int(sort or 0, "sort", lo=-1_000_000, hi=1_000_000)
    if any(c.name == clean for c in await uow.catalog.categories(tenant)):
        raise ConflictError("category", clean)
    row = Category(tenant_id=tenant, name=clean, sort=order)
    await uow.catalog.add(row)
    uow.audit(tenant, actor.actor, "category.create", f"category:{row.id}", after={"name": clean, "sort": order})
    return row.id


async def update_category(uow: UnitOfWork, tenant: int, actor: AdminView, category_id: int, name: str,
                          sort: object = 0) -> None:
    current = await uow.catalog.category(tenant, category_id)
    if current is None:
        raise NotFoundError("category", category_id)
    clean = rules.text(name, "name", max_len=40, min_len=1)
    order = rules.parse_int(sort or 0, "sort", lo=-1_000_000, hi=1_000_000)
    before = {"name": current.name, "sort": current.sort}
    await ConsoleRepo(uow.session).update_category(tenant, category_id, name=clean, sort=order)
    uow.audit(tenant, actor.actor, "category.update", f"category:{category_id}", before=before,
              after={"name": clean, "sort": order})


async def delete_category(uow: UnitOfWork, tenant: int, actor: AdminView, category_id: int) -> None:
    current = await uow.catalog.category(tenant, category_id)
    if current is None:
        raise NotFoundError("category", category_id)
    if not await ConsoleRepo(uow.session).delete_empty_category(tenant, category_id):
        raise ConflictError("category_not_empty", category_id)
    uow.audit(tenant, actor.actor, "category.delete", f"category:{category_id}", before={"name": current.name})


# -- products -----------------------------------------------------------------------------

async def list_products(
    uow: UnitOfWork, tenant: int, *, keyword: str = "", category_id: int | None = None,
    on_shelf: bool | None = None, page: int = 1, per_page: int = 20,
) -> Page[ProductRow]:
    repo = ConsoleRepo(uow.session)
    rows, total = await repo.products(tenant, keyword=keyword, category_id=category_id, on_shelf=on_shelf,
                                      offset=(page - 1) * per_page, limit=per_page)
    summary = await repo.sku_summary(tenant, [p.id for p in rows])
    return Page(tuple(_product_row(p, summary=summary.get(p.id, (0, 0, 0))) for p in rows), total, page, per_page)


async def get_product(uow: UnitOfWork, tenant: int, product_id: int) -> ProductRow:
    p = await uow.catalog.product(tenant, product_id)
    if p is None:
        raise NotFoundError("product", product_id)
    return _product_row(p, await uow.catalog.skus(tenant, product_id))


async def _check_category(uow: UnitOfWork, tenant: int, category_id: int) -> None:
    if await uow.catalog.category(tenant, category_id) is None:
        raise InvalidInputError("category_id", "unknown_category")


async def create_product(uow: UnitOfWork, tenant: int, actor: AdminView, data: ProductInput,
                         skus: Sequence[SkuInput], *, on_shelf: bool = True) -> int:
    if not skus:
        raise InvalidInputError("skus", "required")
    if len(skus) > 50:
        raise InvalidInputError("skus", "too_many")
    await _check_category(uow, tenant, data.category_id)
    product = Product(tenant_id=tenant, category_id=data.category_id, title=data.title, subtitle=data.subtitle,
                      description=data.description, image="", on_shelf=on_shelf, sort=data.sort)
    await uow.catalog.add(product)
    await uow.catalog.add(*(Sku(tenant_id=tenant, product_id=product.id, spec=s.spec, price_fen=s.price_fen,
                                stock=s.stock, on_shelf=True, cost_fen=s.cost_fen) for s in skus))
    costs = {"costs": [s.cost_fen for s in skus]} if any(s.cost_fen is not None for s in skus) else {}
    uow.audit(tenant, actor.actor, "product.create", f"product:{product.id}",
              after={**_snapshot(product), "skus": [[s.spec, s.price_fen, s.stock] for s in skus], **costs})
    return product.id


async def update_product(uow: UnitOfWork, tenant: int, actor: AdminView, product_id: int, data: ProductInput) -> None:
    p = await uow.catalog.product(tenant, product_id)
    if p is None:
        raise NotFoundError("product", product_id)
    await _check_category(uow, tenant, data.category_id)
    before = _snapshot(p)
    values = {"title": data.title, "subtitle": data.subtitle, "description": data.description,
              "category_id": data.category_id, "sort": data.sort}
    await ConsoleRepo(uow.session).update_product(tenant, product_id, **values)
    uow.audit(tenant, actor.actor, "product.update", f"product:{product_id}", before=before,
              after={**before, **values, "description": data.description[:200]})


async def set_product_shelf(uow: UnitOfWork, tenant: int, actor: AdminView, product_id: int, on_shelf: bool) -> None:
    p = await uow.catalog.product(tenant, product_id)
    if p is None:
        raise NotFoundError("product", product_id)
    before = p.on_shelf
    await ConsoleRepo(uow.session).update_product(tenant, product_id, on_shelf=on_shelf)
    uow.audit(tenant, actor.actor, "product.shelf", f"product:{product_id}",
              before={"on_shelf": before}, after={"on_shelf": on_shelf})


async def set_product_image(uow: UnitOfWork, tenant: int, actor: AdminView, product_id: int, path: str) -> None:
    p = await uow.catalog.product(tenant, product_id)
    if p is None:
        raise NotFoundError("product", product_id)
    before = p.image
    await ConsoleRepo(uow.session).update_product(tenant, product_id, image=path)
    uow.audit(tenant, actor.actor, "product.image", f"product:{product_id}", before={"image": before},
              after={"image": path})


async def add_sku(uow: UnitOfWork, tenant: int, actor: AdminView, product_id: int, sku: SkuInput) -> int:
    if await uow.catalog.product(tenant, product_id) is None:
        raise NotFoundError("product", product_id)
    row = Sku(tenant_id=tenant, product_id=product_id, spec=sku.spec, price_fen=sku.price_fen, stock=sku.stock,
              on_shelf=True, cost_fen=sku.cost_fen)
    await uow.catalog.add(row)
    uow.audit(tenant, actor.actor, "sku.create", f"sku:{row.id}",
              after={"product_id": product_id, "spec": sku.spec, "price_fen": sku.price_fen, "stock": sku.stock,
                     "cost_fen": sku.cost_fen})
    return row.id


async def update_sku(
    uow: UnitOfWork, tenant: int, actor: AdminView, sku_id: int, *, spec: str | None = None,
    price_fen: int | None = None, stock_delta: int = 0, on_shelf: bool | None = None,
    product_id: int | None = None, cost_fen: int | None | Literal["keep"] = "keep",
) -> SkuRow:
    """Change a SKU. Stock moves by a delta applied in SQL, so units that orders reserve
    meanwhile are kept (the form sends the stock it showed and the stock wanted).
    `cost_fen`: the new cost, None to clear it, "keep" (the default) to leave it."""
    repo = ConsoleRepo(uow.session)
    sku = await repo.sku(tenant, sku_id)
    if sku is None or (product_id is not None and sku.product_id != product_id):
        raise NotFoundError("sku", sku_id)
    before = {"spec": sku.spec, "price_fen": sku.price_fen, "stock": sku.stock, "on_shelf": sku.on_shelf,
              "cost_fen": sku.cost_fen}
    values: dict[str, object] = {}
    if cost_fen != "keep":
        values["cost_fen"] = None if cost_fen is None else rules.check_price_fen(cost_fen, "cost_fen")
    if spec is not None:
        values["spec"] = rules.text(spec, "spec", max_len=80)
    if price_fen is not None:
        values["price_fen"] = rules.check_price_fen(price_fen)
    if on_shelf is not None:
        values["on_shelf"] = on_shelf
    if values:
        await repo.update_sku(tenant, sku_id, **values)
    if stock_delta:
        rules.parse_int(stock_delta, "stock_delta", lo=-rules.MAX_STOCK, hi=rules.MAX_STOCK)
        if not await repo.adjust_stock(tenant, sku_id, stock_delta, cap=rules.MAX_STOCK):
            raise InvalidInputError("stock", "stock_below_zero" if stock_delta < 0 else "stock_above_max")
    after = await repo.sku(tenant, sku_id)
    assert after is not None
    row = _sku_row(after)
    uow.audit(tenant, actor.actor, "sku.update", f"sku:{sku_id}", before=before,
              after={"spec": row.spec, "price_fen": row.price_fen, "stock": row.stock, "on_shelf": row.on_shelf,
                     "cost_fen": row.cost_fen, "stock_delta": stock_delta})
    return row
