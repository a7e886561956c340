"""The search seam: who answers the shop's keyword searches; and the related-products seam:
who names the products shown beside one just added to the cart (「买了它的人还买了」).

Without a provider the shop searches the way it always did (`catalog.service.list_products`
with a keyword: the titles and subtitles that contain it). A module may register one
provider (`registry.set_search(provider)`); the chat search then asks it for the ids of a
page of hits, best first, and shows those products as the core always shows them (titles,
lowest prices, flash prices). When nothing is found the provider may suggest products and
categories instead, so a search never ends in a dead end.

The core never names the provider; the provider reads the catalog through the unit of work
it is given and must only return ids of the tenant's products (the core shows only those
still on the shelf, in the provider's order).

Without a related provider, adding to the cart says what it always said; with one, the
reply names up to three products it offers (the core shows only those on the shelf), and so
does the payment push (「你可能还喜欢」). The core tells the provider where it shows them
(`placement`: AFTER_CART, AFTER_PAY) and links each product's page with that placement's
tracking source (`tracked`: ?src=rec.<placement>), so a provider that counts showings and
clicks can count them per placement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from storage.uow import UnitOfWork


@dataclass(frozen=True)
class SearchHits:
    ids: tuple[int, ...]                 # this page's product ids, best first
    total: int                           # how many products matched in all
    suggested: tuple[int, ...] = ()      # nothing matched: products to offer instead
    categories: tuple[str, ...] = ()     # nothing matched: categories worth browsing


class SearchProvider(Protocol):
    async def search(self, uow: UnitOfWork, tenant: int, keyword: str, *, offset: int, limit: int,
                     hidden: frozenset[int] = frozenset()) -> SearchHits:
        """A page of the tenant's products matching `keyword` (already trimmed, non-empty),
        leaving out (before paging, and from `total` and `suggested`) the `hidden` products,
        those kept from the member who searches (social_mall/catalog/visibility.py)."""
        ...


AFTER_CART = "related"   # beside a product just added to the cart (「买了它的人还买了」)
AFTER_PAY = "paid"       # in the payment push (「你可能还喜欢」)


def tracked(url: str, placement: str) -> str:
    """A product page's link carrying the placement's tracking source (the page reports
    the view with it: handlers/h5.py)."""
    return f"{url}?src=rec.{placement}"


class RelatedProvider(Protocol):
    async def related(self, uow: UnitOfWork, tenant: int, member: int, product: int, *, limit: int,
                      placement: str = AFTER_CART) -> tuple[int, ...]:
        """Up to `limit` product ids to offer beside `product` (「买了它的人还买了」), best
        first, shown at `placement`; () when there is nothing to say (or the member switched
        recommendations off)."""
        ...
