"""Which products a member may see and buy: the seam through which a module keeps some of
the tenant's products to some members (goods sold to trade accounts only, say) and hides them
from everyone else.

A module registers a `ProductVisibility` (`registry.add_product_visibility`); the
composition root hands the enabled ones to every unit of work (`uow.visibility`), so a
switched-off or uninstalled module hides nothing.

`hidden(uow, tenant, member)` → the ids of the tenant's products this member (None: a
visitor nobody knows) may not see or buy. Asked once per unit of work and member whatever
the number of products shown (`hidden_products` remembers the answer), so a list page
leaves the products out in its own query (a page is a full page, its count right) instead
of checking product by product. Keep it to an indexed query or two.

Honoured by the core wherever a member meets products: the chat's category lists and
searches (`catalog.service.list_products(hidden=…)`, a search provider's `hidden`), the
product card and H5 page (`product_detail(hidden=…)`: not found), lists of cards
(`product_cards(hidden=…)`: suggestions, related products, a module's recommendations),
the cart (`add_to_cart` / `set_cart_qty` refuse; `view_cart` shows a hidden line as not
available, outside the total) and every order (`place_order`, and the order desk hands such
an order to `place_order`): refused with `RestrictedProductError` before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from social_mall.errors import RestrictedProductError

if TYPE_CHECKING:
    from storage.uow import UnitOfWork

_MEMO = "visibility.hidden"


class ProductVisibility(Protocol):
    async def hidden(self, uow: UnitOfWork, tenant: int, member: int | None) -> frozenset[int]:
        """The tenant's product ids `member` (None: an unknown visitor) may not see or buy."""
        ...


async def hidden_products(uow: UnitOfWork, tenant: int, member: int | None) -> frozenset[int]:
    """The products every registered visibility hides from `member` (none without any),
    remembered for the unit of work."""
    if not uow.visibility:
        return frozenset()
    memo: dict[tuple[int, int | None], frozenset[int]] = uow.memo.setdefault(_MEMO, {})  # type: ignore[assignment]
    key = (tenant, member)
    if key not in memo:
        out: set[int] = set()
        for v in uow.visibility:
            out |= await v.hidden(uow, tenant, member)
        memo[key] = frozenset(out)
    return memo[key]


async def check_buyable(uow: UnitOfWork, tenant: int, member: int | None,
                        products: Iterable[tuple[int, str]]) -> None:
    """Raise RestrictedProductError for the first of (product id, name) hidden from `member`."""
    hidden = await hidden_products(uow, tenant, member)
    for product_id, name in products:
        if product_id in hidden:
            raise RestrictedProductError(name)
