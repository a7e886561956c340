"""Catalog reads: categories, product pages, search, product detail.

Categories and product pages go through the unit of work's read cache (storage/cache.py):
every member browsing in chat reads the same rows. Product detail shows stock, so it is
always read fresh."""

from __future__ import annotations

from collections.abc import Sequence

from social_mall.catalog.visibility import hidden_products
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
    hidden: frozenset[int] = frozenset(),
) -> Page[ProductCard]:
    """A page of the shelf; `hidden`: products left out (those kept from the member who
    browses: catalog/visibility.py), so the page is full and its count right."""
    page = max(1, page)

    async def load() -> Page[ProductCard]:
        rows, total = await uow.catalog.products(
            tenant, category_id=category_id, keyword=keyword, offset=(page - 1) * per_page, limit=per_page,
            exclude=hidden,
        )
        prices = await uow.catalog.min_prices(tenant, [p.id for p in rows])
        cards = tuple(ProductCard(p.id, p.title, p.subtitle, p.image, prices.get(p.id, 0)) for p in rows)
        return Page(cards, total, page, per_page)

    # members kept from the same products share the cached page (every consumer, say)
    key = ("products", tenant, category_id, keyword, page, per_page, tuple(sorted(hidden)))
    return await uow.cache.get_or_load(key, load)


async def product_cards(uow: UnitOfWork, tenant: int, product_ids: Sequence[int], *,
                        hidden: frozenset[int] = frozenset()) -> tuple[ProductCard, ...]:
    """Cards of these products in the given order (a search provider's ranking), leaving
    out any no longer on the shelf and any `hidden` (kept from the member: catalog/visibility.py)."""
    product_ids = [i for i in product_ids if i not in hidden]
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
    hidden = await hidden_products(uow, tenant, order.member_id)
    return await product_cards(uow, tenant, [i for i in ids if i not in hidden][:limit])


async def product_detail(uow: UnitOfWork, tenant: int, product_id: int, *,
                         hidden: frozenset[int] = frozenset()) -> ProductDetail:
    """The product on the shelf with its SKUs on sale; not found when off the shelf or
    `hidden` (kept from the member who asks: catalog/visibility.py)."""
    p = await uow.catalog.product(tenant, product_id)
    if p is None or not p.on_shelf or p.id in hidden:
        raise NotFoundError("product", product_id)
    skus = await uow.catalog.skus(tenant, product_id)
    return _detail(p, skus)


def _detail(p: Product, skus: list[Sku]) -> ProductDetail:
    return ProductDetail(
        id=p.id, title=p.title, subtitle=p.subtitle, description=p.description, image=p.image,
        category_id=p.category_id, skus=tuple(sku_view(s) for s in skus if s.on_shelf),
    )
