"""Browsing: categories → products (5 a page) or a search → product card and its SKUs →
quantity → 加入购物车 / 立即购买.

Menu CLICK keys: CATEGORIES, SEARCH.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from flows import checkout
from flows.checkout import load_sku
from flows.engine import (
    Ctx, Flow, Intent, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn, Value, pager, reads_only,
)
from flows.home import expired
from social_mall.catalog.service import list_categories, list_products, product_detail
from social_mall.members.service import add_to_cart
from social_mall.orders.rules import check_qty
from social_mall.pricing.service import active_flash_prices, product_flash_prices
from social_mall.values import value

PER_PAGE = 5
MAX_KEYWORD = 20


class St(StrEnum):
    IDLE = "idle"
    CATEGORIES = "categories"
    PRODUCTS = "products"
    SEARCH = "search"       # waiting for a search word
    SKU = "sku"
    QTY = "qty"
    ACTION = "action"       # 加入购物车 or 立即购买


class Do(StrEnum):
    BROWSE = "shop.browse"
    SEARCH = "shop.search"
    ADD_CART = "shop.add_cart"
    BUY_NOW = "shop.buy_now"


LISTING = ("cat", "q", "page", "pages", "items")


def _listing(turn: Turn) -> dict[str, Value]:
    """The product list the user came from (kept through product/SKU/qty for 返回)."""
    return {k: v for k, v in turn.data.items() if k in LISTING}


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

    async def run(self, ctx: Ctx) -> Outcome:
        found = await list_products(
            ctx.uow, ctx.tenant_id, category_id=self.category_id, keyword=self.keyword or None,
            page=self.page, per_page=PER_PAGE,
        )
        title = f"「{self.keyword}」的搜索结果" if self.keyword else ""
        if self.category_id is not None:
            names = {c.id: c.name for c in await list_categories(ctx.uow, ctx.tenant_id)}
            title = names.get(self.category_id, "")
        if not found.items:
            if self.keyword:
                return Outcome((Say("chat/shop/no_results.txt", {"keyword": self.keyword}),), to=St.SEARCH)
            return Outcome((Say("chat/shop/empty_category.txt", {"title": title}),), to=St.IDLE)
        # flash prices change by the minute: looked up apart from the (cached) catalog page
        flash = await product_flash_prices(ctx.uow, ctx.tenant_id, [p.id for p in found.items], ctx.now)
        data: dict[str, Value] = {"items": [p.id for p in found.items], "pages": found.pages}
        # the views and the live flash prices are the whole context: one rendering per
        # combination, so a flash window opening or closing shows at once
        listed = Say("chat/shop/products.txt", {"title": title, "page": found, "flash": flash},
                     key=(title, found, frozenset(flash.items())))
        return Outcome((listed,), data)


@reads_only
@value
class ShowProduct:
    product_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        p = await product_detail(ctx.uow, ctx.tenant_id, self.product_id)
        flash = await active_flash_prices(ctx.uow, ctx.tenant_id, [s.id for s in p.skus], ctx.now)
        card = Say(
            "chat/shop/product_card.txt", {"p": p, "flash": flash}, card=True,
            url=ctx.links.product_url(ctx.tenant_code, p.id),
            image=ctx.links.image_url(p.image) if p.image else "",
        )
        # One message: the card's description carries the SKU list and what to type next,
        # so it fits WeChat's single passive reply (no customer-service push needed).
        return Outcome((card,), {"skus": [s.id for s in p.skus]})


@reads_only
@value
class ChooseSku:
    """qty None: the SKU was picked, ask how many; else: the quantity was given."""

    product_id: int
    sku_id: int
    qty: int | None = None

    async def run(self, ctx: Ctx) -> Outcome:
        p, sku = await load_sku(ctx, self.product_id, self.sku_id, self.qty or 1)
        flash = (await active_flash_prices(ctx.uow, ctx.tenant_id, [sku.id], ctx.now)).get(sku.id)
        if self.qty is None:
            return Outcome((Say("chat/shop/ask_qty.txt", {"p": p, "sku": sku, "flash": flash}),))
        unit = flash.price_fen if flash else sku.price_fen
        ctx_ = {"p": p, "sku": sku, "qty": self.qty, "line_fen": unit * self.qty, "flash": flash,
                "regular_fen": sku.price_fen * self.qty}
        return Outcome((Say("chat/shop/action.txt", ctx_),))


@value
class AddToCart:
    sku_id: int
    qty: int

    async def run(self, ctx: Ctx) -> Outcome:
        cart = await add_to_cart(ctx.uow, ctx.tenant_id, ctx.member.id, self.sku_id, self.qty)
        return Outcome((Say("chat/shop/added.txt", {"cart": cart}),))


# -- steps (pure) ------------------------------------------------------------------------

def browse(turn: Turn) -> Step:
    return Step(St.CATEGORIES, command=ListCategories())


def _search(keyword: str) -> Step:
    q = keyword.strip()[:MAX_KEYWORD]
    if not q:
        return Step(St.SEARCH, (Say("chat/shop/ask_keyword.txt"),))
    return Step(St.PRODUCTS, data={"q": q, "page": 1}, command=ListProducts(None, q, 1))


def search(turn: Turn) -> Step:
    return _search(next((a for a in turn.said.args if a), ""))


def search_typed(turn: Turn) -> Step:
    return _search(turn.said.text)


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
    return Step(St.SKU, data={**_listing(turn), "product": product}, command=ShowProduct(product))


def pick_sku(turn: Turn) -> Step:
    sku, product = turn.pick("skus"), turn.num("product")
    if sku is None or product is None:
        return _bad_number(turn, "skus")
    return Step(St.QTY, data={**turn.data, "sku": sku}, command=ChooseSku(product, sku))


def enter_qty(turn: Turn) -> Step:
    qty = check_qty(turn.said.n or 0)  # InvalidQuantityError: said, state kept
    product, sku = turn.num("product"), turn.num("sku")
    if product is None or sku is None:
        return expired(turn)
    return Step(St.ACTION, data={**turn.data, "qty": qty}, command=ChooseSku(product, sku, qty))


def add_cart(turn: Turn) -> Step:
    sku, qty = turn.num("sku"), turn.num("qty")
    if sku is None or qty is None:
        return expired(turn)
    listing = _listing(turn)
    return Step(St.PRODUCTS if listing.get("items") else St.IDLE, data=listing, command=AddToCart(sku, qty))


def buy_now(turn: Turn) -> Step:
    product, sku, qty = turn.num("product"), turn.num("sku"), turn.num("qty")
    if product is None or sku is None or qty is None:
        return expired(turn)
    return checkout.begin({"src": "buy", "product": product, "sku": sku, "qty": qty})


def choose_action(turn: Turn) -> Step:
    if turn.said.n == 1:
        return add_cart(turn)
    if turn.said.n == 2:
        return buy_now(turn)
    return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": 2}))


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.BROWSE): browse,
    (St.IDLE, Do.SEARCH): search,
    (St.SEARCH, Intent.TEXT): search_typed,
    (St.SEARCH, Intent.NUMBER): search_typed,
    (St.CATEGORIES, Intent.NUMBER): pick_category,
    (St.PRODUCTS, Intent.NUMBER): pick_product,
    (St.PRODUCTS, Intent.NEXT): next_page,
    (St.PRODUCTS, Intent.PREV): prev_page,
    (St.PRODUCTS, Intent.BACK): browse,
    (St.SKU, Intent.NUMBER): pick_sku,
    (St.SKU, Intent.BACK): back_to_list,
    (St.QTY, Intent.NUMBER): enter_qty,
    (St.QTY, Intent.BACK): back_to_list,
    (St.ACTION, Intent.NUMBER): choose_action,
    (St.ACTION, Do.ADD_CART): add_cart,
    (St.ACTION, Do.BUY_NOW): buy_now,
    (St.ACTION, Intent.BACK): back_to_list,
}

FLOW = Flow(
    name="shop",
    start=St.IDLE,
    table=TABLE,
    keywords=(
        Keyword(Do.BROWSE, words=("分类", "逛逛", "全部分类", "商品", "categories")),
        Keyword(Do.SEARCH, words=("搜索", "搜", "search")),
        Keyword(Do.SEARCH, pattern=r"搜索\s*(\S.*)|搜\s+(\S.*)"),
    ),
    words={"加入购物车": Do.ADD_CART, "加购": Do.ADD_CART, "立即购买": Do.BUY_NOW, "购买": Do.BUY_NOW},
    hints={
        St.IDLE: "chat/hints/home_idle.txt",
        St.CATEGORIES: "chat/hints/shop_categories.txt",
        St.PRODUCTS: "chat/hints/shop_products.txt",
        St.SEARCH: "chat/hints/shop_search.txt",
        St.SKU: "chat/hints/shop_sku.txt",
        St.QTY: "chat/hints/shop_qty.txt",
        St.ACTION: "chat/hints/shop_action.txt",
    },
    free_text=frozenset({St.SEARCH}),
    menu=(MenuEntry(10, "chat/shop/_help.txt", (("逛逛分类", "分类"), ("搜索商品", "搜索"))),),
)
