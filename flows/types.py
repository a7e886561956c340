"""Channel-neutral message values: what every channel adapter turns its wire format into
(Inbound) and renders back from (Reply)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from social_mall.values import value


class Kind(StrEnum):
    TEXT = "text"
    SUBSCRIBE = "subscribe"      # payload["scene"] when followed through a parametric QR
    SCAN = "scan"                # already following, scanned a parametric QR: payload["scene"]
    UNSUBSCRIBE = "unsubscribe"
    CLICK = "click"              # menu CLICK: payload["key"]
    IMAGE = "image"
    LOCATION = "location"        # payload lat, lng (GCJ-02 degrees, checked at the edge), label,
                                 # src: "message" (sent), "select" (menu location_select), "report"
    SCANCODE = "scancode"        # menu scancode_waitmsg/scancode_push: payload key, result
    OTHER = "other"


@value
class Inbound:
    tenant_id: int
    tenant_code: str
    channel: str                 # "mp" (official account), "wecom", "h5", "terminal"
    user_id: str                 # channel identity: openid for the official account
    kind: Kind
    text: str = ""
    payload: Mapping[str, str] = field(default_factory=dict)
    group_id: str | None = None
    msg_id: str = ""
    at: datetime | None = None
    account: int = 0             # the tenant's channel account it came through (0: the primary one)


@value
class MemberRef:
    """Who is talking: the member id behind the channel identity."""

    id: int


@value
class Article:
    title: str
    description: str
    url: str
    image: str


@value
class Reply:
    """One answer. Exactly one of text / article / image_media_id / link is meaningful,
    chosen by `kind`."""

    kind: str                    # "text" | "news" | "image"
    text: str = ""
    article: Article | None = None
    image_media_id: str = ""

    @staticmethod
    def of_text(text: str) -> Reply:
        return Reply("text", text=text)

    @staticmethod
    def of_article(article: Article) -> Reply:
        return Reply("news", article=article)


class Links(Protocol):
    """Absolute URLs the replies point at (the composition root knows the public base URL
    and how pay links are signed; flows only ask)."""

    async def pay_link(self, tenant_code: str, order_no: str) -> str | None:
        """The order's pay link, or None when the tenant has no payment method (the answer
        then says payment is unavailable instead of offering a link)."""
        ...

    def image_url(self, path: str) -> str:
        """An absolute URL for a stored image path such as "/media/products/3.png"."""
        ...

    def product_url(self, tenant_code: str, product_id: int) -> str: ...

    def page_url(self, path: str) -> str:
        """The absolute URL of one of the app's own pages ("/h5/…", a module's H5 route)."""
        ...
