"""Browsing: categories → products (5 a page) or a search → product card and its SKUs →
buy: a SKU's number orders one of it (「2 x3」: three), and checkout shows the summary at
once (flows/checkout.py: 确认 / 加购 / x3 / 换地址 / 返回). A product with one SKU is bought
with 「购买」 (or 1, or 「x3」) from its card. A search with one hit shows its card at once.

Menu CLICK keys: CATEGORIES, SEARCH.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum

from flows import catalog, checkout
from flows.catalog import ShowProduct, listing
from flows.engine import (
    Ctx, Flow, Intent, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn, Value, pager, reads_only,
)
from flows import home
from flows.home import expired
from social_mall import activity
from social_mall.catalog.service import list_categories, list_products, product_cards
from social_mall.catalog.visibility import hidden_products
from social_mall.pricing.service import product_flash_prices
from social_mall.pricing.unit import list_prices
from social_mall.search import SearchProvider
from social_mall.values import value
from social_mall.views import Page, ProductCard

PER_PAGE = 5
MAX_KEYWORD = 20


class St(StrEnum):
    IDLE = catalog.IDLE
    CATEGORIES = "categories"
    PRODUCTS = catalog.PRODUCTS
    SEARCH = "search"       # waiting for a search word
    SKU = catalog.CARD      # the product card: a SKU's number buys it


class Do(StrEnum):
    BROWSE = "shop.browse"
    SEARCH = "shop.search"
    BUY_NOW = "shop.buy_now"


def _listing(turn: Turn) -> dict[str, Value]:
    """The product list the user came from (kept through the card and checkout for 返回)."""
    return listing(turn.data)


def _bad_number(turn: Turn, key: str) -> Step:
    return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids(key))}))


# -- commands ----------------------------------------------------------------------------

@reads_only
@value
class ListCategories:
    async def run(self, ctx: Ctx) -> Outcome:
        cats = await list_categories(ctx.uow, ctx.tenant_id)
        if not cats:
            return Outcome((Say("chat/shop/no_categories.txt"),), to=St.IDLE)
        listed = Say("chat/shop/categories.txt", {"cats": cats}, key=cats)
        return Outcome((listed,), {"cats": [c.id for c in cats]})


@reads_only
@value
class ListProducts:
    category_id: int | None
    keyword: str
    page: int
    one_hit_card: bool = False   # a search's single hit: show its card instead of a list of one

    async def run(self, ctx: Ctx) -> Outcome:
        hidden = await hidden_products(ctx.uow, ctx.tenant_id, ctx.member.id)
        if self.keyword and ctx.search is not None:
            return await self._provided(ctx, ctx.search, hidden)
        found = await list_products(
            ctx.uow, ctx.tenant_id, category_id=self.category_id, keyword=self.keyword or None,
            page=self.page, per_page=PER_PAGE, hidden=hidden,
        )
        self._note(ctx, found.total)
        return await self._show(ctx, found)

    def _note(self, ctx: Ctx, total: int) -> None:
        if self.keyword and self.page <= 1:
            ctx.note(activity.SEARCH, q=self.keyword, results=total)
        elif self.category_id is not None and self.page <= 1:
            ctx.note(activity.CATEGORY_VIEW, self.category_id)

    async def _provided(self, ctx: Ctx, provider: SearchProvider, hidden: frozenset[int]) -> Outcome:
        """A module's search: its page of hits, or (none) the products and categories it
        suggests instead; never a product kept from this member (`hidden`)."""
        page = max(1, self.page)
        hits = await provider.search(ctx.uow, ctx.tenant_id, self.keyword, offset=(page - 1) * PER_PAGE,
                                     limit=PER_PAGE, hidden=hidden)
        self._note(ctx, hits.total)
        cards = await product_cards(ctx.uow, ctx.tenant_id, hits.ids, hidden=hidden)
        if cards or hits.total:
            return await self._show(ctx, Page(cards, hits.total, page, PER_PAGE))
        offered = await product_cards(ctx.uow, ctx.tenant_id, hits.suggested[:PER_PAGE], hidden=hidden)
        if not offered and not hits.categories:
            return Outcome((Say("chat/shop/no_results.txt", {"keyword": self.keyword}),), to=St.SEARCH)
        own = await list_prices(ctx.uow, ctx.tenant_id, ctx.member.id, [p.id for p in offered], ctx.now)
        said = Say("chat/shop/no_results_suggested.txt",
                   {"keyword": self.keyword, "items": offered, "categories": hits.categories, "own": own})
        if not offered:
            return Outcome((said,), to=St.SEARCH)
        return Outcome((said,), {"items": [p.id for p in offered], "pages": 1})

    async def _show(self, ctx: Ctx, found: Page[ProductCard]) -> Outcome:
        title = f"「{self.keyword}」的搜索结果" if self.keyword else ""
        if self.category_id is not None:
            names = {c.id: c.name for c in await list_categories(ctx.uow, ctx.tenant_id)}
            title = names.get(self.category_id, "")
        if not found.items:
            if self.keyword:
                return Outcome((Say("chat/shop/no_results.txt", {"keyword": self.keyword}),), to=St.SEARCH)
            return Outcome((Say("chat/shop/empty_category.txt", {"title": title}),), to=St.IDLE)
        data: dict[str, Value] = {"items": [p.id for p in found.items], "pages": found.pages}
        if self.one_hit_card and self.keyword and found.total == 1:
            shown = await ShowProduct(found.items[0].id).run(ctx)
            return Outcome(shown.replies, {**data, **shown.data}, to=St.SKU)
        # flash prices change by the minute: looked up apart from the (cached) catalog page
        ids = [p.id for p in found.items]
        flash = await product_flash_prices(ctx.uow, ctx.tenant_id, ids, ctx.now)
        # the member's own prices (a pricer's, with its label), the whole page at once; none for a consumer
        own = await list_prices(ctx.uow, ctx.tenant_id, ctx.member.id, ids, ctx.now)
        # the views, the live flash prices and the member's own are the whole context: one
        # rendering per combination, so a flash window opening or closing shows at once
        listed = Say("chat/shop/products.txt", {"title": title, "page": found, "flash": flash, "own": own},
                     key=(title, found, frozenset(flash.items()), frozenset(own.items())))
        return Outcome((listed,), data)


# -- steps (pure) ------------------------------------------------------------------------

def browse(turn: Turn) -> Step:
    return Step(St.CATEGORIES, command=ListCategories())


def _search(keyword: str) -> Step:
    q = keyword.strip()[:MAX_KEYWORD]
    if not q:
        return Step(St.SEARCH, (Say("chat/shop/ask_keyword.txt"),))
    return Step(St.PRODUCTS, data={"q": q, "page": 1}, command=ListProducts(None, q, 1, one_hit_card=True))


def search(turn: Turn) -> Step:
    return _search(next((a for a in turn.said.args if a), ""))


def search_typed(turn: Turn) -> Step:
    return _search(turn.said.text)


def back_home(turn: Turn) -> Step:
    """「返回」 from the categories (or the search prompt): the menu."""
    return replace(home.show_menu(turn), flow=home.NAME)


def pick_category(turn: Turn) -> Step:
    cat = turn.pick("cats")
    if cat is None:
        return _bad_number(turn, "cats")
    return Step(St.PRODUCTS, data={"cat": cat, "page": 1}, command=ListProducts(cat, "", 1))


def _page(turn: Turn, page: int) -> Step:
    cat = turn.num("cat")
    data = {**_listing(turn), "page": page}
    return Step(St.PRODUCTS, data=data, command=ListProducts(cat, turn.text("q"), page))


next_page, prev_page = pager(_page)


def back_to_list(turn: Turn) -> Step:
    if turn.num("cat") is None and not turn.text("q"):
        return browse(turn)
    return _page(turn, turn.num("page") or 1)


def pick_product(turn: Turn) -> Step:
    product = turn.pick("items")
    if product is None:
        return _bad_number(turn, "items")
    return Step(St.SKU, data={**_listing(turn), "product": product},
                command=ShowProduct(product, turn.text("via")))


def _buy(turn: Turn, sku: int, qty: int) -> Step:
    """Straight to checkout's summary for `qty` of `sku` (the buyer's listing kept for 返回)."""
    product = turn.num("product")
    if product is None:
        return expired(turn)
    # the quantity's bounds (the member's per-line cap: pricing/unit.max_qty) are checked
    # as the summary is built; InvalidQuantityError: said, the card stays
    return checkout.begin({"src": "buy", "product": product, "sku": sku, "qty": qty, **catalog.carry(turn.data)})


def pick_sku(turn: Turn) -> Step:
    """「2」: one of SKU 2; 「2 x3」: three of it."""
    sku = turn.pick("skus")
    if sku is None:
        return _bad_number(turn, "skus")
    return _buy(turn, sku, turn.said.qty if turn.said.qty is not None else 1)


def buy_times(turn: Turn) -> Step:
    """「2 x3」 picks SKU 2; a bare 「x3」 buys three of a product's only SKU."""
    if turn.said.n is not None:
        return pick_sku(turn)
    skus = turn.ids("skus")
    if len(skus) != 1:
        return turn.stay(Say("chat/shop/which_sku.txt", {"count": len(skus), "qty": turn.said.qty}))
    return _buy(turn, skus[0], turn.said.qty or 0)


def buy_now(turn: Turn) -> Step:
    """「购买」 on the card of a product with one SKU: one of it."""
    skus = turn.ids("skus")
    if len(skus) != 1:
        return turn.stay(Say("chat/shop/which_sku.txt", {"count": len(skus), "qty": 1}))
    return _buy(turn, skus[0], 1)


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.BROWSE): browse,
    (St.IDLE, Do.SEARCH): search,
    (St.SEARCH, Intent.TEXT): search_typed,
    (St.SEARCH, Intent.NUMBER): search_typed,
    (St.SEARCH, Intent.BACK): back_home,
    (St.CATEGORIES, Intent.NUMBER): pick_category,
    (St.CATEGORIES, Intent.BACK): back_home,
    (St.PRODUCTS, Intent.NUMBER): pick_product,
    (St.PRODUCTS, Intent.NEXT): next_page,
    (St.PRODUCTS, Intent.PREV): prev_page,
    (St.PRODUCTS, Intent.BACK): browse,
    (St.SKU, Intent.NUMBER): pick_sku,
    (St.SKU, Intent.TIMES): buy_times,
    (St.SKU, Do.BUY_NOW): buy_now,
    (St.SKU, Intent.BACK): back_to_list,
}

FLOW = Flow(
    name=catalog.SHOP,
    start=St.IDLE,
    table=TABLE,
    keywords=(
        Keyword(Do.BROWSE, words=("分类", "逛逛", "全部分类", "商品", "categories")),
        Keyword(Do.SEARCH, words=("搜索", "搜", "search")),
        Keyword(Do.SEARCH, pattern=r"搜索\s*(\S.*)|搜\s+(\S.*)"),
    ),
    words={"立即购买": Do.BUY_NOW, "购买": Do.BUY_NOW, "买": Do.BUY_NOW, "下单": Do.BUY_NOW},
    hints={
        St.IDLE: "chat/hints/home_idle.txt",
        St.CATEGORIES: "chat/hints/shop_categories.txt",
        St.PRODUCTS: "chat/hints/shop_products.txt",
        St.SEARCH: "chat/hints/shop_search.txt",
        St.SKU: "chat/hints/shop_sku.txt",
    },
    free_text=frozenset({St.SEARCH}),
    menu=(MenuEntry(10, "chat/shop/_help.txt", (("逛逛分类", "分类"), ("搜索商品", "搜索"))),),
)
