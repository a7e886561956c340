"""What the shop flow and checkout share: the product card, adding to the cart, the
listing a buyer came from, and the shop's state names.

Checkout steps back to the shop (「返回」 from the summary shows the card again; 「加购」
puts the SKU in the cart and goes back to the listing), and the shop flow enters
checkout: this module sits below both so neither imports the other's table.
"""

from __future__ import annotations

from collections.abc import Mapping

from flows.engine import Ctx, Data, Outcome, Say, Value, reads_only
from social_mall import activity
from social_mall.catalog.service import product_cards, product_detail
from social_mall.catalog.visibility import check_buyable, hidden_products
from social_mall.search import AFTER_CART, tracked
from social_mall.errors import NotFoundError, OutOfStockError
from social_mall.members.service import add_to_cart
from social_mall.pricing.service import active_flash_prices
from social_mall.pricing.unit import Wanted, unit_prices
from social_mall.values import value
from social_mall.views import ProductCard, ProductDetail, SkuView

SHOP = "shop"            # the shop flow's name
IDLE = "idle"            # its states a step of another flow may land on
PRODUCTS = "products"
CARD = "sku"             # a product card: its SKUs listed, a number buys one

#: The product list the buyer came from, kept through the card and checkout for 「返回」.
#: "via": the listing's tracking token (a module's recommendation placement), the source of
#: the product views it leads to (social_mall/activity.py).
LISTING = ("cat", "q", "page", "pages", "items", "via")
CARRIED = "l_"           # prefix of the listing's keys while in checkout (its "items" are lines)


def listing(data: Data) -> dict[str, Value]:
    return {k: v for k, v in data.items() if k in LISTING}


def carry(data: Data) -> dict[str, Value]:
    """The listing of shop `data`, under checkout's keys."""
    return {CARRIED + k: v for k, v in listing(data).items()}


def restore(data: Mapping[str, Value]) -> dict[str, Value]:
    """The listing carried through checkout, under the shop's keys again."""
    return {k[len(CARRIED):]: v for k, v in data.items() if k.startswith(CARRIED) and k[len(CARRIED):] in LISTING}


async def load_sku(ctx: Ctx, product_id: int, sku_id: int, qty: int = 1) -> tuple[ProductDetail, SkuView]:
    """The product and SKU if `qty` of it can be bought now by this member; the core's
    errors otherwise (a product kept from the member: RestrictedProductError)."""
    p = await product_detail(ctx.uow, ctx.tenant_id, product_id)
    await check_buyable(ctx.uow, ctx.tenant_id, ctx.member.id, [(p.id, p.title)])
    sku = next((s for s in p.skus if s.id == sku_id), None)
    if sku is None:
        raise NotFoundError("sku", sku_id)
    if sku.stock < qty:
        raise OutOfStockError(f"{p.title} {sku.spec}".strip(), sku.stock)
    return p, sku


@reads_only
@value
class ShowProduct:
    product_id: int
    via: str = ""            # the listing's tracking token: the view's source

    async def run(self, ctx: Ctx) -> Outcome:
        p = await product_detail(ctx.uow, ctx.tenant_id, self.product_id,
                                 hidden=await hidden_products(ctx.uow, ctx.tenant_id, ctx.member.id))
        flash = await active_flash_prices(ctx.uow, ctx.tenant_id, [s.id for s in p.skus], ctx.now)
        notes = [n for n in [await note(ctx.uow, ctx.tenant_id, p.id) for note in ctx.card_notes] if n]
        own = await unit_prices(ctx.uow, ctx.tenant_id, ctx.member.id,
                                [Wanted(s.id, p.id, s.price_fen, 1) for s in p.skus], ctx.now)
        if own:  # a module's price for this member replaces retail and its promotions
            flash = {k: f for k, f in flash.items() if k not in own or own[k].promotions}
        card = Say(
            "chat/shop/product_card.txt", {"p": p, "flash": flash, "notes": notes, "own": own}, card=True,
            url=ctx.links.product_url(ctx.tenant_code, p.id),
            image=ctx.links.image_url(p.image) if p.image else "",
        )
        ctx.note(activity.PRODUCT_VIEW, p.id, source=self.via)
        # One message: the card's description carries the SKU list and what to type next,
        # so it fits WeChat's single passive reply (no customer-service push needed).
        return Outcome((card,), {"skus": [s.id for s in p.skus], "product": p.id})


@value
class AddToCart:
    sku_id: int
    qty: int
    back_to_list: bool = False   # the reply says a number opens another product of the list

    async def run(self, ctx: Ctx) -> Outcome:
        cart = await add_to_cart(ctx.uow, ctx.tenant_id, ctx.member.id, self.sku_id, self.qty, ctx.now)
        ctx.note(activity.CART_ADD, self.sku_id, qty=self.qty)
        related: tuple[ProductCard, ...] = ()
        if ctx.related is not None:   # a module's 「买了它的人还买了」 (social_mall/search.py)
            pairs = await ctx.uow.catalog.skus_by_ids(ctx.tenant_id, [self.sku_id])
            if pairs:
                ids = await ctx.related.related(ctx.uow, ctx.tenant_id, ctx.member.id, pairs[0][1].id, limit=3,
                                                placement=AFTER_CART)
                hidden = await hidden_products(ctx.uow, ctx.tenant_id, ctx.member.id)
                related = await product_cards(ctx.uow, ctx.tenant_id, [i for i in ids if i not in hidden][:3])
        urls = {p.id: tracked(ctx.links.product_url(ctx.tenant_code, p.id), AFTER_CART) for p in related}
        return Outcome((Say("chat/shop/added.txt", {"cart": cart, "listing": self.back_to_list,
                                                    "related": related, "related_url": urls}),))
