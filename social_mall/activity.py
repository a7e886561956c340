"""Member activity: what a customer did that is not a domain event of its own (a message,
a menu click, a QR scan, a product or category view, a search, an add-to-cart, a checkout
begun). The chat runner and the web pages hand each one to the registered activity sinks
(`Registry.add_activity_sink`) after the step is done; a sink must only take note (buffer
it) and return at once: it runs on the chat path. Domain events (order.paid…) are not
repeated here: a module that wants them subscribes to their outbox topics."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

# kinds the core reports (a sink may see others from modules)
MESSAGE = "message"          # props: kind (text, image, location…; a location with a place name: its city); not reported when its step noted an activity
CLICK = "menu.click"         # props: key
SUBSCRIBE = "subscribe"      # source: the QR scene, if any
SCAN = "scan"                # source: the QR scene
UNSUBSCRIBE = "unsubscribe"
PRODUCT_VIEW = "product.view"    # ref: product id
CATEGORY_VIEW = "category.view"  # ref: category id
SEARCH = "search"                # props: q, results
CART_ADD = "cart.add"            # ref: sku id, props: qty
CHECKOUT = "checkout.start"
# a share link or share page was opened (member 0: the visitor is anonymous on the page):
# source = the share scene (ref_<code> a distributor's card or link, gb_<team> a team's
# page), ref = the product shown (0: none). Who shared it: social_mall/sharing.py
SHARE_OPEN = "share.open"


class Activity(NamedTuple):
    """A tuple (cheap to make on the chat path: one per message)."""

    tenant_id: int
    member_id: int           # 0: not known (an anonymous web page view)
    channel: str             # "mp", "wecom", "h5", "terminal"…
    kind: str
    at: datetime
    ref: int = 0
    source: str = ""         # a QR scene or campaign
    props: Mapping[str, str | int] = MappingProxyType({})


ActivitySink = Callable[[Activity], None]
