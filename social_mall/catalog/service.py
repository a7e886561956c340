"""Catalog reads: categories, product pages, search, product detail.

Categories and product pages go through the unit of work's read cache (storage/cache.py):
every member browsing in chat reads the same rows. Product detail shows stock, so it is
always read fresh."""

from __future__ import annotations

from collections.abc import Sequence

from social_mall.errors import NotFoundError
from social_mall.search import AFTER_PAY, RelatedProvider
from social_mall.views import CategoryView, Page, ProductCard, ProductDetail, SkuView
from storage.models import Product, Sku
from storage.uow import UnitOfWork


def sku_view(s: Sku) -> SkuView:
    return SkuView(id=s.id, spec=s.spec, price_fen=s.price_fen, stock=s.stock, on_shelf=s.on_shelf)


async def list_categories(uow: UnitOfWork, tenant: int) -> tuple[CategoryView, ...]:
    async def load() -> tuple[CategoryView, ...]:
        return tuple(CategoryView(c.id, c.name) for c in await uow.catalog.categories(tenant))

    return await uow.cache.get_or_load(("categories", tenant), load)


async def list_products(
    uow: UnitOfWork,
    tenant: int,
    *,
    category_id: int | None = None,
    keyword: str | None = None,
    page: int = 1,
    per_page: int = 5,
) -> Page[ProductCard]:
    page = max(1, page)

    async def load() -> Page[ProductCard]:
        rows, total = await uow.catalog.products(
            tenant, category_id=category_id, keyword=keyword, offset=(page - 1) * per_page, limit=per_page
        )
        prices = await uow.catalog.min_prices(tenant, [p.id for p in rows])
        cards = tuple(ProductCard(p.id, p.title, p.subtitle, p.image, prices.get(p.id, 0)) for p in rows)
        return Page(cards, total, page, per_page)

    return await uow.cache.get_or_load(("products", tenant, category_id, keyword, page, per_page), load)


async def product_cards(uow: UnitOfWork, tenant: int, product_ids: Sequence[int]) -> tuple[ProductCard, ...]:
    """Cards of these products in the given order (a search provider's ranking), leaving
    out any no longer on the shelf."""
    rows = {p.id: p for p in await uow.catalog.shelf_by_ids(tenant, product_ids)}
    prices = await uow.catalog.min_prices(tenant, list(rows))
    return tuple(ProductCard(p.id, p.title, p.subtitle, p.image, prices.get(p.id, 0))
                 for p in (rows.get(i) for i in dict.fromkeys(product_ids)) if p is not None)


async def related_to_order(uow: UnitOfWork, tenant: int, order_no: str, provider: RelatedProvider,
                           limit: int = 3) -> tuple[ProductCard, ...]:
    """The related products a provider offers after the order's first product was paid for
    (the payment push's 「你可能还喜欢」), on the shelf only."""
    order = await uow.orders.by_no(tenant, order_no)
    if order is None:
        return ()
    lines = await uow.orders.lines(tenant, order.id)
    pairs = await uow.catalog.skus_by_ids(tenant, [lines[0].sku_id]) if lines else []
    if not pairs:
        return ()
    ids = await provider.related(uow, tenant, order.member_id, pairs[0][1].id, limit=limit, placement=AFTER_PAY)
    return await product_cards(uow, tenant, ids[:limit])


async def product_detail(uow: UnitOfWork, tenant: int, product_id: int) -> ProductDetail:
    p = await uow.catalog.product(tenant, product_id)
    if p is None or not p.on_shelf:
        raise NotFoundError("product", product_id)
    skus = await uow.catalog.skus(tenant, product_id)
    return _detail(p, skus)


def _detail(p: Product, skus: list[Sku]) -> ProductDetail:
    return ProductDetail(
        id=p.id, title=p.title, subtitle=p.subtitle, description=p.description, image=p.image,
        category_id=p.category_id, skus=tuple(sku_view(s) for s in skus if s.on_shelf),
    )
